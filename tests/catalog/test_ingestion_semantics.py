"""Ingestion beyond the happy path: online features, erasure, idempotency keys, rate limits,
quotas and body limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection

from catalog.models import Customer, Event, Item
from catalog.online_features import customer_key_hash, popular_items, recent_items
from tests.factories import event
from tests.helpers import TenantHandle, assert_problem, tables_containing

pytestmark = pytest.mark.django_db


def redis_raw() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def post_events(handle: TenantHandle, rows, **headers):
    return handle.client().post("/api/v1/events", {"events": rows}, format="json", **headers)


# --------------------------------------------------------------------------- features


def test_events_update_recent_items_and_decayed_popularity(tenant_a: TenantHandle, django_capture_on_commit_callbacks):
    now = datetime.now(UTC)
    rows = [
        event(1, customer_id="c1", item_id="a", type="purchase", timestamp=(now - timedelta(hours=3)).isoformat()),
        event(2, customer_id="c1", item_id="b", type="view", timestamp=(now - timedelta(hours=2)).isoformat()),
        event(3, customer_id="c2", item_id="b", type="view", timestamp=(now - timedelta(hours=1)).isoformat()),
        event(4, customer_id="c2", item_id="c", type="view", timestamp=(now - timedelta(days=40)).isoformat()),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        post_events(tenant_a, rows)

    tenant_id = tenant_a.tenant.pk
    assert recent_items(tenant_id, "c1") == ["b", "a"]
    assert recent_items(tenant_id, "c2") == ["b", "c"]
    popular = [item for item, _score in popular_items(tenant_id, "pop", 10)]
    assert popular == ["a", "b", "c"]  # a purchase (10) beats two views (2); c is old and single
    trend = dict(popular_items(tenant_id, "trend", 10))
    assert trend["c"] < 1e-9 * trend["b"]  # 40 days at a 1-day half-life: practically gone


def test_duplicates_do_not_count_twice_in_popularity(tenant_a: TenantHandle, django_capture_on_commit_callbacks):
    rows = [event(1, item_id="x", type="purchase"), event(2, item_id="y", type="view")]

    with django_capture_on_commit_callbacks(execute=True):
        post_events(tenant_a, rows)
    first = dict(popular_items(tenant_a.tenant.pk, "pop", 10))
    with django_capture_on_commit_callbacks(execute=True):
        post_events(tenant_a, rows)
    second = dict(popular_items(tenant_a.tenant.pk, "pop", 10))

    assert first == second


def test_ingestion_works_when_redis_is_down(tenant_a: TenantHandle, django_capture_on_commit_callbacks, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    from shelfwise.datastores import redis_client

    redis_client._client = None
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_events(tenant_a, [event(1)])
    finally:
        redis_client._client = None

    assert response.status_code == 200
    assert response.json()["stored"] == 1
    connection.set_tenant(tenant_a.tenant)
    assert Event.objects.filter(event_id="e-1").exists()


# --------------------------------------------------------------------------- erasure


def test_customer_erasure_leaves_nothing_behind(tenant_a: TenantHandle, django_capture_on_commit_callbacks) -> None:
    api = tenant_a.client()
    api.put("/api/v1/customers/erase.me@example.com", {"properties": {"email": "erase.me@example.com"}}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        post_events(tenant_a, [event(i, customer_id="erase.me@example.com", item_id="sku-e") for i in range(5)])
    post_events(tenant_a, [event(99, customer_id="keeper", item_id="sku-e")])
    hashed = customer_key_hash("erase.me@example.com")
    assert list(redis_raw().scan_iter(match=f"*{hashed}*"))

    first = api.delete("/api/v1/customers/erase.me@example.com")
    second = api.delete("/api/v1/customers/erase.me@example.com")

    assert first.status_code == 204
    assert second.status_code == 204
    assert_problem(api.get("/api/v1/customers/erase.me@example.com"), 404, "not_found")
    connection.set_tenant(tenant_a.tenant)
    assert not Customer.objects.filter(external_id="erase.me@example.com").exists()
    assert Event.objects.filter(customer__external_id="keeper").count() == 1
    assert Item.objects.filter(external_id="sku-e").exists()  # items are the store's, not the shopper's
    connection.set_schema_to_public()
    assert tables_containing("erase.me@example.com") == []
    assert list(redis_raw().scan_iter(match=f"*{hashed}*")) == []
    assert not any(b"erase.me" in key for key in redis_raw().scan_iter())


def test_erasing_an_unknown_customer_is_204(tenant_a: TenantHandle) -> None:
    assert tenant_a.client().delete("/api/v1/customers/never-existed").status_code == 204


# --------------------------------------------------------------------------- Idempotency-Key


def test_idempotency_key_replays_the_first_response(tenant_a: TenantHandle) -> None:
    api = tenant_a.client()
    rows = {"events": [event(1), event(2)]}

    first = api.post("/api/v1/events", rows, format="json", HTTP_IDEMPOTENCY_KEY="batch-0001")
    replay = api.post("/api/v1/events", rows, format="json", HTTP_IDEMPOTENCY_KEY="batch-0001")
    other_body = api.post("/api/v1/events", {"events": [event(3)]}, format="json", HTTP_IDEMPOTENCY_KEY="batch-0001")

    assert first.json()["stored"] == 2
    assert replay.json() == first.json()  # not {"stored": 0, "duplicates": 2}
    assert replay["Idempotent-Replayed"] == "true"
    assert_problem(other_body, 422, "idempotency_key_reused")
    connection.set_tenant(tenant_a.tenant)
    assert Event.objects.count() == 2


def test_idempotency_key_in_progress_is_409(tenant_a: TenantHandle) -> None:
    from shelfwise.http.idempotency import IdempotencyGuard

    api = tenant_a.client()
    original = IdempotencyGuard.finish
    answers = []

    def slow_finish(self, response):
        # A second request with the same key arrives while the first is still being answered.
        answers.append(api.post("/api/v1/events", {"events": [event(1)]}, format="json", HTTP_IDEMPOTENCY_KEY="k-123"))
        original(self, response)

    IdempotencyGuard.finish = slow_finish
    try:
        api.post("/api/v1/events", {"events": [event(1)]}, format="json", HTTP_IDEMPOTENCY_KEY="k-123")
    finally:
        IdempotencyGuard.finish = original

    assert_problem(answers[0], 409, "idempotency_in_progress")


def test_invalid_idempotency_key_is_rejected(tenant_a: TenantHandle) -> None:
    response = post_events(tenant_a, [event(1)], HTTP_IDEMPOTENCY_KEY="x" * 300)

    assert_problem(response, 400, "validation_error")


# --------------------------------------------------------------------------- limits


def test_oversized_body_is_413_and_stores_nothing(tenant_a: TenantHandle) -> None:
    big = {"events": [event(i, properties={"pad": "x" * 900}) for i in range(20_000)]}

    response = tenant_a.client().post("/api/v1/events", big, format="json")

    assert_problem(response, 413, "payload_too_large")
    connection.set_tenant(tenant_a.tenant)
    assert Event.objects.count() == 0
