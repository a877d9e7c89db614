"""Cache hits answered before DRF's machinery (CustomerRecommendationsApi._cache_hit) behave
exactly like the full path: same body and headers, one charge per request, and every refusal
(revoked key, suspended store, rate limit, bad parameters, unacceptable media type) as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from shelfwise.api import ApiView
from tenants.models import ApiKey, Plan, Tenant
from tenants.services import apikey_revoke, tenant_reactivate, tenant_suspend
from tests.conftest import TenantHandle, make_tenant
from tests.test_auth import assert_problem


@pytest.fixture
def store(live_db: None) -> Iterator[TenantHandle]:
    """A store whose plan refills one request per minute: every charge shows in the headers."""
    Plan.objects.get_or_create(
        code="fastpath", defaults={"name": "Fast path", "requests_per_minute": 1, "burst": 40, "max_api_keys": 20}
    )
    handle = make_tenant("fast", plan="fastpath")
    events = [{"type": "purchase", "customer_id": f"s{n % 5}", "item_id": f"i{n % 12}"} for n in range(60)]
    assert handle.client().post("/api/v1/events", {"events": events}, format="json").status_code == 200
    return handle


def get(client: APIClient, customer: str, **params: str):
    return client.get(f"/api/v1/customers/{customer}/recommendations", params)


def remaining(response) -> int:
    return int(response["RateLimit-Remaining"])


def test_a_hit_answers_like_the_full_path_and_each_request_is_charged_once(
    store: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_path: list[str] = []
    original = ApiView.initial
    monkeypatch.setattr(ApiView, "initial", lambda view, request, *a, **k: (
        full_path.append(request.path), original(view, request, *a, **k))[1])  # fmt: skip
    api = store.client()
    first = get(api, "c1", count="5")  # the key may be new to this process: full path
    miss = get(api, "c2", count="5")  # known key, not cached: tried here, then the full path
    assert len(full_path) == 2
    hit = get(api, "c2", count="5")
    assert len(full_path) == 2  # the hit never reached DRF's machinery
    assert [first.status_code, miss.status_code, hit.status_code] == [200, 200, 200]
    assert miss["X-Shelfwise-Cache"] == "miss"
    assert hit["X-Shelfwise-Cache"] == "hit"
    # One charge each, the fallback included (a refill takes a minute on this plan).
    assert remaining(first) - remaining(miss) == 1
    assert remaining(miss) - remaining(hit) == 1

    miss_body, hit_body = miss.json(), hit.json()
    assert hit_body["items"] == miss_body["items"]
    assert hit_body["recommendation_id"] != miss_body["recommendation_id"]  # one per answer
    assert {k: v for k, v in hit_body.items() if k != "recommendation_id"} == {
        k: v for k, v in miss_body.items() if k != "recommendation_id"
    }
    same = ("Content-Type", "Allow", "Vary", "RateLimit-Limit", "RateLimit-Policy", "X-Request-ID")
    for name in same:
        assert hit.has_header(name) == miss.has_header(name), name
    for name in ("Content-Type", "Allow", "Vary", "RateLimit-Limit", "RateLimit-Policy"):
        assert hit[name] == miss[name], name

    with_fields = get(api, "c2", count="5", fields="title")
    assert with_fields["X-Shelfwise-Cache"] == "hit"
    assert all("item_id" in item for item in with_fields.json()["items"])


def test_refusals_on_a_cached_answer_are_the_full_paths(store: TenantHandle) -> None:
    api = store.client()
    assert get(api, "c3")["X-Shelfwise-Cache"] in {"miss", "hit"}
    assert get(api, "c3")["X-Shelfwise-Cache"] == "hit"

    before = remaining(get(api, "c3"))
    bad = get(api, "c3", count="0")
    assert_problem(bad, 400, "validation_error")
    assert before - remaining(bad) == 1  # refused, and charged once

    not_json = api.get("/api/v1/customers/c3/recommendations", HTTP_ACCEPT="application/xml")
    assert not_json.status_code == 406

    key_row = ApiKey.objects.get(pk=store.key.split("_")[2])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {store.key}x")  # same id, wrong secret
    assert_problem(other.get("/api/v1/customers/c3/recommendations"), 401, "invalid_api_key")

    tenant_suspend(tenant=Tenant.objects.get(pk=store.tenant.pk), reason="test", actor="test")
    assert_problem(get(api, "c3"), 403, "tenant_suspended")
    tenant_reactivate(tenant=Tenant.objects.get(pk=store.tenant.pk), reason="test", actor="test")
    assert get(api, "c3")["X-Shelfwise-Cache"] == "hit"

    apikey_revoke(api_key=key_row, actor="test")
    assert_problem(get(api, "c3"), 401, "revoked_api_key")


def test_the_rate_limit_refuses_cached_answers_too(store: TenantHandle) -> None:
    api = store.client()
    statuses = [get(api, "c4").status_code for _ in range(45)]  # burst 40, refill 1 per minute
    first_refusal = statuses.index(429)
    assert set(statuses[first_refusal:]) == {429}
    assert first_refusal in (39, 40)  # the fixture's batch took one (and a minute may have refilled one)
    refused = get(api, "c4")
    assert_problem(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "0"
