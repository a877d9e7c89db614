"""Properties (Hypothesis) of list pagination: cursors round-trip, never fail, and walking pages
sees every item or event once, in order, even as new ones arrive.

Database-backed properties run in a store of their own, each example's rows rolled back.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog.models import Event, Item
from catalog.selectors import customer_events, item_list
from shelfwise.http.errors import Problem
from shelfwise.http.pagination import cursor_decode, cursor_encode
from tenants.models import Tenant
from tests.factories import CustomerFactory, ItemFactory
from tests.helpers import DB_EXAMPLES, PURE_EXAMPLES, scratch

PURE = settings(**PURE_EXAMPLES)
DB = settings(**DB_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# =========================================================================== pagination

aware_datetimes = st.datetimes(
    # (Hypothesis takes naive bounds and attaches the zone; a day's margin keeps UTC in range.)
    min_value=datetime(1, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.timezones() | st.just(UTC),
)
row_ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@PURE
@given(aware_datetimes, row_ids)
def test_a_cursor_decodes_to_the_position_it_encodes(at: datetime, row_id: int) -> None:
    token = cursor_encode(at, row_id)

    decoded_at, decoded_id = cursor_decode(token, (datetime, int))

    assert decoded_at - at == timedelta(0)  # the same instant (== is False across zones in a DST fold)
    assert decoded_id == row_id
    assert token.isascii()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # URL-safe


def _b64(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
# PostgreSQL holds UTC offsets up to 15:59; Python's go to 23:59 (cursors are turned to UTC).
offsets = st.integers(-(16 * 60 - 1), 16 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
odd_timestamps = st.builds(lambda at, zone: at.replace(tzinfo=zone).isoformat(), st.datetimes(), offsets)
tokens = (
    st.text(max_size=40)
    | json_values.map(_b64)
    | st.tuples(odd_timestamps | st.text(max_size=30), json_values).map(lambda pair: _b64(list(pair)))
)


@pytest.mark.django_db
@DB
@given(token=tokens)
def test_any_cursor_is_a_page_or_a_400_never_an_error(module_store: Tenant, token: str) -> None:
    with scratch(module_store):
        try:
            results, status = item_list(cursor=token, limit=5).results, 200
        except Problem as problem:
            results, status = [], problem.status_code

    assert status in {200, 400}
    assert results == []


@pytest.mark.django_db
@settings(max_examples=10, deadline=None)
@example(minutes=16 * 60)
@given(minutes=st.integers(16 * 60, 24 * 60 - 1) | st.integers(-(24 * 60 - 1), -16 * 60))
def test_a_cursor_with_an_offset_postgres_cannot_hold_is_a_400(module_store: Tenant, minutes: int) -> None:
    stamp = datetime(2000, 1, 1, tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    with scratch(module_store):
        try:
            item_list(cursor=_b64([stamp, 1]), limit=5)
        except Problem as problem:
            status = problem.status_code
        else:
            status = 200

    assert status in {200, 400}


# Few distinct instants, so many rows share one: the tie-breaking id must carry the order.
instants = st.sampled_from([NOW - timedelta(microseconds=n) for n in (0, 1, 2, 1_000_000, 86_400_000_000)])


@pytest.mark.django_db
@DB
@given(
    rows=st.lists(st.tuples(instants, st.booleans(), st.booleans()), max_size=30),
    limit=st.integers(1, 8),
    include_deleted=st.booleans(),
    arrivals=st.lists(st.integers(0, 3), max_size=5),
)
def test_walking_item_pages_sees_every_item_once_in_order_even_as_items_arrive(
    module_store: Tenant,
    rows: list[tuple[datetime, bool, bool]],
    limit: int,
    include_deleted: bool,
    arrivals: list[int],
) -> None:
    with scratch(module_store):
        Item.objects.bulk_create(
            Item(external_id=f"i{n}", in_stock=stock, created_at=at, updated_at=at, deleted_at=at if gone else None)
            for n, (at, stock, gone) in enumerate(rows)
        )
        present = list(
            Item.objects.filter(**({} if include_deleted else {"deleted_at__isnull": True})).values_list(
                "updated_at", "id"
            )
        )
        seen: list[tuple[datetime, int]] = []
        pages, cursor = 0, None
        while True:
            page = item_list(include_deleted=include_deleted, cursor=cursor, limit=limit)
            pages += 1
            seen += [(item.updated_at, item.id) for item in page.results]
            assert len(page.results) == limit or page.next_cursor is None
            if page.next_cursor is None:
                break
            # New items arrive between the first pages (stamped later than everything listed so far).
            count = arrivals[pages - 1] if pages <= len(arrivals) else 0
            stamp = NOW + timedelta(seconds=pages)
            Item.objects.bulk_create(
                Item(external_id=f"new-{pages}-{k}", created_at=stamp, updated_at=stamp) for k in range(count)
            )
            cursor = page.next_cursor

    assert len(seen) == len(set(seen))  # no item twice
    assert seen == sorted(seen)  # in (updated_at, id) order
    assert set(present) <= set(seen)  # no item that was there all along is skipped
    assert pages == max(1, math.ceil(len(seen) / limit))  # full pages, and no empty one at the end


@pytest.mark.django_db
@DB
@given(events=st.lists(instants, max_size=25), limit=st.integers(1, 6))
def test_walking_a_customers_history_sees_every_event_once_newest_first(
    module_store: Tenant, events: list[datetime], limit: int
) -> None:
    with scratch(module_store):
        shopper = CustomerFactory(external_id="shopper")
        other = CustomerFactory(external_id="other")
        item = ItemFactory(external_id="item")
        Event.objects.bulk_create(
            Event(
                event_id=f"e{n}",
                customer=shopper if n % 3 else other,
                item=item,
                type="view",
                timestamp=at,
                received_at=NOW,
            )
            for n, at in enumerate(events)
        )
        expected = set(Event.objects.filter(customer=shopper).values_list("timestamp", "id"))
        seen: list[tuple[datetime, int]] = []
        cursor = None
        while True:
            page = customer_events(customer=shopper, cursor=cursor, limit=limit)
            seen += [(event.timestamp, event.id) for event in page.results]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert seen == sorted(seen, reverse=True)
