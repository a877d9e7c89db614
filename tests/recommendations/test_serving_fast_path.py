"""Cache hits answered before Django's routing and DRF's machinery (``shelfwise.http.fastpath`` with
``CustomerRecommendationsApi.fast_answer``) behave exactly like the full path: same body and
headers, one charge per request, and every refusal (revoked key, suspended store, rate limit,
bad parameters, unacceptable media type, bad host) as before.

Requests go through the WSGI application gunicorn serves (``shelfwise.wsgi.application``), in
process: Django's test client would bypass the fast path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from shelfwise.http import fastpath
from shelfwise.http.views import ApiView
from shelfwise.wsgi import application
from tenants.models import ApiKey, Plan, Tenant
from tenants.services import apikey_revoke, tenant_reactivate, tenant_suspend
from tests.factories import make_tenant
from tests.helpers import TenantHandle, assert_problem, wsgi_client


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
    api = wsgi_client(store.key)
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
    # Every header the full path sends (Django's middleware included), with the same values
    # but for what differs per request.
    volatile = {"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset", "X-Shelfwise-Cache"}
    assert set(hit.headers) == set(miss.headers)
    assert {k: v for k, v in hit.headers.items() if k not in volatile} == {
        k: v for k, v in miss.headers.items() if k not in volatile
    }

    with_fields = get(api, "c2", count="5", fields="title")
    assert with_fields["X-Shelfwise-Cache"] == "hit"
    assert all("item_id" in item for item in with_fields.json()["items"])


def test_refusals_on_a_cached_answer_are_the_full_paths(store: TenantHandle) -> None:
    api = wsgi_client(store.key)
    assert get(api, "c3")["X-Shelfwise-Cache"] in {"miss", "hit"}
    assert get(api, "c3")["X-Shelfwise-Cache"] == "hit"

    before = remaining(get(api, "c3"))
    bad = get(api, "c3", count="0")
    assert_problem(bad, 400, "validation_error")
    assert before - remaining(bad) == 1  # refused, and charged once

    not_json = api.get("/api/v1/customers/c3/recommendations", HTTP_ACCEPT="application/xml")
    assert not_json.status_code == 406

    key_row = ApiKey.objects.get(pk=store.key.split("_")[2])
    other = wsgi_client(f"{store.key}x")  # same id, wrong secret
    assert_problem(other.get("/api/v1/customers/c3/recommendations"), 401, "invalid_api_key")

    tenant_suspend(tenant=Tenant.objects.get(pk=store.tenant.pk), reason="test", actor="test")
    assert_problem(get(api, "c3"), 403, "tenant_suspended")
    tenant_reactivate(tenant=Tenant.objects.get(pk=store.tenant.pk), reason="test", actor="test")
    assert get(api, "c3")["X-Shelfwise-Cache"] == "hit"

    apikey_revoke(api_key=key_row, actor="test")
    assert_problem(get(api, "c3"), 401, "revoked_api_key")


def test_the_rate_limit_refuses_cached_answers_too(store: TenantHandle) -> None:
    api = wsgi_client(store.key)
    statuses = [get(api, "c4").status_code for _ in range(45)]  # burst 40, refill 1 per minute
    first_refusal = statuses.index(429)
    assert set(statuses[first_refusal:]) == {429}
    assert first_refusal in (39, 40)  # the fixture's batch took one (and a minute may have refilled one)
    refused = get(api, "c4")
    assert_problem(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "0"


def _counting(app: fastpath.FastPathApplication) -> list[str]:
    """The paths that reached Django's full handler behind ``app``."""
    reached: list[str] = []
    inner = app.application

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    app.application = counted  # type: ignore[assignment]
    return reached


def test_only_hits_skip_djangos_handler(store: TenantHandle) -> None:
    app = fastpath.FastPathApplication(application.application)
    reached = _counting(app)
    api = wsgi_client(store.key, app)
    assert get(api, "c1")["X-Shelfwise-Cache"] in {"miss", "hit"}
    reached.clear()
    hit = get(api, "c1", count="3")
    hit_again = get(api, "c1", count="3")
    assert [hit["X-Shelfwise-Cache"], hit_again["X-Shelfwise-Cache"]] == ["hit", "hit"]
    assert reached == []
    for path in (
        "/api/v1/recommendations/popular",  # no fast answer: straight to Django
        "/api/v1/items/i1/similar",
        "/api/v1/customers/c9/recommendations",  # a miss: declined, then Django
        "/api/v1/customers/c1/recommendations/",  # not a route (trailing slash)
        "/api/v1/nothing/recommendations",
    ):
        response = api.get(path)
        assert response.status_code in {200, 404}, (path, response.content)
        assert reached[-1] == path
    assert api.head("/api/v1/customers/c1/recommendations").status_code == 200  # HEAD: Django
    assert reached[-1] == "/api/v1/customers/c1/recommendations"


