"""Ingestion behaviour that needs committed data: rate limits across tenants, quotas on their
own plans, and concurrent re-delivery from several connections."""

from __future__ import annotations

import threading

from django.db import connection
from django_tenants.utils import tenant_context

from catalog.models import Customer, Event, Item
from tenants.services import tenant_delete
from tests.factories import PlanFactory, event, make_tenant
from tests.fixtures.processes import AppServer, call
from tests.helpers import TenantHandle, assert_problem


def post_events(handle: TenantHandle, rows, **headers):
    return handle.client().post("/api/v1/events", {"events": rows}, format="json", **headers)


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_answers_429_with_headers_and_spares_other_tenants(live_db: None) -> None:
    plan = PlanFactory(name="Tiny", requests_per_minute=60, burst=3)
    noisy = make_tenant("noisy", plan=plan.code)
    quiet = make_tenant("quiet", plan=plan.code)
    try:
        responses = [noisy.client().get("/api/v1/whoami") for _ in range(5)]
        other = quiet.client().get("/api/v1/whoami")
    finally:
        tenant_delete(tenant=noisy.tenant, actor="test")
        tenant_delete(tenant=quiet.tenant, actor="test")
        plan.delete()

    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[0]["RateLimit-Limit"] == "3"
    assert responses[0]["RateLimit-Remaining"] == "2"
    assert responses[2]["RateLimit-Remaining"] == "0"
    assert "w=60" in responses[0]["RateLimit-Policy"]
    limited = assert_problem(responses[3], 429, "rate_limited")
    assert int(responses[3]["Retry-After"]) >= 1
    assert "60 requests per minute" in limited["detail"]
    assert other.status_code == 200


def test_item_and_event_quotas(live_db: None) -> None:
    plan = PlanFactory(name="Small", max_items=3, max_events_per_month=4)
    handle = make_tenant("small", plan=plan.code)
    try:
        api = handle.client()
        items = api.post("/api/v1/items:batch", {"items": [{"item_id": f"i{n}"} for n in range(5)]}, format="json")
        put = api.put("/api/v1/items/i9", {}, format="json")
        events = post_events(handle, [event(n, item_id="i0") for n in range(6)])
        more = post_events(handle, [event(10, item_id="i0")])
    finally:
        tenant_delete(tenant=handle.tenant, actor="test")
        plan.delete()

    assert items.json()["created"] == 3
    assert [(e["index"], e["code"]) for e in items.json()["errors"]] == [(3, "quota_exceeded"), (4, "quota_exceeded")]
    assert_problem(put, 403, "quota_exceeded")
    assert events.json()["stored"] == 4
    assert {e["code"] for e in events.json()["errors"]} == {"quota_exceeded"}
    assert_problem(more, 403, "quota_exceeded")


def test_same_batch_delivered_three_times_concurrently_is_stored_once(fresh_tenant: TenantHandle) -> None:
    batch = {"events": [event(i) for i in range(300)]}
    results = []
    barrier = threading.Barrier(3)

    def send() -> None:
        from django.db import connections

        barrier.wait()
        results.append(fresh_tenant.client().post("/api/v1/events", batch, format="json").json())
        connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result["stored"] for result in results) == 300
    assert sum(result["duplicates"] for result in results) == 600
    connection.set_tenant(fresh_tenant.tenant)
    assert Event.objects.count() == 300


def test_overlapping_batches_in_any_order_from_several_clients_never_deadlock(
    fresh_tenant: TenantHandle, app_server: AppServer
) -> None:
    """Issue 19.4: two concurrent batches that create the same new customers and items in
    opposite orders (what an import from several workers sends). Each holds its new rows' index
    locks until it commits; taken in opposite orders they deadlocked, and PostgreSQL aborted one
    (a 5xx). Now every answer is a 200 and every row is stored once."""
    statuses: list[int] = []
    sent: set[str] = set()
    for round_ in range(6):
        ids = [f"r{round_}-{n:05d}" for n in range(2000)]  # new customers and items this round
        rows = [
            {"event_id": f"r{round_}-e{n}", "customer_id": f"c-{ident}", "item_id": f"i-{ident}", "type": "view"}
            for n, ident in enumerate(ids)
        ]
        batches = [rows, list(reversed(rows))]  # the same rows (and event ids), in opposite orders
        sent |= {row["event_id"] for row in rows}
        barrier = threading.Barrier(2)

        def send(batch: list[dict[str, str]], barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            status, _body = call(app_server, "POST", "/api/v1/events", key=fresh_tenant.key, body={"events": batch})
            statuses.append(status)

        threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert statuses == [200] * 12
    with tenant_context(fresh_tenant.tenant):
        assert Event.objects.count() == len(sent)
        assert Customer.objects.count() == len(sent)
        assert Item.objects.count() == len(sent)
