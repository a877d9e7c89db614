"""Public-schema models: plans, tenants (stores), domains, API keys, memberships, audit log."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

SLUG_RE = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
slug_validator = RegexValidator(
    SLUG_RE, "3-40 characters: lowercase letters, digits and hyphens, starting with a letter."
)


class Plan(models.Model):
    """A commercial plan: the quotas and rate limits its tenants get (null = unlimited)."""

    code = models.SlugField(unique=True, max_length=40)
    name = models.CharField(max_length=100)
    max_items = models.PositiveIntegerField(null=True, blank=True)
    max_customers = models.PositiveIntegerField(null=True, blank=True)
    max_events_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    max_api_keys = models.PositiveIntegerField(default=20)
    requests_per_minute = models.PositiveIntegerField(default=6000, help_text="Per API key.")
    burst = models.PositiveIntegerField(default=1000, help_text="Requests a key may send at once.")
    trainings_per_day = models.PositiveIntegerField(default=24)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["id"]

    def __str__(self) -> str:
        return self.name


class Tenant(TenantMixin):
    """A store. Its catalog, events and models live in its own PostgreSQL schema."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=40, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Store-level settings (event-type weights, auto-creation, retrain schedule); see
    # catalog.settings for the keys and their defaults.
    settings = models.JSONField(default=dict, blank=True)
    # Usage counters refreshed by a periodic task (tenants.tasks.tenant_usage_refresh).
    usage = models.JSONField(default=dict, blank=True)
    usage_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the store has work left for Redis or the task queue (catalog.OnlineBacklog, an
    # erasure's clean-up); the outbox drain visits only these stores, and clears it when done.
    outbox_since = models.DateTimeField(null=True, blank=True, editable=False)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering: ClassVar[list[str]] = ["slug"]
        permissions = (("suspend_tenant", "Can suspend and reactivate tenants"),)

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(DomainMixin):
    """A host name that routes the dashboard to a tenant (``<slug>.<base domain>``)."""


class ApiKey(models.Model):
    """An API key. Only a SHA-256 of its secret is stored; the key is shown once at creation.

    The key reads ``<kind>_live_<id>_<secret>``: ``sk`` secret keys for servers, ``pk`` public
    keys that are safe in a browser (events and recommendations only).
    """

    class Kind(models.TextChoices):
        SECRET = "secret", "Secret (server)"
        PUBLIC = "public", "Public (browser)"

    id = models.CharField(primary_key=True, max_length=16, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SECRET)
    name = models.CharField(max_length=100)
    scopes = ArrayField(models.CharField(max_length=20), default=list)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["tenant", "revoked_at"])]
        permissions = (("revoke_apikey", "Can revoke API keys"),)
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def prefix(self) -> str:
        """The non-secret, identifying part of the key (shown in lists and logs)."""
        return f"{'sk' if self.kind == self.Kind.SECRET else 'pk'}_live_{self.id}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Membership(models.Model):
    """A dashboard user's role in one tenant."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Invitation(models.Model):
    """An invitation to join a store's team, sent by e-mail by an owner.

    Only a SHA-256 of the token is stored; the link in the e-mail carries the token. It can be
    used once, before ``expires_at``, by whoever holds it (the e-mail address is where it was sent).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.Role.choices, default=Membership.Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        constraints: ClassVar[list[Any]] = [
            # One open invitation per address and store (a new one replaces the old).
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant} ({self.role})"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class AuditLogEntry(models.Model):
    """An administrative action (who did what to which tenant); append-only."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tenant_slug = models.CharField(max_length=40, blank=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="user:<email>, apikey:<prefix>, cli, system")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        verbose_name_plural = "audit log entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"
