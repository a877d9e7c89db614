"""The v1 catalog API on real PostgreSQL and Redis: items, customers, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from catalog.models import Customer, Event, Item
from catalog.services import usage
from tests.factories import event, item_body
from tests.helpers import TenantHandle, assert_problem

pytestmark = pytest.mark.django_db


def in_schema(handle: TenantHandle):
    connection.set_tenant(handle.tenant)


# --------------------------------------------------------------------------- items


def test_put_creates_then_replaces_and_get_reads_back(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()

    created = api.put("/api/v1/items/sku-1", item_body(), format="json")
    replaced = api.put("/api/v1/items/sku-1", item_body(title="New title", in_stock=False), format="json")
    fetched = api.get("/api/v1/items/sku-1")

    assert created.status_code == 201, created.content
    assert replaced.status_code == 200
    body = fetched.json()
    assert body["item_id"] == "sku-1"
    assert body["title"] == "New title"
    assert body["in_stock"] is False
    assert body["price"] == 2.55
    assert body["categories"] == ["home", "candles"]
    assert body["properties"] == {"colour": "white", "tags": ["gift", "heart"], "weight_g": 300}
    assert body["deleted_at"] is None


def test_put_rejects_invalid_fields_and_stores_nothing(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()

    response = api.put(
        "/api/v1/items/sku-bad",
        item_body(price=-1, currency="pounds", surprise=True, properties={"nested": {"a": 1}}),
        format="json",
    )

    body = assert_problem(response, 400, "validation_error")
    fields = {(error["field"], error["code"]) for error in body["errors"]}
    assert ("price", "out_of_range") in fields
    assert ("currency", "invalid_format") in fields
    assert ("surprise", "unknown_field") in fields
    assert ("properties", "invalid") in fields
    in_schema(tenant_a)
    assert not Item.objects.filter(external_id="sku-bad").exists()


def test_put_with_mismatching_id_in_body_is_refused(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().put("/api/v1/items/sku-1", item_body(item_id="sku-2"), format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "item_id"


def test_delete_is_soft_and_put_restores(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    api.put("/api/v1/items/sku-del", item_body(), format="json")

    deleted = api.delete("/api/v1/items/sku-del")
    missing = api.get("/api/v1/items/sku-del")
    again = api.delete("/api/v1/items/sku-del")
    listed = api.get("/api/v1/items?include_deleted=true").json()["results"]
    restored = api.put("/api/v1/items/sku-del", item_body(), format="json")

    assert deleted.status_code == 204
    assert_problem(missing, 404, "not_found")
    assert_problem(again, 404, "not_found")
    assert [row["item_id"] for row in listed if row["deleted_at"]] == ["sku-del"]
    assert restored.status_code == 200
    assert api.get("/api/v1/items/sku-del").status_code == 200


def test_items_batch_upserts_and_reports_rows(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    api.put("/api/v1/items/sku-0", item_body(), format="json")
    rows = [
        {"item_id": "sku-0", **item_body()},  # unchanged
        {"item_id": "sku-1", **item_body(title="one")},
        {"item_id": "sku-2", "title": "two", "price": "abc"},  # bad
        {"item_id": "sku-3", "title": "three"},
        {"title": "no id"},  # bad
    ]

    response = api.post("/api/v1/items:batch", {"items": rows}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["received"], body["created"], body["updated"], body["unchanged"], body["rejected"]) == (5, 2, 0, 1, 2)
    assert [(error["index"], error["field"], error["code"]) for error in body["errors"]] == [
        (2, "price", "invalid_type"),  # a number, not a string
        (4, "item_id", "required"),
    ]
    in_schema(tenant_a)
    assert set(Item.objects.values_list("external_id", flat=True)) == {"sku-0", "sku-1", "sku-3"}


def test_json_types_are_strict_as_documented(tenant_a: TenantHandle) -> None:
    """Issue 19.15: a numeric string was taken for a price, "yes" for a boolean setting and for
    models:train's `tune`."""
    api = tenant_a.client()

    price = api.put("/api/v1/items/strict", {"price": "1.5"}, format="json")
    setting = api.patch("/api/v1/settings", {"events": {"auto_create_items": "yes"}}, format="json")
    tune = api.post("/api/v1/models:train", {"tune": "yes"}, format="json")

    assert [error["field"] for error in assert_problem(price, 400, "validation_error")["errors"]] == ["price"]
    assert [error["field"] for error in assert_problem(setting, 400, "validation_error")["errors"]] == [
        "events.auto_create_items"
    ]
    assert [error["field"] for error in assert_problem(tune, 400, "validation_error")["errors"]] == ["tune"]
    assert api.get("/api/v1/items/strict").status_code == 404
    assert api.get("/api/v1/settings").json()["events"]["auto_create_items"] is True


