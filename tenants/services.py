"""Writes to the public schema: tenants, API keys, memberships, the audit log."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from shelfwise.datastores.postgres import db
from shelfwise.datastores.redis_client import redis_call, redis_client, tenant_key_pattern
from shelfwise.observability.context import current_request_id
from tenants import customer_tokens, keys
from tenants.models import ApiKey, AuditLogEntry, Domain, Membership, Plan, Tenant, slug_validator

logger = logging.getLogger(__name__)

APIKEY_CACHE_PREFIX = "sw:apikey:"

# Other apps register cleanups (model artifacts, ...) to run when a tenant is deleted; the
# tenants app cannot import them (dependencies point the other way).
TenantDeletionHook = Callable[[Tenant], None]
_deletion_hooks: list[TenantDeletionHook] = []


def tenant_deletion_hook_register(hook: TenantDeletionHook) -> None:
    """Register a cleanup that runs before a tenant's schema is dropped."""
    if hook not in _deletion_hooks:
        _deletion_hooks.append(hook)


class TenantError(ValueError):
    """A tenant or key operation that cannot be done as asked (the message says why)."""


@dataclass
class TenantCreated:
    tenant: Tenant
    api_key: ApiKey
    raw_key: str
    owner: User | None
    owner_password: str | None  # set only when a new owner account was created


# --------------------------------------------------------------------------- audit


def user_actor(user: Any) -> str:
    """How a person (dashboard member, support staff) appears in the audit log: ``user:<email>``."""
    return f"user:{getattr(user, 'email', '') or user.get_username()}"


def audit_record(
    *,
    action: str,
    actor: str,
    tenant: Tenant | None = None,
    target: str = "",
    metadata: dict[str, object] | None = None,
) -> AuditLogEntry:
    """Append an entry to the audit log."""
    return AuditLogEntry.objects.create(
        action=action,
        actor=actor[:200],
        tenant=tenant if tenant is not None and tenant.pk else None,
        tenant_slug=tenant.slug if tenant is not None else "",
        target=target[:200],
        metadata=metadata or {},
        request_id=current_request_id() or "",
    )


# --------------------------------------------------------------------------- tenants


def _schema_name_for(slug: str) -> str:
    return "t_" + slug.replace("-", "_")


def tenant_domain_for(slug: str) -> str:
    return f"{slug}.{settings.SHELFWISE_BASE_DOMAIN}"


def tenant_create(
    *,
    slug: str,
    name: str,
    plan_code: str = "free",
    owner_email: str | None = None,
    actor: str,
) -> TenantCreated:
    """Create a tenant: its schema (migrated), its domain, a first secret API key, an owner."""
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise TenantError(f"invalid slug {slug!r}: {exc.messages[0]}") from exc
    if not name.strip():
        raise TenantError("name must not be empty")
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        codes = ", ".join(Plan.objects.values_list("code", flat=True))
        raise TenantError(f"unknown plan {plan_code!r} (plans: {codes})")
    schema_name = _schema_name_for(slug)
    if Tenant.objects.filter(slug=slug).exists() or Tenant.objects.filter(schema_name=schema_name).exists():
        raise TenantError(f"a tenant with slug {slug!r} already exists")

    # Schema creation runs the tenant migrations; it cannot share a transaction with the rows
    # below, so on any failure after it the tenant (and schema) is deleted again.
    tenant = Tenant(slug=slug, name=name.strip(), plan=plan, schema_name=schema_name)
    try:
        tenant.save(verbosity=0)
    except IntegrityError as exc:
        raise TenantError(f"a tenant with slug {slug!r} already exists") from exc
    try:
        with transaction.atomic():
            Domain.objects.create(domain=tenant_domain_for(slug), tenant=tenant, is_primary=True)
            api_key, raw_key = apikey_create(
                tenant=tenant, name="Default secret key", kind=ApiKey.Kind.SECRET, actor=actor
            )
            owner, password = (None, None)
            if owner_email:
                owner, password = _owner_ensure(tenant=tenant, email=owner_email)
            audit_record(
                action="tenant.create",
                actor=actor,
                tenant=tenant,
                target=f"tenant:{slug}",
                metadata={"plan": plan.code, "owner": owner_email or ""},
            )
    except Exception:
        tenant.delete(force_drop=True)
        raise
    return TenantCreated(tenant, api_key, raw_key, owner, password)


