"""Items: batch upsert (also behind PUT), soft delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone

from catalog.contracts import ItemFields, RowError
from catalog.hooks import items_changed_notify
from catalog.models import Item
from catalog.online_features import features_forget_items
from catalog.services import usage
from catalog.services.rows import BatchResult, quota_error
from shelfwise.datastores.postgres import bulk_cursor, retried_on_deadlock
from tenants.current import tenant_current

ITEM_TABLE = Item._meta.db_table

_UPSERT_SQL = f"""
INSERT INTO {ITEM_TABLE} AS t
    (external_id, title, description, categories, price, currency, in_stock, properties,
     created_at, updated_at, deleted_at)
SELECT s.external_id, s.title, s.description,
       ARRAY(SELECT jsonb_array_elements_text(s.categories::jsonb)),
       s.price, s.currency, s.in_stock, s.properties::jsonb, %(now)s, %(now)s, NULL
FROM unnest(%(ids)b::text[], %(titles)b::text[], %(descriptions)b::text[], %(categories)b::text[],
            %(prices)b::numeric[], %(currencies)b::text[], %(in_stock)b::bool[], %(properties)b::text[])
     AS s(external_id, title, description, categories, price, currency, in_stock, properties)
ON CONFLICT (external_id) DO UPDATE SET
    title = EXCLUDED.title, description = EXCLUDED.description, categories = EXCLUDED.categories,
    price = EXCLUDED.price, currency = EXCLUDED.currency, in_stock = EXCLUDED.in_stock,
    properties = EXCLUDED.properties, updated_at = EXCLUDED.updated_at, deleted_at = NULL
WHERE (t.title, t.description, t.categories, t.price, t.currency, t.in_stock, t.properties, t.deleted_at)
      IS DISTINCT FROM
      (EXCLUDED.title, EXCLUDED.description, EXCLUDED.categories, EXCLUDED.price, EXCLUDED.currency,
       EXCLUDED.in_stock, EXCLUDED.properties, NULL::timestamptz)
RETURNING t.external_id, (t.xmax = 0) AS inserted
"""  # noqa: S608 - the table name is ours


@retried_on_deadlock
def items_upsert(
    *,
    rows: Sequence[tuple[int, str, ItemFields]],
    max_items: int | None,
    now: datetime | None = None,
) -> BatchResult:
    """Create or replace items in one statement; a deleted item is restored by an upsert.

    ``rows`` are (batch index, external id, validated fields); for a repeated id the last row
    wins. Unchanged items are not rewritten (their ``updated_at`` stays)."""
    now = now or timezone.now()
    result = BatchResult(received=len(rows))
    latest: dict[str, tuple[int, ItemFields]] = {}
    for index, external_id, fields in rows:
        latest[external_id] = (index, fields)
    if not latest:
        return result

    with transaction.atomic():
        with bulk_cursor() as cursor:
            cursor.execute(
                f"SELECT external_id, deleted_at IS NOT NULL FROM {ITEM_TABLE} WHERE external_id = ANY(%b::text[])",  # noqa: S608
                [list(latest)],
            )
            existing = dict(cursor.fetchall())
        # Quota: new items and restored (previously deleted) ones add to the live count.
        adding = [external_id for external_id in latest if external_id not in existing or existing[external_id]]
        remaining = usage.usage_remaining(limit=max_items, metric=usage.ITEMS)
        if remaining is not None and len(adding) > remaining:
            refused = sorted(adding, key=lambda external_id: latest[external_id][0])[remaining:]
            for external_id in refused:
                result.errors.append(quota_error(latest.pop(external_id)[0], "live items", max_items or 0))
            adding = [external_id for external_id in adding if external_id in latest]
        if not latest:
            return result

        ordered = sorted(latest.items())  # locks in id order: concurrent batches cannot deadlock
        params: dict[str, Any] = {
            "now": now,
            "ids": [external_id for external_id, _ in ordered],
            "titles": [fields.title for _, (_i, fields) in ordered],
            "descriptions": [fields.description for _, (_i, fields) in ordered],
            "categories": [orjson.dumps(fields.categories).decode() for _, (_i, fields) in ordered],
            "prices": [fields.price for _, (_i, fields) in ordered],
            "currencies": [fields.currency or "" for _, (_i, fields) in ordered],
            "in_stock": [fields.in_stock for _, (_i, fields) in ordered],
            "properties": [orjson.dumps(fields.properties).decode() for _, (_i, fields) in ordered],
        }
        with bulk_cursor() as cursor:
            cursor.execute(_UPSERT_SQL, params)
            written = cursor.fetchall()
        result.created = sum(1 for _external_id, inserted in written if inserted)
        result.updated = len(written) - result.created
        result.unchanged = len(latest) - len(written)
        result.stored = len(written)
        usage.usage_add(metric=usage.ITEMS, delta=len(adding))
        changed = [external_id for external_id, _inserted in written]
        tenant_id = tenant_current().pk
        transaction.on_commit(lambda: items_changed_notify(tenant_id, changed), robust=True)
    return result


def item_upsert(*, external_id: str, fields: ItemFields, max_items: int | None) -> tuple[Item, bool, RowError | None]:
    """PUT one item: returns the item, whether it was created, or the quota error."""
    result = items_upsert(rows=[(0, external_id, fields)], max_items=max_items)
    if result.errors:
        return Item(), False, result.errors[0]
    return Item.objects.get(external_id=external_id), result.created == 1, None


@transaction.atomic
def item_delete(*, external_id: str) -> bool:
    """Soft-delete an item (its events stay); False if there is no live item with that id."""
    now = timezone.now()
    deleted = Item.objects.filter(external_id=external_id, deleted_at__isnull=True).update(
        deleted_at=now, updated_at=now
    )
    if not deleted:
        return False
    usage.usage_add(metric=usage.ITEMS, delta=-1)
    tenant_id = tenant_current().pk
    transaction.on_commit(lambda: features_forget_items(tenant_id, [external_id]), robust=True)
    transaction.on_commit(lambda: items_changed_notify(tenant_id, [external_id]), robust=True)
    return True
