"""Who may see and change a store's dashboard.

The store comes from the host (``<slug>.<base domain>``, resolved by the tenant middleware); the
user from the session; their role from their Membership in that store. Anyone without a
membership — including a user of another store — gets 404, exactly as for a page that does not
exist, so a store's existence is not confirmed to outsiders. Viewers may look; admins and owners
may change things; only owners manage the team.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from tenants.models import Membership, Tenant
from tenants.services import user_actor

ROLE_RANK = {Membership.Role.VIEWER: 0, Membership.Role.ADMIN: 1, Membership.Role.OWNER: 2}

View = TypeVar("View", bound=Callable[..., HttpResponse])


def store_of(request: HttpRequest) -> Tenant:
    """The store whose host this is; 404 on the public host."""
    tenant = getattr(request, "tenant", None)
    if not isinstance(tenant, Tenant) or tenant.schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise Http404
    return tenant


def membership_of(request: HttpRequest) -> Membership | None:
    user = request.user
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, tenant=store_of(request)).first()


def member_required(
    role: str = Membership.Role.VIEWER, *, write_role: str = Membership.Role.ADMIN
) -> Callable[[View], View]:
    """The view needs a member of this store with at least ``role``; unsafe methods (POST…)
    need ``write_role``. Sets ``request.membership``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            store = store_of(request)
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            membership = Membership.objects.filter(user=request.user, tenant=store).first()
            if membership is None or store.status != Tenant.Status.ACTIVE:
                raise Http404
            needed = write_role if request.method not in {"GET", "HEAD", "OPTIONS"} else role
            if ROLE_RANK[Membership.Role(membership.role)] < ROLE_RANK[Membership.Role(needed)]:
                raise PermissionDenied(f"this needs the {needed} role")
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return cast(View, wrapped)

    return decorate


def can_change(request: HttpRequest) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and ROLE_RANK[Membership.Role(membership.role)] >= ROLE_RANK[Membership.Role.ADMIN]


def actor_of(request: HttpRequest) -> str:
    """How a dashboard user appears in the audit log."""
    return user_actor(request.user)
