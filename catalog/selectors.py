"""Reads of the catalog: items, customers and a customer's event history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Q, QuerySet

from catalog.models import Customer, Event, Item
from shelfwise.http.pagination import cursor_decode, cursor_encode

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    results: list[T]
    next_cursor: str | None


def item_get(*, external_id: str) -> Item | None:
    """A live (not deleted) item by the store's id."""
    return Item.objects.filter(external_id=external_id, deleted_at__isnull=True).first()


def item_list(
    *,
    category: str | None = None,
    in_stock: bool | None = None,
    updated_since: datetime | None = None,
    include_deleted: bool = False,
    cursor: str | None = None,
    limit: int,
) -> Page[Item]:
    """Items in (updated_at, id) order, so a store can sync changes with ``updated_since``."""
    queryset: QuerySet[Item] = Item.objects.all()
    if not include_deleted:
        queryset = queryset.filter(deleted_at__isnull=True)
    if category is not None:
        queryset = queryset.filter(categories__contains=[category])
    if in_stock is not None:
        queryset = queryset.filter(in_stock=in_stock)
    if updated_since is not None:
        queryset = queryset.filter(updated_at__gte=updated_since)
    return _keyset(queryset, cursor=cursor, limit=limit)


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()


def customer_list(
    *, updated_since: datetime | None = None, anonymous: bool | None = None, cursor: str | None = None, limit: int
) -> Page[Customer]:
    queryset: QuerySet[Customer] = Customer.objects.all()
    if updated_since is not None:
        queryset = queryset.filter(updated_at__gte=updated_since)
    if anonymous is not None:
        queryset = queryset.filter(anonymous=anonymous)
    return _keyset(queryset, cursor=cursor, limit=limit)


def _keyset(queryset: QuerySet[T], *, cursor: str | None, limit: int) -> Page[T]:  # type: ignore[type-var]
    if cursor:
        updated_at, row_id = cursor_decode(cursor, (datetime, int))
        queryset = queryset.filter(Q(updated_at__gt=updated_at) | Q(updated_at=updated_at, id__gt=row_id))
    rows = list(queryset.order_by("updated_at", "id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = cursor_encode(last.updated_at, last.id)  # type: ignore[attr-defined]
    return Page(rows, next_cursor)


def customer_events(
    *,
    customer: Customer,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int,
) -> Page[Event]:
    """A customer's events, newest first, with their items' external ids (one query)."""
    queryset = Event.objects.filter(customer_id=customer.id).select_related("item")
    if event_type is not None:
        queryset = queryset.filter(type=event_type)
    if since is not None:
        queryset = queryset.filter(timestamp__gte=since)
    if until is not None:
        queryset = queryset.filter(timestamp__lt=until)
    if cursor:
        timestamp, row_id = cursor_decode(cursor, (datetime, int))
        queryset = queryset.filter(Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, id__lt=row_id))
    rows = list(queryset.order_by("-timestamp", "-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursor_encode(rows[-1].timestamp, rows[-1].id)
    return Page(rows, next_cursor)


def customer_recent_events(
    *, external_id: str, since: datetime | None = None, limit: int = 200
) -> list[tuple[str, str, float | None, datetime]]:
    """A customer's latest events as (item external id, type, value, time), newest first.

    On the serving path (every cache miss), so one hand-written query on the
    ``event_customer_time`` index rather than the ORM's (same result, a fraction of the cost)."""
    from django.db import connection

    sql, params = customer_recent_events_query(external_id=external_id, since=since, limit=limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(item, kind, value, when) for item, kind, value, when, _id in cursor.fetchall()]


def customer_recent_events_query(
    *, external_id: str, since: datetime | None = None, limit: int = 200
) -> tuple[str, list[Any]]:
    """``customer_recent_events``' SQL and parameters (its columns, then the event's row id), for
    a caller that reads them in the same round trip as something else."""
    since_clause = "AND e.timestamp > %s" if since is not None else ""
    sql = (
        f"SELECT i.external_id, e.type, e.value, e.timestamp, e.id FROM {Event._meta.db_table} e "  # noqa: S608 - our tables
        f"JOIN {Customer._meta.db_table} c ON c.id = e.customer_id "
        f"JOIN {Item._meta.db_table} i ON i.id = e.item_id "
        f"WHERE c.external_id = %s AND i.deleted_at IS NULL {since_clause} "
        "ORDER BY e.timestamp DESC, e.id DESC LIMIT %s"
    )
    return sql, [external_id, *([since] if since is not None else []), limit]


ITEM_FIELDS = ("title", "description", "categories", "price", "currency", "in_stock", "properties")


def items_fields(*, external_ids: list[str], fields: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """The requested fields of live items, by external id (one query)."""
    wanted = [name for name in fields if name in ITEM_FIELDS]
    rows = Item.objects.filter(external_id__in=external_ids, deleted_at__isnull=True).values("external_id", *wanted)
    out: dict[str, dict[str, object]] = {}
    for row in rows:
        external_id = str(row.pop("external_id"))
        if "price" in row and row["price"] is not None:
            row["price"] = float(row["price"])
        out[external_id] = row
    return out


def popular_item_ids(*, limit: int, where: str = "", params: list[object] | None = None) -> list[tuple[str, float]]:
    """Items by number of events (all time), optionally restricted by a SQL condition on items ``i``."""
    from django.db import connection

    condition = f"WHERE {where}" if where else ""
    sql = (
        f"SELECT i.external_id, count(*)::float8 AS n FROM {Event._meta.db_table} e "  # noqa: S608 - our tables
        f"JOIN {Item._meta.db_table} i ON i.id = e.item_id {condition} "
        f"GROUP BY i.external_id ORDER BY n DESC, i.external_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(params or []), limit])  # type: ignore[list-item]  # psycopg adapts each
        return [(str(row[0]), float(row[1])) for row in cursor.fetchall()]


def item_categories(*, external_id: str) -> list[str] | None:
    """A live item's categories; None if there is no such (live) item."""
    row = (
        Item.objects.filter(external_id=external_id, deleted_at__isnull=True)
        .values_list("categories", flat=True)
        .first()
    )
    return None if row is None else list(row)


def events_at_least(count: int) -> int:
    """min(count, number of events) without counting a big table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {Event._meta.db_table} LIMIT %s) s", [count])  # noqa: S608
        return int(cursor.fetchone()[0])


def events_estimated_count() -> int:
    """PostgreSQL's estimate of the events table's rows (no count over a big table)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [Event._meta.db_table]
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def customers_most_active(*, limit: int) -> list[str]:
    """The customers with the most events (their ids), most active first."""
    from django.db.models import Count

    return list(
        Event.objects.values_list("customer__external_id", flat=True).annotate(n=Count("id")).order_by("-n")[:limit]
    )


def item_deleted_ids() -> set[str]:
    """The ids of the store's deleted items."""
    return set(Item.objects.filter(deleted_at__isnull=False).values_list("external_id", flat=True))
