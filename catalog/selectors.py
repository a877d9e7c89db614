"""Reads of the catalog: items, customers and a customer's event history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.db.models import Q, QuerySet

from catalog.models import Customer, Event, Item
from shelfwise.pagination import cursor_decode, cursor_encode

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