def test_the_fast_path_answers_what_the_full_handler_would(store: TenantHandle) -> None:
    """The same requests with the fast path turned off: the same statuses, bodies and headers."""
    api = wsgi_client(store.key)
    with override_settings(SHELFWISE_FAST_PATH=False):
        slow_app = fastpath.FastPathApplication(application.application)
        slow = wsgi_client(store.key, slow_app)
        reached = _counting(slow_app)
        cases = [
            ("c5", {"count": "4"}),
            ("c5", {"count": "4", "fields": "title,price"}),
            ("c5", {"count": "2", "exclude": "i1,i2"}),
            ("c5", {"count": "0"}),
            ("c5", {"bogus": "1"}),
            ("c%2F5", {}),
        ]
        get(api, "c5", count="4")  # cached by now
        for customer, params in cases:
            fast, full = get(api, customer, **params), get(slow, customer, **params)
            assert fast.status_code == full.status_code, (customer, params)
            volatile = {"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset", "X-Shelfwise-Cache"}
            assert {k: v for k, v in fast.headers.items() if k not in volatile} == {
                k: v for k, v in full.headers.items() if k not in volatile
            }, (customer, params)
            fast_body, full_body = fast.json(), full.json()
            for body in (fast_body, full_body):
                body.pop("recommendation_id", None)
                body.pop("request_id", None)
            assert fast_body == full_body, (customer, params)
        assert len(reached) == len(cases)  # off: every request took the full handler


def test_a_bad_host_or_a_cross_origin_call_gets_the_full_paths_answer(store: TenantHandle) -> None:
    api = wsgi_client(store.key)
    assert get(api, "c6")["X-Shelfwise-Cache"] in {"miss", "hit"}
    evil = api.get("/api/v1/customers/c6/recommendations", HTTP_HOST="evil.example")
    assert evil.status_code == 400  # Django's DisallowedHost
    cors = api.get("/api/v1/customers/c6/recommendations", HTTP_ORIGIN="https://shop.example")
    assert cors.status_code == 200
    assert cors["X-Shelfwise-Cache"] == "hit"
    assert cors["Access-Control-Allow-Origin"] == "*"
    assert "ratelimit-remaining" in cors["Access-Control-Expose-Headers"].lower()


def test_a_hit_is_logged_counted_and_keeps_the_callers_request_id(
    store: TenantHandle, caplog: pytest.LogCaptureFixture
) -> None:
    from shelfwise.observability import traffic

    api = wsgi_client(store.key)
    assert get(api, "c7")["X-Shelfwise-Cache"] in {"miss", "hit"}
    traffic.traffic_flush()
    caplog.clear()
    hit = api.get("/api/v1/customers/c7/recommendations", HTTP_X_REQUEST_ID="req-fast-0001")
    assert hit["X-Shelfwise-Cache"] == "hit"
    assert hit["X-Request-ID"] == "req-fast-0001"
    lines = [r for r in caplog.records if r.name == "shelfwise.request"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.status, line.route, line.tenant, line.request_id) == (  # type: ignore[attr-defined]
        200,
        "api/v1/customers/<str:customer_id>/recommendations",
        store.tenant.slug,
        "req-fast-0001",
    )
    counted = sum(counts["n"] for (tenant_id, _day), counts in traffic._pending.items() if tenant_id == store.tenant.pk)
    assert counted == 1  # the store's traffic (dashboard), like any API request


def test_unknown_middleware_turns_the_fast_path_off(store: TenantHandle) -> None:
    from django.conf import settings

    tracing = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    assert fastpath.unsupported_middleware(settings.MIDDLEWARE) == []  # on in the shipped settings
    assert fastpath.unsupported_middleware([tracing, *settings.MIDDLEWARE]) == [tracing]
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]):
        app = fastpath.FastPathApplication(application.application)
        reached = _counting(app)
        api = wsgi_client(store.key, app)
        get(api, "c8")
        assert get(api, "c8")["X-Shelfwise-Cache"] == "hit"
        assert len(reached) == 2


def test_with_sentry_on_a_fast_answer_leaves_no_tenant_tag_behind(store: TenantHandle) -> None:
    """Sentry's WSGI middleware gives each Django request a scope of its own; the fast path
    does the same, or the store's tag would stick to the process's next error reports."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Nowhere(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return

    previous = sentry_sdk.get_client()
    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=Nowhere, default_integrations=False)
    try:
        api = wsgi_client(store.key)
        get(api, "c9")  # a miss: the full handler (whose scope Sentry's Django integration makes)
        sentry_sdk.get_isolation_scope().remove_tag("tenant")  # not installed here: clear it by hand
        hit = get(api, "c9")
        assert hit["X-Shelfwise-Cache"] == "hit"
        assert "tenant" not in sentry_sdk.get_isolation_scope()._tags
    finally:
        sentry_sdk.get_global_scope().set_client(previous)


def test_a_declined_non_ascii_path_reaches_django_intact(store: TenantHandle) -> None:
    """WSGIRequest writes the decoded path back into the environ; the full handler must still
    read the path as the server gave it."""
    api = wsgi_client(store.key)
    for customer in ("Ж", "café", "c%C3%A9"):
        response = api.get(f"/api/v1/customers/{customer}/recommendations")
        assert response.status_code in {200, 404}, (customer, response.content)
