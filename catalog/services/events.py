"""Event ingestion: validate, resolve (or create) customers and items, insert idempotently.

One batch is a handful of statements regardless of its size: two id lookups, at most two
stub inserts, one ``INSERT … SELECT FROM unnest(…) ON CONFLICT (event_id) DO NOTHING`` and one
usage-counter update, in one transaction. After commit the online features are updated in
Redis and listeners (serving) are told which customers changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from django.db import transaction

from catalog.contracts import EventIn, RowError, event_time_bounds, validate_rows
from catalog.models import Customer, Event, Item
from catalog.online_features import EventFeature
from catalog.services import usage
from catalog.services.context import IngestContext
from catalog.services.online import online_events_stored
from catalog.services.rows import BatchResult, ids_for, insert_stubs, quota_error
from shelfwise.datastores.postgres import bulk_cursor, retried_on_deadlock
from shelfwise.observability.metrics import events_ingested

EVENT_TABLE = Event._meta.db_table
ITEM_TABLE = Item._meta.db_table
CUSTOMER_TABLE = Customer._meta.db_table

_INSERT_SQL = f"""
INSERT INTO {EVENT_TABLE}
    (event_id, customer_id, item_id, type, value, timestamp, recommendation_id, session_id, order_id, properties,
     received_at)
SELECT s.event_id, s.customer_id, s.item_id, s.type, s.value, s.ts, s.recommendation_id, s.session_id, s.order_id,
       s.properties::jsonb, %(received_at)s
FROM unnest(%(event_ids)b::text[], %(customer_ids)b::bigint[], %(item_ids)b::bigint[], %(types)b::text[],
            %(values)b::float8[], %(timestamps)b::timestamptz[], %(recommendation_ids)b::text[],
            %(session_ids)b::text[], %(order_ids)b::text[], %(properties)b::text[])
     AS s(event_id, customer_id, item_id, type, value, ts, recommendation_id, session_id, order_id, properties)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""  # noqa: S608 - the table name is ours

_ITEM_STUB_COLUMNS = {
    "title": "",
    "description": "",
    "categories": "{}",
    "currency": "",
    "in_stock": True,
    "properties": "{}",
}
_CUSTOMER_STUB_COLUMNS = {"anonymous": False, "properties": "{}"}


@dataclass
class _Row:
    index: int
    event: EventIn
    event_id: str


@retried_on_deadlock
def events_ingest(*, rows: Sequence[Any], context: IngestContext) -> BatchResult:
    """Store a batch of raw event rows; valid rows are stored, the rest reported per row."""
    result = BatchResult(received=len(rows))
    valid, errors = validate_rows(EventIn, rows)
    result.errors.extend(errors)
    accepted = _semantic_checks(valid, context, result)
    if not accepted:
        return result

    with transaction.atomic():
        customer_ids = _resolve(
            CUSTOMER_TABLE,
            accepted,
            key=lambda row: row.event.customer_id,
            create=context.settings.auto_create_customers,
            stub_columns=_CUSTOMER_STUB_COLUMNS,
            metric=usage.CUSTOMERS,
            limit=context.max_customers,
            unknown_code="unknown_customer",
            field="customer_id",
            context=context,
            result=result,
        )
        accepted = [row for row in accepted if row.event.customer_id in customer_ids]
        item_ids = _resolve(
            ITEM_TABLE,
            accepted,
            key=lambda row: row.event.item_id,
            create=context.settings.auto_create_items,
            stub_columns=_ITEM_STUB_COLUMNS,
            metric=usage.ITEMS,
            limit=context.max_items,
            unknown_code="unknown_item",
            field="item_id",
            context=context,
            result=result,
        )
        accepted = [row for row in accepted if row.event.item_id in item_ids]

        remaining = usage.usage_remaining(limit=context.max_events_per_month, metric=usage.EVENTS, period=context.month)
        if remaining is not None and len(accepted) > remaining:
            for row in accepted[remaining:]:
                result.errors.append(quota_error(row.index, "events this month", context.max_events_per_month or 0))
            accepted = accepted[:remaining]
        if not accepted:
            return result

        # Inserted in event-id order, so that batches sharing event ids wait for each other in
        # one order instead of deadlocking on the unique index.
        accepted.sort(key=lambda row: row.event_id)
        with bulk_cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                {
                    "received_at": context.now,
                    "event_ids": [row.event_id for row in accepted],
                    "customer_ids": [customer_ids[row.event.customer_id] for row in accepted],
                    "item_ids": [item_ids[row.event.item_id] for row in accepted],
                    "types": [row.event.type for row in accepted],
                    "values": [row.event.value for row in accepted],
                    "timestamps": [row.event.timestamp or context.now for row in accepted],
                    "recommendation_ids": [row.event.recommendation_id for row in accepted],
                    "session_ids": [row.event.session_id for row in accepted],
                    "order_ids": [row.event.order_id for row in accepted],
                    "properties": [
                        orjson.dumps(row.event.properties).decode() if row.event.properties else "{}"
                        for row in accepted
                    ],
                },
            )
            inserted = {event_id for (event_id,) in cursor.fetchall()}
        result.stored = len(inserted)
        result.duplicates += len(accepted) - len(inserted)
        usage.usage_add(metric=usage.EVENTS, period=context.month, delta=len(inserted))
        transaction.on_commit(partial(events_ingested, tenant_id=context.tenant_id, count=len(inserted)))

        stored_rows = [row for row in accepted if row.event_id in inserted]
        features = [
            EventFeature(
                customer_id=row.event.customer_id,
                item_id=row.event.item_id,
                timestamp=(row.event.timestamp or context.now).timestamp(),
                weight=context.settings.weight(row.event.type, row.event.value),
                event_id=row.event_id,
            )
            for row in stored_rows
        ]
        changed_customers = sorted({row.event.customer_id for row in stored_rows})
        # After commit: popularity, recent items and cache invalidation in Redis (or the outbox).
        online_events_stored(tenant_id=context.tenant_id, features=features, customers=changed_customers)
    return result


