"""Tenant isolation on the v1 API: another store's key never reads, changes or detects your data."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import Customer, Event, Item
from tests.factories import event, item_body
from tests.helpers import TenantHandle, assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_data(tenant_a: TenantHandle) -> TenantHandle:
    api = tenant_a.client()
    api.put("/api/v1/items/shared-sku", item_body(title="A's item"), format="json")
    api.put("/api/v1/customers/shared-cust", {"properties": {"tier": "a"}}, format="json")
    api.post("/api/v1/events", {"events": [event(1, customer_id="shared-cust", item_id="shared-sku")]}, format="json")
    return tenant_a


def snapshot(handle: TenantHandle):
    connection.set_tenant(handle.tenant)
    try:
        return (
            list(Item.objects.order_by("id").values_list("external_id", "title", "deleted_at")),
            list(Customer.objects.order_by("id").values_list("external_id", "properties")),
            list(Event.objects.order_by("id").values_list("event_id", "customer_id", "item_id")),
        )
    finally:
        connection.set_schema_to_public()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/items/shared-sku",
        "/api/v1/customers/shared-cust",
        "/api/v1/customers/shared-cust/events",
    ],
)
def test_other_tenant_cannot_read_by_id(a_data: TenantHandle, tenant_b: TenantHandle, path: str) -> None:
    response = tenant_b.client().get(path)

    body = assert_problem(response, 404, "not_found")
    missing = tenant_b.client().get(path.replace("shared", "nonexistent"))
    assert missing.json() | {"request_id": None} == body | {"request_id": None}  # indistinguishable


def test_other_tenant_lists_and_deletes_touch_nothing_of_a(a_data: TenantHandle, tenant_b: TenantHandle) -> None:
    before = snapshot(a_data)
    api = tenant_b.client()

    items = api.get("/api/v1/items", {"include_deleted": "true"}).json()["results"]
    customers = api.get("/api/v1/customers").json()["results"]
    deleted_item = api.delete("/api/v1/items/shared-sku")
    erased = api.delete("/api/v1/customers/shared-cust")

    assert items == []
    assert customers == []
    assert_problem(deleted_item, 404, "not_found")
    assert erased.status_code == 204  # erasure always answers 204 …
    assert snapshot(a_data) == before  # … and changed nothing of A's


def test_same_ids_in_b_are_b_own_objects(a_data: TenantHandle, tenant_b: TenantHandle) -> None:
    before = snapshot(a_data)
    api = tenant_b.client()

    put = api.put("/api/v1/items/shared-sku", item_body(title="B's item"), format="json")
    events = api.post(
        "/api/v1/events", {"events": [event(1, customer_id="shared-cust", item_id="shared-sku")]}, format="json"
    )

    assert put.status_code == 201  # created in B, not "updated A's"
    assert events.json()["stored"] == 1  # same event_id as A's, but B's own event
    assert api.get("/api/v1/items/shared-sku").json()["title"] == "B's item"
    assert a_data.client().get("/api/v1/items/shared-sku").json()["title"] == "A's item"
    assert snapshot(a_data) == before


def test_settings_are_per_tenant(a_data: TenantHandle, tenant_b: TenantHandle) -> None:
    tenant_b.client().patch("/api/v1/settings", {"events": {"weights": {"wishlist": 2}}}, format="json")

    a_weights = a_data.client().get("/api/v1/settings").json()["events"]["weights"]

    assert "wishlist" not in a_weights
