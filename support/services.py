"""Support staff: the ``support`` group's permissions, support accounts, and the writes support
staff make from Django admin that tenants.services does not cover (audited like the rest).

The group's permissions are defined here, not in the admin: they are set to exactly this list on
every ``migrate`` of the public schema, so a permission added by hand is removed again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connections, transaction
from django_tenants.utils import get_public_schema_name

from tenants.models import ApiKey, Domain, Membership, Plan, Tenant
from tenants.services import apikey_cache_forget, audit_record

logger = logging.getLogger(__name__)

SUPPORT_GROUP = "support"

# Least privilege: look after stores and their access, nothing that shows shoppers' data (the
# tenant schemas' customers and events are not in the admin at all) and nothing on users or
# groups (a support account cannot give itself more rights). Never a delete permission.
SUPPORT_PERMISSIONS: tuple[str, ...] = (
    "tenants.view_tenant",
    "tenants.suspend_tenant",
    "tenants.view_domain",
    "tenants.add_domain",
    "tenants.change_domain",
    "tenants.view_plan",
    "tenants.view_apikey",
    "tenants.revoke_apikey",
    "tenants.view_membership",
    "tenants.add_membership",
    "tenants.change_membership",
    "tenants.view_auditlogentry",
    "tenants.view_invitation",
)


class SupportError(ValueError):
    """A support operation that cannot be done as asked (the message says why)."""


def support_group_sync(*, using: str = "default", apps: Apps = global_apps) -> None:
    """Create the support group if needed and give it exactly SUPPORT_PERMISSIONS."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all apps' post_migrate handlers; create this app's
    # now (idempotent) so a fresh database gets the full group in its first migrate.
    for label in {name.split(".", 1)[0] for name in SUPPORT_PERMISSIONS}:
        create_permissions(global_apps.get_app_config(label), verbosity=0, interactive=False, using=using, apps=apps)
    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:  # migrating to a state without auth (a partial migrate)
        return
    wanted = {tuple(name.split(".", 1)) for name in SUPPORT_PERMISSIONS}
    candidates = permission_model.objects.using(using).filter(
        content_type__app_label__in={label for label, _ in wanted}, codename__in={code for _, code in wanted}
    )
    found = [
        permission
        for permission in candidates.select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        logger.warning("support group: permissions not found: %s", sorted(".".join(m) for m in missing))
    group, _created = group_model.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    group.permissions.set(found)


def support_group_sync_after_migrate(*, using: str, apps: Apps, **kwargs: Any) -> None:
    """post_migrate receiver: sync the group when the public schema is migrated (the tenant
    schemas have no auth tables of their own)."""
    if getattr(connections[using], "schema_name", None) != get_public_schema_name():
        return
    support_group_sync(using=using, apps=apps)


@dataclass
class SupportUserCreated:
    user: User
    created: bool
    password: str | None  # set only when a password was generated (new account or reset)


@transaction.atomic
def support_user_create(*, email: str, actor: str, reset_password: bool = False) -> SupportUserCreated:
    """Create (or update) a support account: staff, not superuser, in the support group only."""
    email = User.objects.normalize_email(email.strip()).lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise SupportError(f"invalid e-mail address {email!r}") from exc
    support_group_sync()
    group = Group.objects.get(name=SUPPORT_GROUP)
    user = User.objects.select_for_update().filter(email__iexact=email).first()
    if user is None:
        user = User.objects.filter(username__iexact=email).first()
    created = user is None
    if user is None:
        user = User(username=email, email=email)
    elif user.is_superuser:
        raise SupportError(f"{email} is a superuser; support accounts are kept separate from superusers")
    elif Membership.objects.filter(user=user).exists():
        raise SupportError(f"{email} is a member of a store's team; use a separate account for support")
    password = None
    if created or reset_password:
        password = secrets.token_urlsafe(15)
        user.set_password(password)
    user.is_staff = True
    user.is_active = True
    user.save()
    user.groups.set([group])
    user.user_permissions.clear()
    audit_record(
        action="support_user.create" if created else "support_user.update",
        actor=actor,
        target=f"user:{email}",
        metadata={"password_reset": bool(password) and not created},
    )
    return SupportUserCreated(user, created, password)


# --------------------------------------------------------------------------- admin writes


@transaction.atomic
def tenant_profile_update(*, tenant: Tenant, name: str, plan: Plan, actor: str) -> Tenant:
    """Change a tenant's display name or plan (quotas and rate limits), audited."""
    locked = Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)
    changes: dict[str, object] = {}
    if locked.name != name.strip():
        changes["name"] = {"from": locked.name, "to": name.strip()}
        locked.name = name.strip()
    if locked.plan_id != plan.pk:
        changes["plan"] = {"from": locked.plan.code, "to": plan.code}
        locked.plan = plan
    if not changes:
        return locked
    locked.save(update_fields=["name", "plan"])
    audit_record(action="tenant.update", actor=actor, tenant=locked, target=f"tenant:{locked.slug}", metadata=changes)
    # Cached key records carry the plan's rate limits and the store's name.
    key_ids = list(locked.api_keys.values_list("id", flat=True))
    apikey_cache_forget(key_ids)
    transaction.on_commit(lambda: apikey_cache_forget(key_ids))
    return locked


@transaction.atomic
def plan_save(*, plan: Plan, actor: str, created: bool, changed: list[str]) -> Plan:
    """Save a plan (superusers only in the admin), audited; its stores' cached key records
    carry the plan's rate limits, so they are forgotten and the new limits apply at once."""
    plan.save()
    audit_record(
        action="plan.create" if created else "plan.update",
        actor=actor,
        target=f"plan:{plan.code}",
        metadata={"changed": changed},
    )
    key_ids = list(ApiKey.objects.filter(tenant__plan=plan).values_list("id", flat=True))
    apikey_cache_forget(key_ids)
    transaction.on_commit(lambda: apikey_cache_forget(key_ids))
    return plan


@transaction.atomic
def domain_save(*, domain: Domain, actor: str, created: bool) -> Domain:
    """Save a tenant's host name (routes its dashboard), audited."""
    domain.save()
    audit_record(
        action="domain.create" if created else "domain.update",
        actor=actor,
        tenant=domain.tenant,
        target=f"domain:{domain.domain}",
        metadata={"is_primary": domain.is_primary},
    )
    return domain


@transaction.atomic
def domain_delete(*, domain: Domain, actor: str) -> None:
    """Delete a tenant's host name (superusers only in the admin), audited."""
    audit_record(
        action="domain.delete",
        actor=actor,
        tenant=domain.tenant,
        target=f"domain:{domain.domain}",
        metadata={"is_primary": domain.is_primary},
    )
    domain.delete()


@transaction.atomic
def membership_add(*, tenant: Tenant, user: User, role: str, actor: str) -> Membership:
    """Give a (non-staff) user a role in a store's dashboard, audited."""
    if user.is_staff or user.is_superuser:
        raise SupportError("staff accounts cannot be store members; use the store user's own account")
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise SupportError(f"{user.email or user.username} is already a member of {tenant.slug}; change the role")
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_record(
        action="membership.create",
        actor=actor,
        tenant=tenant,
        target=f"user:{user.email or user.username}",
        metadata={"role": role},
    )
    return membership
