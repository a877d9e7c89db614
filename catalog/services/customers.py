"""Customers: batch upsert (also behind PUT) and erasure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from django.db import connection, transaction
from django.utils import timezone

from catalog.contracts import CustomerFields, RowError
from catalog.hooks import customer_erased_notify
from catalog.models import Customer, Event
from catalog.online_features import customer_key_hash
from catalog.services import usage
from catalog.services.online import online_forget_now, online_forget_record
from catalog.services.rows import BatchResult, quota_error
from shelfwise.datastores.postgres import bulk_cursor, retried_on_deadlock
from tenants.current import tenant_current

CUSTOMER_TABLE = Customer._meta.db_table
EVENT_TABLE = Event._meta.db_table

_UPSERT_SQL = f"""
INSERT INTO {CUSTOMER_TABLE} AS t (external_id, anonymous, properties, created_at, updated_at)
SELECT s.external_id, s.anonymous, s.properties::jsonb, %(now)s, %(now)s
FROM unnest(%(ids)b::text[], %(anonymous)b::bool[], %(properties)b::text[]) AS s(external_id, anonymous, properties)
ON CONFLICT (external_id) DO UPDATE SET
    anonymous = EXCLUDED.anonymous, properties = EXCLUDED.properties, updated_at = EXCLUDED.updated_at
WHERE (t.anonymous, t.properties) IS DISTINCT FROM (EXCLUDED.anonymous, EXCLUDED.properties)
RETURNING t.external_id, (t.xmax = 0) AS inserted
"""  # noqa: S608 - the table name is ours


@retried_on_deadlock
def customers_upsert(
    *, rows: Sequence[tuple[int, str, CustomerFields]], max_customers: int | None, now: datetime | None = None
) -> BatchResult:
    """Create or replace customers in one statement (the last row wins for a repeated id)."""
    now = now or timezone.now()
    result = BatchResult(received=len(rows))
    latest: dict[str, tuple[int, CustomerFields]] = {}
    for index, external_id, fields in rows:
        latest[external_id] = (index, fields)
    if not latest:
        return result
    with transaction.atomic():
        with bulk_cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {CUSTOMER_TABLE} WHERE external_id = ANY(%b::text[])",  # noqa: S608
                [list(latest)],
            )
            existing = {row[0] for row in cursor.fetchall()}
        adding = [external_id for external_id in latest if external_id not in existing]
        remaining = usage.usage_remaining(limit=max_customers, metric=usage.CUSTOMERS)
        if remaining is not None and len(adding) > remaining:
            refused = sorted(adding, key=lambda external_id: latest[external_id][0])[remaining:]
            for external_id in refused:
                result.errors.append(quota_error(latest.pop(external_id)[0], "customers", max_customers or 0))
        if not latest:
            return result
        ordered = sorted(latest.items())  # locks in id order: concurrent batches cannot deadlock
        with bulk_cursor() as cursor:
            cursor.execute(
                _UPSERT_SQL,
                {
                    "now": now,
                    "ids": [external_id for external_id, _ in ordered],
                    "anonymous": [fields.anonymous for _, (_i, fields) in ordered],
                    "properties": [orjson.dumps(fields.properties).decode() for _, (_i, fields) in ordered],
                },
            )
            written = cursor.fetchall()
        result.created = sum(1 for _external_id, inserted in written if inserted)
        result.updated = len(written) - result.created
        result.unchanged = len(latest) - len(written)
        result.stored = len(written)
        usage.usage_add(metric=usage.CUSTOMERS, delta=result.created)
    return result


def customer_upsert(
    *, external_id: str, fields: CustomerFields, max_customers: int | None
) -> tuple[Customer, bool, RowError | None]:
    """PUT one customer: returns the customer, whether it was created, or the quota error."""
    result = customers_upsert(rows=[(0, external_id, fields)], max_customers=max_customers)
    if result.errors:
        return Customer(), False, result.errors[0]
    return Customer.objects.get(external_id=external_id), result.created == 1, None


def customer_erase(*, external_id: str) -> bool:
    """Erase a customer (privacy): their events and row, their Redis traces (online features,
    cached lists) and, via listeners, everything serving derived from them. Idempotent; True
    if a row existed.

    One transaction deletes the rows, records the Redis clean-up in the outbox and tells the
    listeners (serving records the erasure and declines the customer from the next request,
    in every process). The Redis clean-up then runs at once — or, if Redis cannot be reached,
    within seconds of its return (the outbox drain). A retried erasure repeats it all."""
    tenant_id = tenant_current().pk
    with transaction.atomic():
        customer_id = (
            Customer.objects.select_for_update().filter(external_id=external_id).values_list("id", flat=True).first()
        )
        if customer_id is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {EVENT_TABLE} WHERE customer_id = %s", [customer_id])  # noqa: S608
                cursor.execute(f"DELETE FROM {CUSTOMER_TABLE} WHERE id = %s", [customer_id])  # noqa: S608
            usage.usage_add(metric=usage.CUSTOMERS, delta=-1)
        forget = online_forget_record(key_hash=customer_key_hash(external_id))
        customer_erased_notify(tenant_id, external_id)
    online_forget_now(tenant_id=tenant_id, row=forget)
    return customer_id is not None
