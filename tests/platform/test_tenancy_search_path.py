"""With TENANT_LIMIT_SET_CALLS, `SET search_path` is sent once per schema switch rather than
before every statement. These tests hold the connection to the schema it says it is on through
everything that can silently move PostgreSQL's search_path back: a transaction rolled back, a
savepoint rolled back, a connection closed — on real PostgreSQL, with the same table in both
schemas (the case where a wrong path returns the other store's rows without any error)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Item
from tests.factories import make_tenant
from tests.helpers import TenantHandle


class _Boom(Exception):
    pass


@pytest.fixture
def two_stores(live_db: None) -> Iterator[tuple[TenantHandle, TenantHandle]]:
    """Two stores holding an item with the same id and different titles."""
    stores = make_tenant("path-a"), make_tenant("path-b")
    for store, title in zip(stores, ("A's item", "B's item"), strict=True):
        response = store.client().put("/api/v1/items/same", {"title": title}, format="json")
        assert response.status_code in {200, 201}, response.content
    yield stores
    connection.set_schema_to_public()


def title_seen() -> str:
    return Item.objects.get(external_id="same").title


def read_in_a_failing_transaction(store: TenantHandle, seen: list[str]) -> None:
    """Switch to ``store`` inside a transaction (or savepoint), read the title, roll back."""
    with transaction.atomic():
        connection.set_tenant(store.tenant)
        seen.append(title_seen())
        raise _Boom


def test_settings_limit_the_set_calls() -> None:
    from django.conf import settings

    assert settings.TENANT_LIMIT_SET_CALLS is True  # else the rest of this module proves little


def test_one_set_per_switch_and_each_switch_is_followed(two_stores: tuple[TenantHandle, TenantHandle]) -> None:
    a, b = two_stores
    with CaptureQueriesContext(connection) as queries:
        connection.set_tenant(a.tenant)
        seen = [title_seen(), title_seen()]
        connection.set_tenant(b.tenant)
        seen += [title_seen(), title_seen()]
        connection.set_tenant(a.tenant)
        seen.append(title_seen())
    sets = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SET search_path")]
    assert seen == ["A's item", "A's item", "B's item", "B's item", "A's item"]
    assert len(sets) == 3


def test_a_rolled_back_transaction_does_not_leave_the_other_stores_path(
    two_stores: tuple[TenantHandle, TenantHandle],
) -> None:
    a, b = two_stores
    connection.set_tenant(b.tenant)
    assert title_seen() == "B's item"  # the session's path is B's, outside any transaction
    seen: list[str] = []
    with pytest.raises(_Boom):
        read_in_a_failing_transaction(a, seen)  # SET to A inside the transaction...
    assert seen == ["A's item"]
    # ...undone by the ROLLBACK: PostgreSQL is back on B's path while the connection says A.
    assert connection.tenant == a.tenant
    assert title_seen() == "A's item"


def test_a_rolled_back_savepoint_does_not_leave_the_other_stores_path(
    two_stores: tuple[TenantHandle, TenantHandle],
) -> None:
    a, b = two_stores
    with transaction.atomic():
        connection.set_tenant(b.tenant)
        assert title_seen() == "B's item"
        seen: list[str] = []
        with pytest.raises(_Boom):
            read_in_a_failing_transaction(a, seen)  # a savepoint: SET to A inside it, undone with it
        assert seen == ["A's item"]
        assert title_seen() == "A's item"


def test_a_closed_connection_sets_the_path_again(two_stores: tuple[TenantHandle, TenantHandle]) -> None:
    a, _b = two_stores
    connection.set_tenant(a.tenant)
    assert title_seen() == "A's item"
    connection.close()
    assert title_seen() == "A's item"


def test_a_request_sets_the_path_once(two_stores: tuple[TenantHandle, TenantHandle]) -> None:
    a, _b = two_stores
    events = [{"type": "view", "customer_id": "shopper", "item_id": "same"}]
    with CaptureQueriesContext(connection) as queries:
        response = a.client().post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 200, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    assert len([sql for sql in statements if sql.startswith("SET search_path")]) == 1, statements
