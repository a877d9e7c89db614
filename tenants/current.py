"""The store the current request or task works for.

It is resolved once, from the credential, and set on the database connection with the store's
schema: from the API key (``tenants.authentication``), from the dashboard's host and the user's
membership (``shelfwise.http.middleware.TenantRoutingMiddleware``), or from a task's headers
(tenant-schemas-celery). Code below the view asks here and never takes a store from input.
"""

from __future__ import annotations

from django.conf import settings

from shelfwise.datastores.postgres import db
from tenants.models import Tenant


def tenant_current() -> Tenant:
    """The current store; raises outside one (the public schema), where no store's data may be
    read or written. For a request authenticated by key it is a detached copy (id, slug,
    schema, status): read the row again before writing to it."""
    tenant = getattr(db(), "tenant", None)
    if not isinstance(tenant, Tenant) or tenant.schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise RuntimeError("no current store: this runs in a store's schema only")
    return tenant