def _owner_ensure(*, tenant: Tenant, email: str) -> tuple[User, str | None]:
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(username=email, email=email, password=password)
    Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.OWNER})
    return user, password


def tenant_suspend(*, tenant: Tenant, reason: str, actor: str) -> Tenant:
    """Suspend a tenant: all its API keys answer 403 from the next request on."""
    if not reason.strip():
        raise TenantError("a reason is required to suspend a tenant")
    return _tenant_status_set(tenant=tenant, status=Tenant.Status.SUSPENDED, reason=reason, actor=actor)


def tenant_reactivate(*, tenant: Tenant, reason: str, actor: str) -> Tenant:
    """Reactivate a suspended tenant."""
    return _tenant_status_set(tenant=tenant, status=Tenant.Status.ACTIVE, reason=reason, actor=actor)


@transaction.atomic
def _tenant_status_set(*, tenant: Tenant, status: str, reason: str, actor: str) -> Tenant:
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    previous = locked.status
    locked.status = status
    locked.status_reason = reason.strip()[:500]
    locked.status_changed_at = timezone.now()
    locked.save(update_fields=["status", "status_reason", "status_changed_at"])
    audit_record(
        action=f"tenant.{'suspend' if status == Tenant.Status.SUSPENDED else 'reactivate'}",
        actor=actor,
        tenant=locked,
        target=f"tenant:{locked.slug}",
        metadata={"reason": locked.status_reason, "previous_status": previous},
    )
    key_ids = list(ApiKey.objects.filter(tenant=locked).values_list("id", flat=True))
    # Forget now (no request re-caches a stale record from this transaction's point of view
    # after commit) and again after commit (a request that read the old row meanwhile).
    apikey_cache_forget(key_ids)
    transaction.on_commit(lambda: apikey_cache_forget(key_ids))
    return locked


def tenant_delete(*, tenant: Tenant, actor: str) -> None:
    """Delete a tenant and everything keyed by it: schema, keys, domains, caches, artifacts."""
    slug = tenant.slug
    for hook in list(_deletion_hooks):
        hook(tenant)
    key_ids = list(ApiKey.objects.filter(tenant=tenant).values_list("id", flat=True))
    apikey_cache_forget(key_ids)
    tenant_redis_purge(tenant_id=tenant.pk)
    db().set_schema_to_public()
    audit_record(action="tenant.delete", actor=actor, tenant=tenant, target=f"tenant:{slug}")
    tenant.delete(force_drop=True)


def tenant_redis_purge(*, tenant_id: int) -> int:
    """Delete every Redis key in the tenant's namespace; returns how many were deleted.

    Unlike the serving path this does not degrade: a deletion that cannot reach Redis fails
    (and can be retried) rather than leaving the tenant's data behind."""
    client = redis_client()
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=tenant_key_pattern(tenant_id), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def tenant_usage_record(*, tenant_id: int, usage: dict[str, int]) -> None:
    """Store a tenant's usage counters (computed in its schema) on its public row."""
    Tenant.objects.filter(pk=tenant_id).update(usage=usage, usage_refreshed_at=timezone.now())


def tenant_outbox_mark(*, tenant_id: int) -> None:
    """The store has work waiting in its outbox: the next drain (seconds away) visits it.
    Called once that work is committed; a new timestamp each time, so that a drain that read
    the store's outbox before this work existed does not clear the mark (``tenant_outbox_clear``)."""
    Tenant.objects.filter(pk=tenant_id).update(outbox_since=Now())


def tenant_outbox_clear(*, tenant_id: int, seen: Any) -> bool:
    """Clear the mark a drain found (``seen``) once it emptied the outbox; False (kept) if the
    mark moved meanwhile: new work arrived, and the next drain takes it."""
    return bool(Tenant.objects.filter(pk=tenant_id, outbox_since=seen).update(outbox_since=None))


# --------------------------------------------------------------------------- API keys


