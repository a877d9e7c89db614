"""Serving on real PostgreSQL and Redis with trained models: filters, exclusions, the cache and
its invalidation, promotion, routing and experiments, attribution, sessions, fallbacks."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from recommendations.models import ModelVersion
from recommendations.services.registry import model_version_promote
from recommendations.serving.config import assignment_bucket
from tenants.customer_tokens import token_mint
from tenants.services import apikey_create, apikey_signing_secret
from tests.factories import load_taste_store, make_tenant, taste_events
from tests.helpers import TenantHandle, assert_problem, train_now

GROUPS = 6


def group(item_id: str) -> int:
    return int(item_id.lstrip("i")) % GROUPS


@pytest.fixture(scope="module")
def store(django_db_setup: None, django_db_blocker) -> Iterator[TenantHandle]:
    """A taste store with catalog attributes and an active ALS model (built once per module)."""
    with django_db_blocker.unblock():
        handle = make_tenant("serve")
        load_taste_store(handle)
        items = [
            {
                "item_id": f"i{n}",
                "title": f"Item {n}",
                "categories": [f"g{n % GROUPS}", "all"],
                "price": float(n),
                "currency": "GBP",
                "in_stock": n % 2 == 0,
                "properties": {"colour": ["red", "blue", "green"][n % 3], "tags": ["gift"] if n % 4 == 0 else []},
            }
            for n in range(96)
        ]
        handle.client().post("/api/v1/items:batch", {"items": items}, format="json")
        version = train_now(handle, algorithm="als", two_stage=False)  # fold-in, the ALS scoring graph are under test
        assert version.status == "active"
        connection.set_schema_to_public()
        yield handle


@functools.cache
def seen_items(customer: str) -> frozenset[str]:
    """What the customer interacted with in the generated store (generated once per customer)."""
    return frozenset(str(row["item_id"]) for row in taste_events() if row["customer_id"] == customer)


def recs(handle: TenantHandle, customer: str, **params: object):
    return handle.client().get(f"/api/v1/customers/{customer}/recommendations", params)


def test_known_customer_gets_model_items_without_seen_ones(store: TenantHandle, live_db: None) -> None:
    response = recs(store, "c3", count=10)

    body = response.json()
    assert response.status_code == 200
    assert body["strategy"] == "model"
    assert body["model_version"] == 1
    assert (body["scenario"], body["variant"]) == ("default", "default")
    assert body["recommendation_id"].startswith("rec_0_0_")
    items = [row["item_id"] for row in body["items"]]
    assert len(items) == 10
    assert not set(items) & seen_items("c3")
    liked = Counter(group(item) for item in seen_items("c3")).most_common(2)
    assert sum(group(item) in {g for g, _ in liked} for item in items) >= 7  # the model learnt the taste


def test_explicit_exclusions_and_fields(store: TenantHandle, live_db: None) -> None:
    first = [row["item_id"] for row in recs(store, "c5", count=5).json()["items"]]

    body = recs(store, "c5", count=5, exclude=",".join(first[:2]), fields="title,price,categories").json()

    items = [row["item_id"] for row in body["items"]]
    assert len(items) == 5
    assert not set(items) & set(first[:2])
    assert body["items"][0]["title"] == f"Item {items[0].lstrip('i')}"
    assert body["items"][0]["price"] == float(items[0].lstrip("i"))
    assert set(body["items"][0]) == {"item_id", "score", "title", "price", "categories"}


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"category": "g1"}, lambda n: n % GROUPS == 1),
        ({"category": "g1,g2"}, lambda n: n % GROUPS in {1, 2}),
        ({"category": "g1,all", "categories_match": "all"}, lambda n: n % GROUPS == 1),
        ({"price_min": 20, "price_max": 40}, lambda n: 20 <= n <= 40),
        ({"in_stock": "true"}, lambda n: n % 2 == 0),
        ({"prop.colour": "red"}, lambda n: n % 3 == 0),
        ({"prop.colour": "red,green"}, lambda n: n % 3 in {0, 2}),
        ({"prop.tags": "gift"}, lambda n: n % 4 == 0),
    ],
)
def test_every_filter_is_respected_and_lists_stay_full(store: TenantHandle, live_db: None, params, check) -> None:
    body = recs(store, "c8", count=8, **params).json()

    numbers = [int(row["item_id"].lstrip("i")) for row in body["items"]]
    assert all(check(n) for n in numbers), numbers
    matching = [n for n in range(96) if check(n) and f"i{n}" not in seen_items("c8")]
    assert len(numbers) == min(8, len(matching))
    scores = [row["score"] for row in body["items"]]
    assert scores == sorted(scores, reverse=True), scores  # topped-up items rank below the model's


def test_cache_is_hit_then_invalidated_by_a_new_event(store: TenantHandle, live_db: None) -> None:
    first = recs(store, "c11", count=5)
    second = recs(store, "c11", count=5)
    top = first.json()["items"][0]["item_id"]

    store.client().post(
        "/api/v1/events", {"events": [{"customer_id": "c11", "item_id": top, "type": "view"}]}, format="json"
    )
    third = recs(store, "c11", count=5)

    assert first["X-Shelfwise-Cache"] == "miss"
    assert second["X-Shelfwise-Cache"] == "hit"
    assert second.json()["items"] == first.json()["items"]
    assert second.json()["recommendation_id"] != first.json()["recommendation_id"]  # one per response
    assert third["X-Shelfwise-Cache"] == "miss"
    assert top not in [row["item_id"] for row in third.json()["items"]]  # now seen


def test_new_events_are_folded_into_the_customers_vector(store: TenantHandle, live_db: None) -> None:
    before = recs(store, "c20", count=10).json()["items"]
    liked = {group(row["item_id"]) for row in before[:3]}
    other = next(g for g in range(GROUPS) if g not in liked)
    events = [{"customer_id": "c20", "item_id": f"i{n}", "type": "purchase"} for n in range(other, 96, GROUPS)][:8]

    store.client().post("/api/v1/events", {"events": events}, format="json")
    after = recs(store, "c20", count=10).json()

    assert after["strategy"] == "model"
    assert sum(group(row["item_id"]) == other for row in after["items"]) > sum(
        group(row["item_id"]) == other for row in before
    )


def test_unknown_customer_and_store_without_model_fall_back_to_popularity(store: TenantHandle, live_db: None) -> None:
    unknown = recs(store, "never-seen", count=5).json()
    empty = make_tenant("nomodel")
    empty.client().post(
        "/api/v1/events",
        {"events": [{"customer_id": f"x{n}", "item_id": "only", "type": "view"} for n in range(3)]},
        format="json",
    )
    no_model = recs(empty, "x1", count=5).json()

    assert unknown["strategy"] == "fallback"
    assert unknown["model_version"] is None
    assert len(unknown["items"]) == 5
    assert no_model["strategy"] == "fallback"
    assert no_model["items"] == []  # x1 saw the store's only item


def test_after_promotion_the_new_version_is_served_not_the_old_cache(store: TenantHandle, live_db: None) -> None:
    old = recs(store, "c30", count=5)
    assert recs(store, "c30", count=5)["X-Shelfwise-Cache"] == "hit"
    second = train_now(store, algorithm="itemknn_cosine", two_stage=False)
    with tenant_context(store.tenant):
        model_version_promote(version=ModelVersion.objects.get(pk=second.pk), actor="test")
    try:
        new = recs(store, "c30", count=5)
        assert old.json()["model_version"] == 1
        assert new.json()["model_version"] == second.version
        assert new["X-Shelfwise-Cache"] == "miss"
    finally:
        with tenant_context(store.tenant):
            model_version_promote(version=ModelVersion.objects.get(version=1), actor="test")


def test_a_process_still_routing_by_the_old_version_serves_the_new_one_after_a_promotion(
    store: TenantHandle, live_db: None, settings
) -> None:
    """A promotion made elsewhere (another gunicorn worker, a Celery worker's auto-promotion)
    reaches a process that read its routing before it: its next answers — a cached list through
    the fast path, a batch, similar items — come from the new version, before the routing's
    time limit runs out (set to an hour here, so only the serving stamp can do it)."""
    from recommendations.serving import config
    from tests.helpers import wsgi_client

    settings.SHELFWISE_SERVING_CONFIG_SECONDS = 3600
    api, fast = store.client(), wsgi_client(store.key)
    config.serving_config_forget(store.tenant.pk)
    assert recs(store, "c31", count=5).json()["model_version"] == 1
    cached = fast.get("/api/v1/customers/c31/recommendations", {"count": 5})
    assert (cached["X-Shelfwise-Cache"], cached.json()["model_version"]) == ("hit", 1)
    assert api.get("/api/v1/items/i7/similar", {"count": 5}).json()["model_version"] == 1
    before = config._configs[store.tenant.pk]  # this process's routing, read before the change
    second = train_now(store, algorithm="itemknn_cosine", two_stage=False)
    with tenant_context(store.tenant):
        model_version_promote(version=ModelVersion.objects.get(pk=second.pk), actor="test")
    try:
        config._configs[store.tenant.pk] = before
        answer = fast.get("/api/v1/customers/c31/recommendations", {"count": 5})
        assert answer.status_code == 200
        # a miss computed here, or a hit on a list the promotion's warming task (a real Celery
        # worker, racing this request) already computed with the new version: never the old list
        assert answer.json()["model_version"] == second.version

        config._configs[store.tenant.pk] = before
        batch = api.post(
            "/api/v1/recommendations:batch", {"requests": [{"customer_id": "c31", "count": 5}]}, format="json"
        )
        assert batch.json()["results"][0]["model_version"] == second.version

        config._configs[store.tenant.pk] = before
        similar = api.get("/api/v1/items/i7/similar", {"count": 5}).json()
        assert (similar["strategy"], similar["model_version"]) == ("model", second.version)
        during = config._configs[store.tenant.pk]
        assert during.active is not None
        assert during.active.version == second.version
    finally:
        with tenant_context(store.tenant):
            model_version_promote(version=ModelVersion.objects.get(version=1), actor="test")
    config._configs[store.tenant.pk] = during  # read while the second version was active
    assert fast.get("/api/v1/customers/c31/recommendations", {"count": 5}).json()["model_version"] == 1


def test_experiment_assignment_is_stable_and_split_by_share(store: TenantHandle, live_db: None) -> None:
    api = store.client()
    api.put("/api/v1/scenarios/home", {"name": "Home page"}, format="json")
    experiment = api.post(
        "/api/v1/experiments",
        {
            "name": "model vs popular",
            "scenario": "home",
            "variants": [
                {"key": "model", "share": 50, "source": {"kind": "active"}},
                {"key": "popular", "share": 50, "source": {"kind": "popularity"}},
            ],
        },
        format="json",
    ).json()
    started = api.post(f"/api/v1/experiments/{experiment['experiment_id']}:start", {}, format="json")
    try:
        assert started.json()["status"] == "running"
        variants = {}
        for n in range(60):
            body = recs(store, f"c{n}", count=3, scenario="home").json()
            again = recs(store, f"c{n}", count=3, scenario="home").json()
            assert body["variant"] == again["variant"]
            variants[f"c{n}"] = body["variant"]
            assert body["recommendation_id"].startswith(f"rec_{experiment['experiment_id']}_")
            if body["variant"] == "popular":
                assert body["model_version"] is None
                assert body["strategy"] == "popularity"  # asked for: not a fallback
            else:
                assert body["strategy"] == "model"
        expected = {
            customer: "model" if assignment_bucket(experiment["experiment_id"], customer) < 5000 else "popular"
            for customer in variants
        }
        assert variants == expected
        assert 15 <= Counter(variants.values())["model"] <= 45
    finally:
        api.post(f"/api/v1/experiments/{experiment['experiment_id']}:stop", {}, format="json")


def test_attributed_events_count_in_experiment_results(store: TenantHandle, live_db: None) -> None:
    api = store.client()
    api.put("/api/v1/scenarios/cart", {}, format="json")
    experiment = api.post(
        "/api/v1/experiments",
        {
            "name": "attribution",
            "scenario": "cart",
            "variants": [
                {"key": "a", "share": 50, "source": {"kind": "active"}},
                {"key": "b", "share": 50, "source": {"kind": "trending"}},
            ],
        },
        format="json",
    ).json()
    experiment_id = experiment["experiment_id"]
    api.post(f"/api/v1/experiments/{experiment_id}:start", {}, format="json")
    shown = {f"c{n}": recs(store, f"c{n}", count=3, scenario="cart").json() for n in range(40, 60)}
    assert {body["strategy"] for body in shown.values() if body["variant"] == "b"} == {"popularity"}  # trending
    events = []
    for n, (customer, body) in enumerate(shown.items()):
        shared = {"customer_id": customer, "item_id": body["items"][0]["item_id"]}
        events.append({**shared, "type": "view", "recommendation_id": body["recommendation_id"]})
        if n % 2 == 0:
            events.append(
                {**shared, "type": "purchase", "value": 2, "recommendation_id": body["recommendation_id"],
                 "properties": {"unit_price": 5.0}}
            )  # fmt: skip
    api.post("/api/v1/events", {"events": events}, format="json")
    api.post(f"/api/v1/experiments/{experiment_id}:stop", {}, format="json")

    results = api.get(f"/api/v1/experiments/{experiment_id}/results").json()

    by_key = {variant["key"]: variant for variant in results["variants"]}
    per_variant = Counter(body["variant"] for body in shown.values())
    buyers = Counter(body["variant"] for n, body in enumerate(shown.values()) if n % 2 == 0)
    for key in ("a", "b"):
        assert by_key[key]["impressions"] == per_variant[key]
        assert by_key[key]["clicks"] == per_variant[key]
        assert by_key[key]["purchases"] == buyers[key]
        assert by_key[key]["revenue"] == pytest.approx(10.0 * buyers[key])
        low, high = by_key[key]["conversion_ci95"]
        assert low <= by_key[key]["conversion"] <= high


def test_session_recommendations_follow_the_session(store: TenantHandle, live_db: None) -> None:
    session_items = [f"i{n}" for n in (4, 10, 16)]  # all of group 4

    body = (
        store.client()
        .post(
            "/api/v1/recommendations/session", {"items": session_items, "count": 6, "fields": ["title"]}, format="json"
        )
        .json()
    )

    items = [row["item_id"] for row in body["items"]]
    assert body["strategy"] == "model"
    assert not set(items) & set(session_items)
    assert sum(group(item) == 4 for item in items) >= 4
    assert "title" in body["items"][0]


def test_batch_answers_each_customer(store: TenantHandle, live_db: None) -> None:
    body = (
        store.client()
        .post(
            "/api/v1/recommendations:batch",
            {"requests": [{"customer_id": "c1", "count": 2}, {"customer_id": "stranger", "count": 3}]},
            format="json",
        )
        .json()
    )

    assert [(r["customer_id"], r["strategy"], len(r["items"])) for r in body["results"]] == [
        ("c1", "model", 2),
        ("stranger", "fallback", 3),
    ]


def test_similar_items_popular_and_trending(store: TenantHandle, live_db: None) -> None:
    api = store.client()

    similar = api.get("/api/v1/items/i7/similar", {"count": 5}).json()
    personal = api.get("/api/v1/items/i7/similar", {"count": 5, "customer": "c2"}).json()
    popular = api.get("/api/v1/recommendations/popular", {"count": 4, "in_stock": "true"}).json()
    trending = api.get("/api/v1/recommendations/trending", {"count": 4}).json()

    assert similar["strategy"] == "model"
    assert "i7" not in [row["item_id"] for row in similar["items"]]
    assert sum(group(row["item_id"]) == group("i7") for row in similar["items"]) >= 3
    assert not {row["item_id"] for row in personal["items"]} & seen_items("c2")
    assert len(popular["items"]) == 4
    assert all(int(row["item_id"].lstrip("i")) % 2 == 0 for row in popular["items"])
    assert popular["items"][0]["score"] == 1.0
    assert len(trending["items"]) == 4


def test_bad_requests_are_refused(store: TenantHandle, live_db: None) -> None:
    api = store.client()

    assert_problem(recs(store, "c1", count=101), 400, "validation_error")
    assert_problem(recs(store, "c1", colour="red"), 400, "validation_error")
    assert_problem(recs(store, "c1", fields="secret"), 400, "validation_error")
    assert_problem(recs(store, "c1", price_min="cheap"), 400, "validation_error")
    assert_problem(recs(store, "c1", scenario="Bad Scenario"), 400, "validation_error")
    assert_problem(api.get("/api/v1/items/nope/similar"), 404, "not_found")
    assert_problem(api.post("/api/v1/recommendations/session", {"items": []}, format="json"), 400, "validation_error")


def test_other_tenants_objects_are_not_found(store: TenantHandle, live_db: None) -> None:
    other = make_tenant("other-serve")

    assert_problem(other.client().get("/api/v1/items/i7/similar"), 404, "not_found")
    assert_problem(other.client().get("/api/v1/models/1"), 404, "not_found")
    assert other.client().get("/api/v1/models").json() == []
    foreign = recs(other, "c3", count=3).json()
    assert foreign["strategy"] == "fallback"  # an unknown customer here, like any other
    assert foreign["items"] == []


def test_public_key_may_read_recommendations(store: TenantHandle, live_db: None) -> None:
    _key, raw = apikey_create(tenant=store.tenant, name="browser", kind="public", actor="test")

    assert store.client(raw).get("/api/v1/customers/c1/recommendations").status_code == 200
    assert_problem(store.client(raw).get("/api/v1/models"), 403, "insufficient_scope")


def _answer(response) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """What an answer tells (all but its random recommendation id)."""
    body = response.json()
    return body["strategy"], body["model_version"], [item["item_id"] for item in body["items"]]


def test_a_public_key_reads_a_personal_list_only_with_the_customers_token(store: TenantHandle, live_db: None) -> None:
    """Issue 19.2: any visitor holding a page's public key could read any shopper's personal
    list — ``strategy`` said whether the shopper existed, and ``exclude_seen=false`` put their
    latest purchases first."""
    row, raw = apikey_create(tenant=store.tenant, name="browser", kind="public", actor="test")
    secret = apikey_signing_secret(api_key=row, actor="test")
    web = store.client(raw)
    in_an_hour = int(time.time()) + 3600

    def token(customer: str, *, expiry: int = in_an_hour, signed_with: str = secret, key_id: str = row.pk) -> str:
        return token_mint(secret=signed_with, key_id=key_id, customer_id=customer, expiry=expiry)

    def get(customer: str, tok: str | None = None, **params: object):  # type: ignore[no-untyped-def]
        headers = {"HTTP_SHELFWISE_CUSTOMER_TOKEN": tok} if tok is not None else {}
        return web.get(f"/api/v1/customers/{customer}/recommendations", params, **headers)

    for params in ({}, {"exclude_seen": "false"}, {"count": 20, "exclude_seen": "false"}):
        known, unknown = get("c1", **params), get("nobody-at-all", **params)
        # The same answer whether or not the shopper exists; nothing of theirs in it.
        assert _answer(known) == _answer(unknown), params
        assert known.json()["strategy"] == "fallback"
        assert known["X-Shelfwise-Customer-Token"] == "missing"
        assert known["X-Shelfwise-Cache"] == "none"
    cases = {
        "another customer's": token("c2"),
        "expired": token("c1", expiry=int(time.time()) - 1),
        "another key's": token("c1", signed_with=secret.replace(secret[-5:], "AAAAA"), key_id=row.pk),
        "too long-lived": token("c1", expiry=int(time.time()) + 30 * 86400),
        "garbled": "ct1.x.y",
    }
    for name, tok in cases.items():
        refused = get("c1", tok, exclude_seen="false")
        assert _answer(refused) == _answer(get("nobody-at-all", exclude_seen="false")), name
    assert get("c1", cases["expired"])["X-Shelfwise-Customer-Token"] == "expired"
    assert get("c1", cases["garbled"])["X-Shelfwise-Customer-Token"] == "invalid"

    personal = get("c1", token("c1"))
    assert personal["X-Shelfwise-Customer-Token"] == "valid"
    assert personal.json()["strategy"] == "model"
    assert _answer(personal) == _answer(recs(store, "c1"))  # what the store's secret key reads
    again = get("c1", token("c1"))
    assert (again["X-Shelfwise-Cache"], again["X-Shelfwise-Customer-Token"]) == ("hit", "valid")

    # `customer` on similar items and the rows of a batch follow the same rule.
    plain = web.get("/api/v1/items/i7/similar", {"count": 5})
    without = web.get("/api/v1/items/i7/similar", {"count": 5, "customer": "c1"})
    assert _answer(without) == _answer(plain)
    assert without["X-Shelfwise-Customer-Token"] == "missing"
    batch = web.post(
        "/api/v1/recommendations:batch",
        {"requests": [{"customer_id": "c1"}, {"customer_id": "c1", "customer_token": token("c1")}]},
        format="json",
    ).json()["results"]
    assert [result["strategy"] for result in batch] == ["fallback", "model"]
    # A secret key needs no token (the store's own server).
    assert recs(store, "c1").json()["strategy"] == "model"
    assert "X-Shelfwise-Customer-Token" not in recs(store, "c1")


def test_redis_stopped_still_answers_with_model_items(store: TenantHandle, live_db: None) -> None:
    import os
    from pathlib import Path

    from shelfwise.datastores import redis_client
    from shelfwise.dev import servers as devservers

    state_dir = Path(os.environ["SHELFWISE_DEV_STATE"]).parent
    state = devservers.read_state(state_dir)
    expected = {row["item_id"] for row in recs(store, "c40", count=5).json()["items"]}
    devservers.redis_stop(state["redis"])
    try:
        started = time.perf_counter()
        response = recs(store, "c40", count=5)
        elapsed = time.perf_counter() - started
    finally:
        devservers.start(state_dir, durable=False)
        redis_client.reset_circuit()
        # This process's pooled broker connections died with the server: start new pools.
        from kombu import pools

        from shelfwise.celery import app

        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    assert response.status_code == 200
    assert response["X-Shelfwise-Cache"] == "none"
    assert response.json()["strategy"] == "model"
    assert {row["item_id"] for row in response.json()["items"]} == expected
    assert elapsed < 2.0  # bounded waits on a dead Redis
    assert recs(store, "c40", count=5).status_code == 200  # and Redis is used again


def test_a_burst_of_misses_for_one_list_computes_it_once(
    store: TenantHandle, live_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single flight: concurrent requests for the same uncached list (here eight threads, each
    with its own PostgreSQL connection, on real Redis) compute it once; the others wait for it."""
    import threading

    from django.db import connections

    from catalog.event_settings import event_settings_for
    from recommendations.serving import cache, engine
    from recommendations.serving.config import serving_config_forget
    from shelfwise.datastores.redis_client import circuit_open
    from tenants.models import Tenant

    computed: list[str] = []
    original = engine._compute_for_customer

    def slow_compute(*args: object, **kwargs: object) -> dict:
        computed.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough for every thread to arrive while it runs
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_compute_for_customer", slow_compute)
    # Waiters wait at most SINGLE_FLIGHT_SECONDS (2 s), then compute themselves; a loaded CI
    # machine must not turn that bound into the result.
    monkeypatch.setattr(cache, "SINGLE_FLIGHT_SECONDS", 10.0)
    tenant = Tenant.objects.get(pk=store.tenant.pk)
    weights = event_settings_for(tenant)
    request = engine.CustomerRequest(tenant_id=tenant.pk, customer_id="c7", count=5, exclude_seen=False)
    # Load the current routing and model first (an earlier test promoted a version): a load in
    # the burst holds the GIL long enough for the other threads' Redis calls to time out, which
    # opens the circuit breaker, and without Redis everyone computes (by design).
    serving_config_forget(tenant.pk)
    with tenant_context(tenant):
        engine.recommend(engine.CustomerRequest(tenant_id=tenant.pk, customer_id="c8", count=5), weights=weights)
    computed.clear()
    results: dict[str, engine.Served] = {}
    start = threading.Barrier(8)

    def ask() -> None:
        try:
            with tenant_context(tenant):
                start.wait()
                results[threading.current_thread().name] = engine.recommend(request, weights=weights)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, name=f"t{n}") for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    assert not circuit_open(), "a Redis call timed out during the burst"
    assert len(computed) == 1
    assert len({tuple(served.items) for served in results.values()}) == 1  # all got the computed list
    assert Counter(served.cache for served in results.values()) == {"miss": 8}
    with tenant_context(tenant):
        assert engine.recommend(request, weights=weights).cache == "hit"


