"""Shared helpers for the tenant administration commands."""

from __future__ import annotations

import getpass
import os

from django.core.management.base import CommandError

from tenants.models import Tenant


def cli_actor() -> str:
    """The audit-log actor for a command run from a shell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid())
    return f"cli:{user}"


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.select_related("plan").filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant {slug!r} (see `manage.py tenant_list`)")
    return tenant