def test_items_batch_with_only_bad_rows_is_a_problem(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().post("/api/v1/items:batch", {"items": [{"title": 1}]}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["index"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{}] * 10_001}, "items"),
        ({"rows": []}, "items"),
        ([], None),
    ],
)
def test_items_batch_envelope_is_validated(tenant_a: TenantHandle, payload, field) -> None:
    response = tenant_a.client().post("/api/v1/items:batch", payload, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert field in {error["field"] for error in body["errors"]}


def test_list_items_pages_and_filters(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    rows = [
        {"item_id": f"sku-{i:02}", "title": f"t{i}", "categories": ["even" if i % 2 == 0 else "odd"], "in_stock": i < 5}
        for i in range(12)
    ]
    api.post("/api/v1/items:batch", {"items": rows}, format="json")

    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/items", {"limit": 5, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["item_id"] for row in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    even = api.get("/api/v1/items", {"category": "even", "in_stock": "true"}).json()["results"]

    assert sorted(seen) == sorted(row["item_id"] for row in rows)
    assert len(seen) == 12
    assert sorted(row["item_id"] for row in even) == ["sku-00", "sku-02", "sku-04"]


def test_list_items_updated_since(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    api.put("/api/v1/items/old", item_body(), format="json")
    in_schema(tenant_a)
    Item.objects.filter(external_id="old").update(updated_at=datetime(2020, 1, 1, tzinfo=UTC))
    connection.set_schema_to_public()
    api.put("/api/v1/items/new", item_body(), format="json")

    results = api.get("/api/v1/items", {"updated_since": "2025-01-01T00:00:00Z"}).json()["results"]

    assert [row["item_id"] for row in results] == ["new"]


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 1001}, {"cursor": "garbage"}, {"in_stock": "maybe"}, {"colour": "red"}],
)
def test_list_items_rejects_bad_query(tenant_a: TenantHandle, query) -> None:
    response = tenant_a.client().get("/api/v1/items", query)

    assert_problem(response, 400, "validation_error")


def test_item_list_query_count_is_constant(tenant_a: TenantHandle, django_assert_max_num_queries) -> None:
    api = tenant_a.client()
    api.post("/api/v1/items:batch", {"items": [{"item_id": f"q{i}"} for i in range(50)]}, format="json")

    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/items", {"limit": 50})

    assert len(response.json()["results"]) == 50


# --------------------------------------------------------------------------- customers