def _validate_scopes(kind: str, scopes: Iterable[str] | None) -> list[str]:
    if scopes is None:
        chosen = sorted(keys.PUBLIC_KEY_SCOPES) if kind == ApiKey.Kind.PUBLIC else list(keys.DEFAULT_SECRET_SCOPES)
    else:
        chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in keys.ALL_SCOPES]
    if unknown:
        raise TenantError(f"unknown scope(s): {', '.join(unknown)} (scopes: {', '.join(keys.ALL_SCOPES)})")
    if not chosen:
        raise TenantError("a key needs at least one scope")
    if kind == ApiKey.Kind.PUBLIC and not set(chosen) <= keys.PUBLIC_KEY_SCOPES:
        raise TenantError("a public key may only have the scopes: " + ", ".join(sorted(keys.PUBLIC_KEY_SCOPES)))
    return chosen


def apikey_create(
    *,
    tenant: Tenant,
    name: str,
    kind: str = ApiKey.Kind.SECRET,
    scopes: Iterable[str] | None = None,
    actor: str,
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key; returns the row and the raw key, which is never retrievable again."""
    if kind not in ApiKey.Kind.values:
        raise TenantError(f"unknown key kind {kind!r} (kinds: {', '.join(ApiKey.Kind.values)})")
    name = name.strip()
    if not name or len(name) > 100:
        raise TenantError("a key needs a name of 1 to 100 characters")
    chosen = _validate_scopes(kind, scopes)
    active = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).count()
    if active >= tenant.plan.max_api_keys:
        raise TenantError(f"the plan allows {tenant.plan.max_api_keys} active keys; revoke one first")
    secret = keys.generate_secret()
    for _attempt in range(5):
        key_id = keys.generate_key_id()
        if not ApiKey.objects.filter(pk=key_id).exists():
            break
    else:  # pragma: no cover - 60-bit ids do not collide five times
        raise TenantError("could not allocate a key id")
    api_key = ApiKey.objects.create(
        id=key_id,
        tenant=tenant,
        kind=kind,
        name=name,
        scopes=chosen,
        secret_hash=keys.hash_secret(secret),
        created_by=created_by,
    )
    audit_record(
        action="apikey.create",
        actor=actor,
        tenant=tenant,
        target=api_key.prefix,
        metadata={"name": name, "kind": kind, "scopes": chosen},
    )
    # The id may have been probed while it did not exist (remembered as unknown for a minute).
    apikey_cache_forget([key_id])
    transaction.on_commit(lambda: apikey_cache_forget([key_id]))
    return api_key, keys.format_key(kind, key_id, secret)


@transaction.atomic
def apikey_revoke(*, api_key: ApiKey, actor: str) -> ApiKey:
    """Revoke a key; it is refused from the next request on. Revoking twice is a no-op."""
    locked = ApiKey.objects.select_for_update().select_related("tenant").get(pk=api_key.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(action="apikey.revoke", actor=actor, tenant=locked.tenant, target=locked.prefix)
    apikey_cache_forget([locked.pk])
    transaction.on_commit(lambda: apikey_cache_forget([locked.pk]))
    return locked


def apikey_signing_secret(*, api_key: ApiKey, actor: str) -> str:
    """A public key's signing secret for customer tokens (``tenants.customer_tokens``), shown to
    an admin of the store; every showing is in the audit log."""
    if api_key.kind != ApiKey.Kind.PUBLIC or api_key.revoked_at is not None:
        raise TenantError("only an active public key has a signing secret")
    audit_record(
        action="apikey.signing_secret_shown", actor=actor, tenant=api_key.tenant, target=api_key.prefix, metadata={}
    )
    return customer_tokens.signing_secret(key_id=api_key.pk, secret_hash=api_key.secret_hash)


def apikey_cache_forget(key_ids: Iterable[str]) -> None:
    """Drop cached key records so the next request re-reads the database.

    If Redis is unreachable from here the records cannot be dropped; a record cached before
    expires after SHELFWISE_APIKEY_CACHE_SECONDS (4 s), which bounds how long a revoked key may
    still be accepted by a process that reads Redis."""
    names = [APIKEY_CACHE_PREFIX + key_id for key_id in key_ids]
    if names:
        redis_call(lambda client: client.delete(*names), default=0)
