"""A store's team: memberships and e-mail invitations (managed by the store's owners).

Invariants kept here rather than in views: a store always has at least one owner; an
invitation is used at most once and only before it expires; every change is in the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from tenants.models import Invitation, Membership, Tenant
from tenants.services import TenantError, audit_record

INVITATION_LIFETIME = timedelta(days=7)
MAX_OPEN_INVITATIONS = 50


class TeamError(TenantError):
    """A team change that is not allowed (the message says why)."""


@dataclass
class InvitationCreated:
    invitation: Invitation
    token: str  # goes into the e-mailed link; only its hash is stored


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalized(email: str) -> str:
    return get_user_model().objects.normalize_email(email.strip()).lower()


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by: User | AnonymousUser | None, actor: str
) -> InvitationCreated:
    """Invite ``email`` to the store with ``role``; an open invitation to the same address is
    replaced (its link stops working)."""
    email = _normalized(email)
    if role not in Membership.Role.values:
        raise TeamError(f"unknown role {role!r}")
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise TeamError(f"{email} is already a member of this store")
    now = timezone.now()
    open_invitations = Invitation.objects.select_for_update().filter(
        tenant=tenant, accepted_at__isnull=True, revoked_at__isnull=True
    )
    open_invitations.filter(email=email).update(revoked_at=now)
    if open_invitations.filter(expires_at__gt=now).exclude(email=email).count() >= MAX_OPEN_INVITATIONS:
        raise TeamError(f"at most {MAX_OPEN_INVITATIONS} open invitations; revoke some first")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=invitation_token_hash(token),
        invited_by=invited_by if isinstance(invited_by, User) else None,
        expires_at=now + INVITATION_LIFETIME,
    )
    audit_record(
        action="team.invite",
        actor=actor,
        tenant=tenant,
        target=f"invitation:{invitation.pk}",
        metadata={"email": email, "role": role},
    )
    return InvitationCreated(invitation, token)


def invitation_open_get(*, tenant: Tenant, token: str) -> Invitation | None:
    """The open (unused, unrevoked, unexpired) invitation to ``tenant`` with this token."""
    invitation = Invitation.objects.filter(tenant=tenant, token_hash=invitation_token_hash(token)).first()
    return invitation if invitation is not None and invitation.is_open else None


def invitation_revoke(*, invitation: Invitation, actor: str) -> None:
    updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_record(
            action="team.invitation_revoke",
            actor=actor,
            tenant=invitation.tenant,
            target=f"invitation:{invitation.pk}",
            metadata={"email": invitation.email},
        )


@transaction.atomic
def invitation_accept(*, tenant: Tenant, token: str, user: User | AbstractBaseUser) -> Membership:
    """Use the invitation for ``user`` (an existing account, checked by the caller, or one just
    created for the invited address). Fails if it was used, revoked or expired meanwhile."""
    invitation = (
        Invitation.objects.select_for_update().filter(tenant=tenant, token_hash=invitation_token_hash(token)).first()
    )
    if invitation is None or not invitation.is_open:
        raise TeamError("this invitation is no longer valid; ask the store's owner for a new one")
    membership, created = Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": invitation.role})
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    email = getattr(user, "email", "")
    audit_record(
        action="team.join",
        actor=f"user:{email}",
        tenant=tenant,
        target=f"invitation:{invitation.pk}",
        metadata={"role": membership.role, "already_member": not created},
    )
    return membership


def invited_user_create(*, email: str, password: str) -> AbstractBaseUser:
    """The account of an invited person who had none (username = e-mail, like every user)."""
    email = _normalized(email)
    user_model = get_user_model()
    if user_model.objects.filter(email__iexact=email).exists():
        raise TeamError("an account with this e-mail exists; sign in with its password instead")
    return user_model.objects.create_user(username=email, email=email, password=password)


def _owners_left(tenant: Tenant, without: Membership) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Membership.Role.OWNER)
        .exclude(pk=without.pk)
        .count()
    )


@transaction.atomic
def membership_role_set(*, membership: Membership, role: str, actor: str) -> Membership:
    """Change a member's role (the row as it is now decides, whatever the caller holds)."""
    if role not in Membership.Role.values:
        raise TeamError(f"unknown role {role!r}")
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    previous = locked.role
    if previous == role:
        return locked
    if previous == Membership.Role.OWNER and _owners_left(locked.tenant, locked) == 0:
        raise TeamError("a store needs at least one owner; make someone else owner first")
    locked.role = role
    locked.save(update_fields=["role"])
    membership.role = role
    audit_record(
        action="team.role_change",
        actor=actor,
        tenant=locked.tenant,
        target=f"user:{locked.user.email}",
        metadata={"from": previous, "to": role},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: str) -> None:
    if membership.role == Membership.Role.OWNER and _owners_left(membership.tenant, membership) == 0:
        raise TeamError("a store needs at least one owner; make someone else owner first")
    email = membership.user.email
    membership.delete()
    audit_record(action="team.remove", actor=actor, tenant=membership.tenant, target=f"user:{email}")
