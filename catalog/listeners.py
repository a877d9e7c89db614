"""What the catalog does when other apps say something changed (registered in CatalogConfig.ready)."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from catalog.event_settings import EventSettings
from catalog.services.online import online_rebuild_request
from tenants.models import Tenant


def on_event_settings_changed(tenant_id: int, before: object, after: object) -> None:
    """New weights change popularity: recompute it from the events, in the tenant's schema."""
    if not isinstance(before, EventSettings) or not isinstance(after, EventSettings) or before.weights == after.weights:
        return
    with tenant_context(Tenant.objects.get(pk=tenant_id)):
        online_rebuild_request()
