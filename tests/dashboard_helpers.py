"""Dashboard users for the tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from tenants.models import Membership, Tenant


@dataclass
class Login:
    email: str
    password: str


def member(tenant: Tenant, role: str = Membership.Role.OWNER) -> Login:
    """A user with ``role`` in ``tenant`` (committed when the test's database access is)."""
    email = f"{role}-{secrets.token_hex(4)}@{tenant.slug}.example"
    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return Login(email, password)


def host(tenant: Tenant) -> str:
    return f"{tenant.slug}.localhost"