def test_customer_put_get_list_and_batch(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()

    created = api.put("/api/v1/customers/alice", {"properties": {"tier": "gold"}}, format="json")
    batch = api.post(
        "/api/v1/customers:batch",
        {"customers": [{"customer_id": "bob"}, {"customer_id": "anon-1", "anonymous": True}, {"customer_id": ""}]},
        format="json",
    )
    anonymous = api.get("/api/v1/customers", {"anonymous": "true"}).json()["results"]

    assert created.status_code == 201
    assert api.get("/api/v1/customers/alice").json()["properties"] == {"tier": "gold"}
    assert batch.json()["created"] == 2
    assert batch.json()["errors"][0]["index"] == 2
    assert [row["customer_id"] for row in anonymous] == ["anon-1"]


def test_types_are_strict_json_types(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().post(
        "/api/v1/events",
        {"events": [{"customer_id": 17850, "item_id": "85123", "type": "view", "timestamp": 1700000000}]},
        format="json",
    )

    body = assert_problem(response, 400, "validation_error")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("customer_id", "invalid_type"),
        ("timestamp", "invalid_datetime"),
    ]


def test_nul_characters_are_refused(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().put(
        "/api/v1/items/nul", {"title": "a\u0000b", "properties": {"k": "v\u0000"}}, format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert {e["field"] for e in body["errors"]} == {"title", "properties"}


# --------------------------------------------------------------------------- events


def test_events_are_stored_with_created_customers_and_items(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().post("/api/v1/events", {"events": [event(i) for i in range(10)]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {
        "received": 10,
        "stored": 10,
        "duplicates": 0,
        "rejected": 0,
        "customers_created": 3,
        "items_created": 5,
        "errors": [],
        "errors_truncated": False,
    }
    in_schema(tenant_a)
    assert Event.objects.count() == 10
    assert usage.usage_get(metric=usage.ITEMS) == 5
    assert usage.usage_get(metric=usage.CUSTOMERS) == 3


def test_redelivered_batch_is_not_counted_twice(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    batch = {"events": [event(i) for i in range(20)]}

    first = api.post("/api/v1/events", batch, format="json").json()
    second = api.post("/api/v1/events", batch, format="json").json()

    assert (first["stored"], first["duplicates"]) == (20, 0)
    assert (second["stored"], second["duplicates"]) == (0, 20)
    in_schema(tenant_a)
    assert Event.objects.count() == 20
    assert usage.usage_get(metric=usage.EVENTS, period=f"{datetime.now(UTC):%Y-%m}") == 20


def test_repeated_event_id_within_a_batch_is_a_duplicate(tenant_a: TenantHandle) -> None:
    body = tenant_a.client().post("/api/v1/events", {"events": [event(1), event(1)]}, format="json").json()

    assert (body["stored"], body["duplicates"]) == (1, 1)


def test_bad_event_rows_are_reported_and_good_ones_stored(tenant_a: TenantHandle) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    rows = [
        event(0),
        event(1, type="teleport"),
        event(2, timestamp=future),
        event(3, timestamp="2026-01-05T10:00:00"),
        event(4, type="rating"),
        event(5, customer_id="has space"),
        event(6, value="NaN"),
        event(7, type="rating", value=4.5),
    ]

    body = tenant_a.client().post("/api/v1/events", {"events": rows}, format="json").json()

    assert body["stored"] == 2
    assert [(error["index"], error["field"], error["code"]) for error in body["errors"]] == [
        (1, "type", "unknown_event_type"),
        (2, "timestamp", "timestamp_in_future"),
        (3, "timestamp", "timezone_required"),
        (4, "value", "required"),
        (5, "customer_id", "invalid_format"),
        (6, "value", "invalid_type"),
    ]


def test_events_carry_their_session_and_order_and_are_read_back_with_them(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    rows = [
        event(0, customer_id="basket", type="purchase", session_id="visit-7", order_id="order-1"),
        event(1, customer_id="basket", type="purchase", order_id="order-1"),
        event(2, customer_id="basket", type="view", session_id="visit-7"),
        event(3, customer_id="basket"),  # neither: as before
        event(4, customer_id="basket", order_id="has space"),
        event(5, customer_id="basket", session_id="x" * 256),
        event(6, customer_id="basket", order_id=17),
    ]

    body = api.post("/api/v1/events", {"events": rows}, format="json").json()

    assert body["stored"] == 4
    assert [(error["index"], error["field"], error["code"]) for error in body["errors"]] == [
        (4, "order_id", "invalid_format"),
        (5, "session_id", "too_long"),
        (6, "order_id", "invalid_type"),
    ]
    read = {row["event_id"]: row for row in api.get("/api/v1/customers/basket/events").json()["results"]}
    assert {key: (row["session_id"], row["order_id"]) for key, row in read.items()} == {
        "e-0": ("visit-7", "order-1"),
        "e-1": (None, "order-1"),
        "e-2": ("visit-7", None),
        "e-3": (None, None),
    }


def test_custom_event_type_after_settings_change(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()

    before = api.post("/api/v1/events", {"events": [event(1, type="wishlist")]}, format="json")
    patched = api.patch("/api/v1/settings", {"events": {"weights": {"wishlist": 3}}}, format="json")
    after = api.post("/api/v1/events", {"events": [event(1, type="wishlist")]}, format="json")

    assert_problem(before, 400, "validation_error")
    assert patched.status_code == 200, patched.content
    assert patched.json()["events"]["weights"]["wishlist"] == 3
    assert patched.json()["events"]["weights"]["purchase"] == 10
    assert after.json()["stored"] == 1


def test_auto_creation_can_be_switched_off(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    api.put("/api/v1/items/known", item_body(), format="json")
    api.put("/api/v1/customers/known", {}, format="json")
    api.patch(
        "/api/v1/settings", {"events": {"auto_create_items": False, "auto_create_customers": False}}, format="json"
    )

    body = api.post(
        "/api/v1/events",
        {
            "events": [
                event(1, customer_id="known", item_id="known"),
                event(2, customer_id="stranger", item_id="known"),
                event(3, customer_id="known", item_id="mystery"),
            ]
        },
        format="json",
    ).json()

    assert body["stored"] == 1
    assert [(error["index"], error["code"]) for error in body["errors"]] == [
        (1, "unknown_customer"),
        (2, "unknown_item"),
    ]
    in_schema(tenant_a)
    assert not Customer.objects.filter(external_id="stranger").exists()
    assert not Item.objects.filter(external_id="mystery").exists()


def test_settings_reject_bad_values(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().patch(
        "/api/v1/settings", {"events": {"weights": {"view": 1e9}, "bogus": 1}}, format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert {error["field"] for error in body["errors"]} >= {"events.bogus"}


def test_customer_history_is_newest_first_and_paginated(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    rows = [
        event(i, customer_id="hist", timestamp=(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)).isoformat())
        for i in range(7)
    ]
    api.post("/api/v1/events", {"events": rows}, format="json")

    first = api.get("/api/v1/customers/hist/events", {"limit": 4}).json()
    second = api.get("/api/v1/customers/hist/events", {"limit": 4, "cursor": first["next_cursor"]}).json()

    ids = [row["event_id"] for row in first["results"] + second["results"]]
    assert ids == [f"e-{i}" for i in range(6, -1, -1)]
    assert second["next_cursor"] is None
    assert first["results"][0]["item_id"] == "sku-1"


def test_public_key_may_send_events_but_not_read_the_catalog(tenant_a: TenantHandle) -> None:
    from tenants.services import apikey_create

    _key, raw = apikey_create(tenant=tenant_a.tenant, name="web", kind="public", actor="test")
    api = tenant_a.client(raw)

    sent = api.post("/api/v1/events", {"events": [event(1)]}, format="json")
    read = api.get("/api/v1/items")

    assert sent.status_code == 200
    assert_problem(read, 403, "insufficient_scope")


def test_body_must_be_json(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()

    broken = api.post("/api/v1/events", b'{"events": [', content_type="application/json")
    not_utf8 = api.post("/api/v1/events", b'{"events": ["\xff"]}', content_type="application/json")
    form = api.post("/api/v1/events", "events=1", content_type="application/x-www-form-urlencoded")

    assert_problem(broken, 400, "parse_error")
    assert_problem(not_utf8, 400, "parse_error")
    assert_problem(form, 415, "unsupported_media_type")
