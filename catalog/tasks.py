"""Catalog tasks: usage counters and rebuilding online features from PostgreSQL.

Tenant-aware (the schema travels in the task headers); primitive arguments only.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task
from django.utils import timezone
from django_tenants.utils import tenant_context

from catalog.event_settings import event_settings_for
from catalog.hooks import features_rebuilt_notify
from catalog.models import Event
from catalog.online_features import EventFeature, features_apply_once, features_reset
from catalog.services import usage
from shelfwise.datastores.postgres import current_schema
from tenants.current import tenant_current
from tenants.models import Tenant
from tenants.services import tenant_usage_record

logger = logging.getLogger(__name__)

REBUILD_CHUNK = 20_000


@shared_task(name="catalog.tasks.usage_refresh", queue="default")
def usage_refresh() -> dict[str, Any]:
    """Recount the tenant's items, customers and this month's events onto its public row."""
    tenant = tenant_current()
    counts = usage.usage_recount()
    month = f"{timezone.now():%Y-%m}"
    counts["events_this_month"] = usage.usage_get(metric=usage.EVENTS, period=month)
    tenant_usage_record(tenant_id=tenant.pk, usage=counts)
    return {"schema": current_schema(), **counts}


@shared_task(name="catalog.tasks.usage_refresh_all", queue="default")
def usage_refresh_all() -> int:
    """Beat: fan out usage_refresh to every active tenant (each runs in its own schema)."""
    tenants = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE))
    for tenant in tenants:
        with tenant_context(tenant):
            usage_refresh.delay()
    return len(tenants)


@shared_task(
    name="catalog.tasks.features_rebuild", queue="default", soft_time_limit=3600, time_limit=3700, ignore_result=True
)
def features_rebuild() -> dict[str, Any]:
    """Recompute popularity, recent items and the ranker's aggregates in Redis from all of the
    tenant's events, in time order (after event weights changed, or Redis lost its data)."""
    tenant = tenant_current()
    settings = event_settings_for(tenant)
    features_reset(tenant.pk)
    events = (
        Event.objects.order_by("timestamp")
        .values_list("customer__external_id", "item__external_id", "type", "value", "timestamp")
        .iterator(chunk_size=REBUILD_CHUNK)
    )
    chunk: list[EventFeature] = []
    total = 0
    customers: set[str] = set()
    for customer_id, item_id, event_type, value, timestamp in events:
        customers.add(customer_id)
        chunk.append(EventFeature(customer_id, item_id, timestamp.timestamp(), settings.weight(event_type, value)))
        if len(chunk) >= REBUILD_CHUNK:
            features_apply_once(tenant.pk, chunk, batch=uuid.uuid4().hex)  # raises without Redis: retried
            total += len(chunk)
            chunk = []
    features_apply_once(tenant.pk, chunk, batch=uuid.uuid4().hex)
    total += len(chunk)
    # Lists ranked while the features were partial (or gone) are stale now.
    features_rebuilt_notify(tenant.pk, sorted(customers))
    logger.info("rebuilt online features from %d events", total)
    return {"schema": current_schema(), "events": total}