def _semantic_checks(valid: Sequence[tuple[int, EventIn]], context: IngestContext, result: BatchResult) -> list[_Row]:
    """Checks that need the store's settings or the clock; assigns event ids; drops in-batch repeats."""
    oldest, newest = event_time_bounds(context.now)
    known_types = context.settings.weights
    accepted: list[_Row] = []
    seen: set[str] = set()
    for index, event in valid:
        if event.type not in known_types:
            result.errors.append(
                RowError(index, "type", "unknown_event_type", "not a built-in type nor one of the store's custom types")
            )
            continue
        if event.timestamp is not None and event.timestamp > newest:
            result.errors.append(RowError(index, "timestamp", "timestamp_in_future", "timestamp is in the future"))
            continue
        if event.timestamp is not None and event.timestamp < oldest:
            result.errors.append(RowError(index, "timestamp", "timestamp_too_old", "timestamp is before 1990"))
            continue
        if event.type == "rating" and event.value is None:
            result.errors.append(RowError(index, "value", "required", "rating events need a value"))
            continue
        event_id = event.event_id or uuid.uuid4().hex
        if event_id in seen:
            result.duplicates += 1
            continue
        seen.add(event_id)
        accepted.append(_Row(index, event, event_id))
    return accepted


def _resolve(
    table: str,
    rows: Sequence[_Row],
    *,
    key: Any,
    create: bool,
    stub_columns: dict[str, Any],
    metric: str,
    limit: int | None,
    unknown_code: str,
    field: str,
    context: IngestContext,
    result: BatchResult,
) -> dict[str, int]:
    """Internal ids for the rows' external ids, creating unknown ones if allowed (and in quota)."""
    first_index: dict[str, int] = {}
    for row in rows:
        first_index.setdefault(key(row), row.index)
    found = ids_for(table, first_index)
    # In batch order, so a quota cuts off the later rows.
    missing = sorted(first_index.keys() - found.keys(), key=first_index.__getitem__)
    if not missing:
        return found
    refused: dict[str, tuple[str, str]] = {}
    if not create:
        refused = {external_id: (unknown_code, f"no such {field.removesuffix('_id')}") for external_id in missing}
        missing = []
    else:
        remaining = usage.usage_remaining(limit=limit, metric=metric)
        if remaining is not None and len(missing) > remaining:
            for external_id in missing[remaining:]:
                refused[external_id] = ("quota_exceeded", f"the plan allows {limit} {metric}; this row would exceed it")
            missing = missing[:remaining]
    if missing:
        created, new = insert_stubs(table, missing, context.now, stub_columns)
        found.update(created)
        usage.usage_add(metric=metric, delta=new)
        result.extra[f"{metric}_created"] = result.extra.get(f"{metric}_created", 0) + new
    for row in rows:
        reason = refused.get(key(row))
        if reason is not None:
            result.errors.append(RowError(row.index, field, reason[0], reason[1]))
    return found