def test_a_topped_up_list_keeps_its_scores_descending(store: TenantHandle, live_db: None) -> None:
    """Items the model does not know (added after training) top up a filtered list from
    popularity, whose scores are on another scale: they rank below the model's items."""
    api = store.client()
    fresh = [f"fresh{n}" for n in range(3)]
    api.post("/api/v1/items:batch", {"items": [{"item_id": i, "categories": ["g1"]} for i in fresh]}, format="json")
    try:
        bought = [fresh[0]] * 15 + [fresh[1]] * 10 + [fresh[2]] * 5
        events = [{"customer_id": f"buyer{n}", "item_id": item, "type": "purchase"} for n, item in enumerate(bought)]
        assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 200
        body = recs(store, "c9", count=40, category="g1").json()
        ids = [row["item_id"] for row in body["items"]]
        assert body["strategy"] == "model"
        assert set(fresh) <= set(ids)  # unknown to the model: topped up
        assert ids[-len(fresh) :] == sorted(ids[-len(fresh) :], key=fresh.index)  # in popularity order
        scores = [row["score"] for row in body["items"]]
        assert scores == sorted(scores, reverse=True), list(zip(ids, scores, strict=True))
    finally:
        for item in fresh:
            api.delete(f"/api/v1/items/{item}")


