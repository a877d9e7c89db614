"""Quota counters (live items, customers, events per month), kept in the write transactions.

Quotas are checked per batch without locking the counter, so concurrent batches can overshoot a
limit by at most their own size; `usage_recount` restores exact totals.
"""

from __future__ import annotations

from django.db import connection

from catalog.models import Customer, Item, UsageCounter

ITEMS = "items"
CUSTOMERS = "customers"
EVENTS = "events"
ALL_TIME = "all"


def usage_get(*, metric: str, period: str = ALL_TIME) -> int:
    """Current value of a counter (0 if never written)."""
    value = UsageCounter.objects.filter(metric=metric, period=period).values_list("value", flat=True).first()
    return int(value or 0)


def usage_add(*, metric: str, delta: int, period: str = ALL_TIME) -> int:
    """Add ``delta`` to a counter inside the caller's transaction; returns the new value."""
    if delta == 0:
        return usage_get(metric=metric, period=period)
    table = UsageCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (metric, period, value) VALUES (%s, %s, %s) "  # noqa: S608 - table name is ours
            f"ON CONFLICT (metric, period) DO UPDATE SET value = {table}.value + EXCLUDED.value RETURNING value",
            [metric, period, delta],
        )
        return int(cursor.fetchone()[0])


def usage_remaining(*, limit: int | None, metric: str, period: str = ALL_TIME) -> int | None:
    """How many more the quota allows (None: unlimited)."""
    if limit is None:
        return None
    return max(limit - usage_get(metric=metric, period=period), 0)


def usage_recount() -> dict[str, int]:
    """Recompute the running totals from the tables (drift from concurrent batches, repairs)."""
    counts = {
        ITEMS: Item.objects.filter(deleted_at__isnull=True).count(),
        CUSTOMERS: Customer.objects.count(),
    }
    for metric, value in counts.items():
        UsageCounter.objects.update_or_create(metric=metric, period=ALL_TIME, defaults={"value": value})
    return counts
