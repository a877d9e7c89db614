"""What an ingestion call needs to know about its store: settings, quotas, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from catalog.event_settings import EventSettings
from tenants.current import tenant_current
from tenants.models import Tenant
from tenants.store_settings import settings_section_get


@dataclass(frozen=True)
class IngestContext:
    tenant_id: int
    settings: EventSettings
    max_items: int | None
    max_customers: int | None
    max_events_per_month: int | None
    now: datetime

    @classmethod
    def load(cls, now: datetime | None = None) -> IngestContext:
        """One query: the current store's settings and its plan's quotas."""
        row = Tenant.objects.select_related("plan").only("id", "settings", "plan").get(pk=tenant_current().pk)
        plan = row.plan
        return cls(
            tenant_id=row.pk,
            settings=settings_section_get(row.settings or {}, "events", EventSettings),
            max_items=plan.max_items,
            max_customers=plan.max_customers,
            max_events_per_month=plan.max_events_per_month,
            now=now or timezone.now(),
        )

    @property
    def month(self) -> str:
        return f"{self.now:%Y-%m}"