def test_a_customer_erased_after_routing_was_read_is_told_apart_in_the_events_read(
    store: TenantHandle, live_db: None
) -> None:
    """The routing a process holds can predate an erasure (read seconds ago, or without Redis):
    the same PostgreSQL round trip that reads the customer's latest events says they were
    erased; nothing of theirs is used and the loaded model forgets them."""
    from recommendations.models import ErasedCustomer, erasure_hash
    from recommendations.serving import engine
    from recommendations.serving.config import recent_events_unless_erased

    with tenant_context(store.tenant):
        request = engine.CustomerRequest(tenant_id=store.tenant.pk, customer_id="c21")
        planned = engine.plan(request)
        model = engine._load(planned.config, planned.version)
        assert model is not None
        assert "c21" in model.customer_index
        events = recent_events_unless_erased("c21", since=None)
        assert events
        assert {item for item, _t, _v, _w in events} <= seen_items("c21")
        assert [when for *_r, when in events] == sorted((when for *_r, when in events), reverse=True)

        marker = ErasedCustomer.objects.create(customer_hash=erasure_hash("c21"))
        try:
            assert recent_events_unless_erased("c21", since=None) is None
            vector, history, seen = engine._customer_inputs(model, store.tenant.pk, "c21", engine.EventSettings())
            assert (vector, history, seen) == (None, None, set())
            assert "c21" not in model.customer_index  # this process's copy forgot them
            assert recent_events_unless_erased("c22", since=None)  # nobody else
        finally:
            marker.delete()
            engine.model_cache().clear()
    connection.set_schema_to_public()
