"""Abuse: oversized, malformed, hostile and huge inputs get a clear 4xx (problem+json on the API)
or are stored and answered back verbatim, never evaluated; a refused request stores nothing.

Operations, their body limits and their numeric parameters come from the URL conf, the views
and the OpenAPI document, so a new endpoint is probed without being listed here. Read bursts
across tenants are in ``test_ingestion_live.py``; the write path is here.

Tests marked ``xfail(strict=True)`` pin bugs this file found (see each reason): once a bug is
fixed its test passes, strict xfail turns that into a failure, and the marker goes with the fix.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from catalog.contracts import EXTERNAL_ID_RE
from catalog.models import Customer, Event, Item
from tenants.models import Plan, Tenant
from tenants.services import tenant_delete
from tests.factories import PlanFactory, UserFactory, make_tenant, member
from tests.helpers import (
    Route,
    TenantHandle,
    api_operations,
    api_view_routes,
    as_openapi_path,
    assert_problem,
    host,
    openapi_document,
    tenant_snapshot,
)

db = pytest.mark.django_db

# Path parameters naming the caller's own (possibly missing) objects: bodies and queries are
# judged before anything is looked up.
OWN_IDS: dict[str, Any] = {
    "item_id": "abuse-item",
    "customer_id": "abuse-cust",
    "key": "abuse-scn",
    "version": 1,
    "experiment_id": 1,
    "job_id": "00000000-0000-4000-8000-000000000000",
}


def api(handle: TenantHandle) -> APIClient:
    """The tenant's client, getting 500s as answers (as a real client does) rather than raised."""
    client = handle.client()
    client.raise_request_exception = False
    return client


def raw(client: Any, method: str, path: str, body: bytes | None = None, **extra: Any) -> Any:
    if body is None:
        return client.generic(method, path, **extra)
    return client.generic(method, path, body, content_type="application/json", **extra)


def dumps(body: Any) -> bytes:
    """JSON as a client would send it (the standard library's encoder: any integer)."""
    return json.dumps(body).encode()


def snapshot(handle: TenantHandle) -> dict[str, Any]:
    """The tenant's rows, settings and Redis keys, less the traces of its own requests."""
    return tenant_snapshot(handle.tenant, own_usage=False)


def error_fields(response: Any) -> set[str]:
    return {str(error.get("field")) for error in response.json().get("errors", [])}


def body_operations() -> list[Any]:
    """(route, method) of every operation with a JSON request body in the OpenAPI document."""
    takes_body = {
        (path, method.upper())
        for path, operations in openapi_document()["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    cases = [
        pytest.param(route, method, id=f"{method} {route.path}")
        for route, method in api_operations()
        if (as_openapi_path(route), method) in takes_body
    ]
    assert len(cases) >= 14  # the document was read
    return cases


def view_of(path: str) -> Any:
    return next(view for route, view in api_view_routes() if route.path == path)


# --------------------------------------------------------------------------- size


@db
@pytest.mark.parametrize(("route", "method"), body_operations())
def test_a_body_over_the_operation_limit_is_413_before_parsing(
    tenant_a: TenantHandle, route: Route, method: str
) -> None:
    limit = view_of(route.path).max_body_bytes
    body = b"{}" + b" " * (limit - 1)  # valid JSON, one byte too long
    before = snapshot(tenant_a)

    plain = raw(api(tenant_a), method, route.url(OWN_IDS), body)
    keyed = raw(api(tenant_a), method, route.url(OWN_IDS), body, HTTP_IDEMPOTENCY_KEY=f"big-{uuid.uuid4().hex}")

    assert_problem(plain, 413, "payload_too_large")
    assert_problem(keyed, 413, "payload_too_large")
    assert str(limit) in plain.json()["detail"]
    assert snapshot(tenant_a) == before


@db
@pytest.mark.parametrize(
    ("path", "method", "body", "route"),
    [
        ("/api/v1/items/at-limit", "PUT", {"title": "exactly at the limit"}, "/api/v1/items/<str:item_id>"),
        (
            "/api/v1/events",
            "POST",
            {"events": [{"customer_id": "c", "item_id": "i", "type": "view"}]},
            "/api/v1/events",
        ),
    ],
)
def test_a_body_of_exactly_the_limit_is_accepted(
    tenant_a: TenantHandle, path: str, method: str, body: Any, route: str
) -> None:
    limit = view_of(route).max_body_bytes
    data = dumps(body)
    data += b" " * (limit - len(data))

    response = raw(api(tenant_a), method, path, data)

    assert response.status_code in {200, 201}, response.content[:300]


@db
@pytest.mark.parametrize(("path", "on_store_host"), [("/dashboard/login/", True), ("/admin/login/", False)])
def test_a_form_over_the_global_limit_is_400_and_logs_nobody_in(
    tenant_a: TenantHandle, path: str, on_store_host: bool
) -> None:
    login = member(tenant_a.tenant)
    browser = Client(HTTP_HOST=host(tenant_a.tenant) if on_store_host else "localhost")
    padding = "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = f"username={quote(login.email)}&password={quote(login.password)}&pad={padding}"

    response = browser.post(path, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "_auth_user_id" not in browser.session


# --------------------------------------------------------------------------- malformed bodies

MALFORMED = {
    "invalid UTF-8": b'{"title": "\xff\xfe"}',
    "overlong UTF-8": b'{"title": "\xc0\xaf"}',
    "lone surrogate": b'{"title": "\\ud800"}',
    "UTF-8 byte order mark": b'\xef\xbb\xbf{"title": "x"}',
    "UTF-16": '{"title": "x"}'.encode("utf-16"),
    "nested deeper than 1024": b"[" * 1025 + b"]" * 1025,
    "200,000 open brackets": b"[" * 200_000,
    "NaN": b'{"title": NaN}',
    "a number beyond a double": b'{"price": 1e400}',
    "truncated": b'{"title": ',
    "two documents": b"{} {}",
}


@db
@pytest.mark.parametrize(("route", "method"), body_operations())
def test_malformed_json_is_a_parse_error_and_stores_nothing(tenant_a: TenantHandle, route: Route, method: str) -> None:
    before = snapshot(tenant_a)

    for case, body in MALFORMED.items():
        response = raw(api(tenant_a), method, route.url(OWN_IDS), body)

        assert response.status_code == 400, (case, response.content[:300])
        assert_problem(response, 400, "parse_error")
    assert snapshot(tenant_a) == before


DEEP = b"[" * 1000 + b"]" * 1000  # within the parser's depth limit, deeper than any field


@db
@pytest.mark.parametrize(("route", "method"), body_operations())
def test_unknown_fields_are_refused_even_holding_deeply_nested_values(
    tenant_a: TenantHandle, route: Route, method: str
) -> None:
    before = snapshot(tenant_a)

    response = raw(api(tenant_a), method, route.url(OWN_IDS), b'{"zz_unknown": ' + DEEP + b"}")

    body = assert_problem(response, 400, "validation_error")
    assert "zz_unknown" in error_fields(response), body
    assert snapshot(tenant_a) == before


@db
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/api/v1/items/deep", {"properties": {"a": "<deep>"}}, "properties"),
        ("PUT", "/api/v1/customers/deep", {"properties": {"a": "<deep>"}}, "properties"),
        (
            "POST",
            "/api/v1/events",
            {"events": [{"customer_id": "c", "item_id": "i", "type": "view", "value": "<deep>"}]},
            "value",
        ),
        (
            "PUT",
            "/api/v1/scenarios/deep",
            {"default_source": {"kind": "active", "version": "<deep>"}},
            "default_source",
        ),
        ("PATCH", "/api/v1/settings", {"events": {"weights": {"deep": "<deep>"}}}, "events"),
        (
            "POST",
            "/api/v1/recommendations/session",
            {"items": ["a"], "filters": {"properties": {"a": "<deep>"}}},
            "filters",
        ),
        pytest.param(
            "PATCH",
            "/api/v1/settings",
            {"training": {"params": {"als": {"x": "<deep>"}}}},
            "training",
            id="settings-training-params",
        ),
    ],
)
def test_deeply_nested_values_in_free_form_fields_are_refused(
    tenant_a: TenantHandle, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = snapshot(tenant_a)

    response = raw(api(tenant_a), method, path, dumps(body).replace(b'"<deep>"', DEEP))

    assert response.status_code == 400, response.content[:300]
    assert_problem(response, 400, "validation_error")
    assert any(name.startswith(field) or field in name for name in error_fields(response)), response.json()
    assert snapshot(tenant_a) == before


@db
def test_an_unknown_field_in_a_batch_row_rejects_that_row_only(tenant_a: TenantHandle) -> None:
    client = api(tenant_a)
    batches = {
        "/api/v1/items:batch": ("items", [{"item_id": "row-bad", "zz": 1}, {"item_id": "row-good"}]),
        "/api/v1/customers:batch": ("customers", [{"customer_id": "row-bad", "zz": 1}, {"customer_id": "row-good"}]),
        "/api/v1/events": (
            "events",
            [
                {"event_id": "row-bad", "customer_id": "row-bad", "item_id": "row-bad", "type": "view", "zz": 1},
                {"event_id": "row-good", "customer_id": "row-good", "item_id": "row-good", "type": "view"},
            ],
        ),
    }

    for path, (envelope, rows) in batches.items():
        response = client.post(path, {envelope: rows}, format="json")

        assert response.status_code == 200, response.content[:300]
        assert [(e["index"], e["field"], e["code"]) for e in response.json()["errors"]] == [(0, "zz", "unknown_field")]
    assert client.get("/api/v1/items/row-bad").status_code == 404
    assert client.get("/api/v1/customers/row-bad").status_code == 404
    history = client.get("/api/v1/customers/row-good/events").json()["results"]
    assert [row["event_id"] for row in history] == ["row-good"]


def _unknown_query_cases() -> list[Any]:
    return [pytest.param(route, method, id=f"{method} {route.path}") for route, method in api_operations()]


@db
@pytest.mark.parametrize(("route", "method"), _unknown_query_cases())
def test_unknown_query_parameters_are_refused(tenant_a: TenantHandle, route: Route, method: str) -> None:
    path = route.url(OWN_IDS) + "?zz_unknown=%27%3B%20DROP%20TABLE%20catalog_item%3B%20--"
    before = snapshot(tenant_a)

    response = raw(api(tenant_a), method, path, None if method in {"GET", "DELETE"} else b"{}")

    assert_problem(response, 400, "validation_error")
    assert "zz_unknown" in error_fields(response)
    assert snapshot(tenant_a) == before


# --------------------------------------------------------------------------- huge and odd numbers


def _numeric_query_cases() -> list[Any]:
    """(route, method, parameter, its schema) for every numeric query parameter in the document."""
    by_path = {(as_openapi_path(route), method): route for route, method in api_operations()}
    cases = []
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["schema"].get("type") in ("integer", "number"):
                    route = by_path[(path, method.upper())]
                    name, schema = parameter["name"], parameter["schema"]
                    cases.append(pytest.param(route, method.upper(), name, schema, id=f"{path} {name}"))
    assert len(cases) >= 12
    return cases


# ("1_000" is not here: Python's int() reads it as 1000, which is harmless.)
HOSTILE_NUMBERS = ["1" + "0" * 30, "9" * 5000, "-1", "NaN", "Infinity", "-Infinity", "1e400", "0x10", "%00", "1;2"]


@db
@pytest.mark.parametrize(("route", "method", "name", "schema"), _numeric_query_cases())
def test_huge_or_odd_numbers_in_the_query_are_400(
    tenant_a: TenantHandle, route: Route, method: str, name: str, schema: dict[str, Any]
) -> None:
    values = [*HOSTILE_NUMBERS]
    if schema["type"] == "integer":
        values += ["1.5", "1e3", str(schema["minimum"] - 1), str(schema["maximum"] + 1)]
    before = snapshot(tenant_a)

    for value in values:
        response = api(tenant_a).generic(method, f"{route.url(OWN_IDS)}?{name}={quote(value, safe='%')}")

        assert response.status_code == 400, (name, value[:40], response.status_code, response.content[:200])
        assert_problem(response, 400, "validation_error")
        assert name in error_fields(response), (name, value[:40], response.json())
    assert snapshot(tenant_a) == before


@db
@pytest.mark.parametrize(("route", "method", "name", "schema"), _numeric_query_cases())
def test_the_documented_bounds_of_numbers_are_accepted(
    tenant_a: TenantHandle, route: Route, method: str, name: str, schema: dict[str, Any]
) -> None:
    for value in (schema.get("minimum"), schema.get("maximum")):
        if value is not None:
            response = api(tenant_a).generic(method, f"{route.url(OWN_IDS)}?{name}={value}")

            assert response.status_code in {200, 404}, (name, value, response.content[:200])  # 404: no such item


def _integer_path_cases() -> list[Any]:
    cases = []
    for route, method in api_operations():
        names = re.findall(r"<int:(\w+)>", route.path)
        if names:
            cases.append(pytest.param(route, method, names, id=f"{method} {route.path}"))
    assert len(cases) >= 7
    return cases


@db
@pytest.mark.parametrize(("route", "method", "names"), _integer_path_cases())
def test_integer_ids_beyond_any_column_are_404(
    tenant_a: TenantHandle, route: Route, method: str, names: list[str]
) -> None:
    before = snapshot(tenant_a)

    for number in (2**31, 2**63, 10**30):
        path = route.url(dict.fromkeys(names, number))
        response = raw(api(tenant_a), method, path, b"{}" if method in {"POST", "PATCH", "PUT"} else None)

        assert_problem(response, 404, "not_found")
    assert snapshot(tenant_a) == before


@db
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": 10**30}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": -1}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": 101}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": 1.5}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": "10"}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": ["a"], "count": True}, "count"),
        ("POST", "/api/v1/recommendations/session", {"items": [f"i{n}" for n in range(101)]}, "items"),
        (
            "POST",
            "/api/v1/recommendations/session",
            {"items": ["a"], "exclude": [f"i{n}" for n in range(101)]},
            "exclude",
        ),
        (
            "POST",
            "/api/v1/recommendations:batch",
            {"requests": [{"customer_id": "c", "count": 10**30}]},
            "requests.0.count",
        ),
        ("POST", "/api/v1/recommendations:batch", {"requests": [{"customer_id": "c"}] * 101}, "requests"),
        ("POST", "/api/v1/items:batch", {"items": [{"item_id": "x"}] * 10_001}, "items"),
        (
            "POST",
            "/api/v1/events",
            {"events": [{"customer_id": "c", "item_id": "i", "type": "view"}] * 10_001},
            "events",
        ),
        ("PUT", "/api/v1/items/huge", {"price": 10**30}, "price"),
        ("PUT", "/api/v1/items/huge", {"price": -1}, "price"),
        ("PUT", "/api/v1/items/huge", {"properties": {f"k{n}": n for n in range(51)}}, "properties"),
        ("PUT", "/api/v1/items/huge", {"properties": {"k": "x" * 1001}}, "properties"),
        ("PUT", "/api/v1/items/huge", {"properties": {"k": list(range(101))}}, "properties"),
        ("PUT", "/api/v1/items/huge", {"properties": {"k" * 101: 1}}, "properties"),
        ("PUT", "/api/v1/items/huge", {"categories": [f"c{n}" for n in range(51)]}, "categories"),
        ("PUT", "/api/v1/items/huge", {"title": "x" * 501}, "title"),
        ("PUT", "/api/v1/items/huge", {"description": "x" * 10_001}, "description"),
        ("PATCH", "/api/v1/settings", {"events": {"weights": {"view": 10**30}}}, "events"),
        ("PATCH", "/api/v1/settings", {"training": {"keep_versions": 10**30}}, "training"),
    ],
)
def test_huge_counts_numbers_and_collections_in_bodies_are_400(
    tenant_a: TenantHandle, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = snapshot(tenant_a)

    response = raw(api(tenant_a), method, path, dumps(body))

    assert response.status_code == 400, response.content[:300]
    assert_problem(response, 400, "validation_error")
    assert any(name.startswith(field) for name in error_fields(response)), response.json()
    assert snapshot(tenant_a) == before


# --------------------------------------------------------------------------- injection strings

PAYLOADS = [
    "'; DROP TABLE catalog_item; --",
    "Robert'); DROP TABLE catalog_customer;--",
    "' OR '1'='1",
    "1; SELECT pg_sleep(10)",
    "{{7*7}}",
    "{% debug %}",
    "{{ settings.SECRET_KEY }}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\\u0000 and \\x00 and %00",
    "$(touch /tmp/pwned) `id`",
    "\u202eevil\u202c",
    "😀 𝕏 ÿ ß",
]
# The same kinds of strings where ids are allowed (no whitespace, slashes or control characters).
ID_PAYLOADS = [
    "';DROP_TABLE_catalog_item;--",
    "'OR'1'='1",
    "{{7*7}}",
    "{%debug%}",
    "${7*7}",
    "#{7*7}",
    "<b>",
    "%00",
    "$(id)",
]
assert all(re.fullmatch(EXTERNAL_ID_RE, value) for value in ID_PAYLOADS)


def _quoted(value: str) -> str:
    return quote(value, safe="")


@db
def test_injection_strings_in_every_text_field_are_stored_and_answered_verbatim(tenant_a: TenantHandle) -> None:
    client = api(tenant_a)
    items = [
        {
            "item_id": f"{ID_PAYLOADS[n % len(ID_PAYLOADS)]}-{n}",
            "title": text,
            "description": text,
            "categories": [text],
            "properties": {text: text, "list": [text]},
        }
        for n, text in enumerate(PAYLOADS)
    ]
    customers = [{"customer_id": f"{text}-{n}", "properties": {text: text}} for n, text in enumerate(ID_PAYLOADS)]
    events = [
        {
            "event_id": f"{ID_PAYLOADS[n % len(ID_PAYLOADS)]}-e{n}",
            "customer_id": customers[n % len(customers)]["customer_id"],
            "item_id": items[n]["item_id"],
            "type": "view",
            "recommendation_id": text[:64],
            "properties": {text: text},
            "timestamp": f"2026-01-01T00:{n:02}:00Z",
        }
        for n, text in enumerate(PAYLOADS)
    ]

    stored_items = client.post("/api/v1/items:batch", {"items": items}, format="json").json()
    stored_customers = client.post("/api/v1/customers:batch", {"customers": customers}, format="json").json()
    stored_events = client.post("/api/v1/events", {"events": events}, format="json").json()

    assert (stored_items["created"], stored_items["errors"]) == (len(items), [])
    assert (stored_customers["created"], stored_customers["errors"]) == (len(customers), [])
    assert (stored_events["stored"], stored_events["errors"]) == (len(events), [])
    for row in items:
        answer = client.get(f"/api/v1/items/{_quoted(row['item_id'])}").json()
        assert {k: answer[k] for k in row} == row
        listed = client.get("/api/v1/items", {"category": row["categories"][0]}).json()["results"]
        assert [found["item_id"] for found in listed] == [row["item_id"]]  # a filter value, not SQL
    for row in customers:
        answer = client.get(f"/api/v1/customers/{_quoted(row['customer_id'])}").json()
        assert {k: answer[k] for k in row} == row
    history = [
        found
        for row in customers
        for found in client.get(f"/api/v1/customers/{_quoted(row['customer_id'])}/events").json()["results"]
    ]
    sent = sorted((e["event_id"], e["recommendation_id"], json.dumps(e["properties"])) for e in events)
    assert sorted((e["event_id"], e["recommendation_id"], json.dumps(e["properties"])) for e in history) == sent
    with tenant_context(tenant_a.tenant):  # the tables the strings name are all there, with just these rows
        assert [model.objects.count() for model in (Item, Customer, Event)] == [len(items), len(customers), len(events)]


@pytest.fixture
def store_browser(tenant_a: TenantHandle) -> Client:
    """A dashboard session of a member of tenant A, on its host; 500s are answers, not raised."""
    login = member(tenant_a.tenant)
    browser = Client(HTTP_HOST=host(tenant_a.tenant), raise_request_exception=False)
    browser.force_login(get_user_model().objects.get(email=login.email))
    return browser


@db
def test_injection_strings_are_shown_escaped_and_unevaluated_in_the_dashboard(
    tenant_a: TenantHandle, store_browser: Client
) -> None:
    client = api(tenant_a)
    item_id = "{{7*7}}"
    scenario = {"name": "{{7*7}} <script>alert(1)</script>"}
    assert client.put("/api/v1/scenarios/inj", scenario, format="json").status_code == 201
    variants = [
        {"key": "{%debug%}", "share": 50, "source": {"kind": "active"}},
        {"key": "b", "share": 50, "source": {"kind": "popularity"}},
    ]
    experiment = client.post(
        "/api/v1/experiments",
        {"name": "${7*7} <img src=x onerror=alert(1)>", "scenario": "inj", "variants": variants},
        format="json",
    )
    assert experiment.status_code == 201, experiment.content
    title = {"title": "<script>alert(1)</script> {% debug %}"}
    assert client.put(f"/api/v1/items/{_quoted(item_id)}", title, format="json").status_code == 201
    event = {"customer_id": "{{7*7}}", "item_id": item_id, "type": "view"}
    assert client.post("/api/v1/events", {"events": [event]}, format="json").status_code == 200
    escaped_title = "&lt;script&gt;alert(1)&lt;/script&gt; {% debug %}"
    pages = {
        "/dashboard/items/": ["{{7*7}}", escaped_title],
        f"/dashboard/items/{_quoted(item_id)}/": [escaped_title],
        "/dashboard/customers/%7B%7B7*7%7D%7D/": ["{{7*7}}", escaped_title],
        "/dashboard/experiments/": ["{{7*7}} &lt;script&gt;alert(1)&lt;/script&gt;"],
        f"/dashboard/experiments/{experiment.json()['experiment_id']}/": [
            "${7*7} &lt;img src=x onerror=alert(1)&gt;",
            "{%debug%}",
        ],
    }

    for path, shown in pages.items():
        page = store_browser.get(path)
        html = page.content.decode()

        assert page.status_code == 200, path
        assert "<script>alert(" not in html, path
        assert "<img src=x" not in html, path
        for text in shown:
            assert text in html, (path, text)  # literally: escaped, never evaluated


# --------------------------------------------------------------------------- NUL characters

NUL = "a\u0000b"
_EVENT_ROW = {"customer_id": "c", "item_id": "i", "type": "view"}
_VARIANTS = [
    {"key": "a", "share": 50, "source": {"kind": "active"}},
    {"key": "b", "share": 50, "source": {"kind": "popularity"}},
]
_WITH_SCENARIO = [("PUT", "/api/v1/scenarios/nul", {})]
_WITH_EXPERIMENT = [
    *_WITH_SCENARIO,
    ("POST", "/api/v1/experiments", {"name": "x", "scenario": "nul", "variants": _VARIANTS}),
]


def _nul_cases() -> list[Any]:
    alg = {"kind": "algorithm", "algorithm": NUL}
    cases: list[tuple[str, str, Any, str, list[Any], list[Any]]] = [
        ("PUT", "/api/v1/items/nul", {"title": NUL}, "title", [], []),
        ("PUT", "/api/v1/items/nul", {"description": NUL}, "description", [], []),
        ("PUT", "/api/v1/items/nul", {"categories": [NUL]}, "categories", [], []),
        ("PUT", "/api/v1/items/nul", {"currency": NUL}, "currency", [], []),
        ("PUT", "/api/v1/items/nul", {"properties": {NUL: 1}}, "properties", [], []),
        ("PUT", "/api/v1/items/nul", {"properties": {"k": NUL}}, "properties", [], []),
        ("PUT", "/api/v1/items/nul", {"properties": {"k": ["x", NUL]}}, "properties", [], []),
        ("PUT", "/api/v1/items/nul", {"item_id": NUL}, "item_id", [], []),
        ("POST", "/api/v1/items:batch", {"items": [{"item_id": NUL}]}, "item_id", [], []),
        ("PUT", "/api/v1/customers/nul", {"properties": {NUL: NUL}}, "properties", [], []),
        ("POST", "/api/v1/customers:batch", {"customers": [{"customer_id": NUL}]}, "customer_id", [], []),
        *[
            ("POST", "/api/v1/events", {"events": [{**_EVENT_ROW, name: NUL}]}, name, [], [])
            for name in ("event_id", "customer_id", "item_id", "type", "recommendation_id")
        ],
        ("POST", "/api/v1/events", {"events": [{**_EVENT_ROW, "properties": {NUL: NUL}}]}, "properties", [], []),
        ("POST", "/api/v1/models:rollback", {"reason": NUL}, "reason", [], []),
        ("POST", "/api/v1/models/1:promote", {"reason": NUL}, "reason", [], []),
        ("POST", "/api/v1/models:train", {"algorithm": NUL}, "algorithm", [], []),
        ("PATCH", "/api/v1/settings", {"events": {"weights": {NUL: 1}}}, "events", [], []),
        ("POST", "/api/v1/recommendations/session", {"items": [NUL]}, "items", [], []),
        (
            "POST",
            "/api/v1/recommendations/session",
            {"items": ["a"], "filters": {"categories": [NUL]}},
            "filters",
            [],
            [],
        ),
        ("POST", "/api/v1/recommendations:batch", {"requests": [{"customer_id": NUL}]}, "requests", [], []),
        ("PUT", "/api/v1/scenarios/nul", {"name": NUL}, "name", [], []),
        ("PUT", "/api/v1/scenarios/nul", {"default_source": alg}, "default_source", [], []),
        (
            "POST",
            "/api/v1/experiments",
            {"name": NUL, "scenario": "nul", "variants": _VARIANTS},
            "name",
            _WITH_SCENARIO,
            [],
        ),
        (
            "POST",
            "/api/v1/experiments",
            {"name": "x", "scenario": "nul", "variants": [{**_VARIANTS[0], "key": NUL}, _VARIANTS[1]]},
            "variants",
            _WITH_SCENARIO,
            [],
        ),
        (
            "POST",
            "/api/v1/experiments",
            {"name": "x", "scenario": "nul", "variants": [{**_VARIANTS[0], "source": alg}, _VARIANTS[1]]},
            "variants",
            _WITH_SCENARIO,
            [],
        ),
        ("PATCH", "/api/v1/experiments/{id}", {"name": NUL}, "name", _WITH_EXPERIMENT, []),
        ("PATCH", "/api/v1/settings", {"training": {"params": {"als": {NUL: 1}}}}, "training", [], []),
        ("PATCH", "/api/v1/settings", {"training": {"params": {"als": {"x": NUL}}}}, "training", [], []),
    ]
    return [
        pytest.param((method, path, body, field), setup, id=f"{method} {path} {field}-{n}", marks=marks)
        for n, (method, path, body, field, setup, marks) in enumerate(cases)
    ]


@db
@pytest.mark.parametrize(("request_", "setup"), _nul_cases())
def test_a_nul_character_in_any_text_field_is_400_and_stores_nothing(
    tenant_a: TenantHandle, request_: tuple[str, str, Any, str], setup: list[Any]
) -> None:
    method, path, body, field = request_
    client = api(tenant_a)
    made: dict[str, Any] = {}
    for step_method, step_path, step_body in setup:
        made = client.generic(step_method, step_path, dumps(step_body), content_type="application/json").json()
    before = snapshot(tenant_a)

    response = raw(client, method, path.format(id=made.get("experiment_id")), dumps(body))

    assert response.status_code == 400, response.content[:300]
    assert_problem(response, 400, "validation_error")
    assert any(name.startswith(field) for name in error_fields(response)), response.json()
    assert snapshot(tenant_a) == before


@db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/items/a%00b", "/api/v1/customers/a%00b", "/api/v1/customers/a%00b/events", "/api/v1/items/a%00b/similar"],
)
def test_a_nul_character_in_a_path_id_is_404(tenant_a: TenantHandle, path: str) -> None:
    before = snapshot(tenant_a)

    for method in ("GET", "PUT", "DELETE"):
        response = raw(api(tenant_a), method, path, b"{}")

        if response.status_code != 405:
            assert response.status_code in {204, 404}, (method, path, response.content[:200])  # 204: erasure
    assert snapshot(tenant_a) == before


def _query_names(route: Route) -> list[str]:
    operation = openapi_document()["paths"][as_openapi_path(route)].get("get", {})
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and "{" not in p["name"]]


@db
def test_nul_and_invalid_utf8_in_every_query_parameter_are_400_or_harmless(tenant_a: TenantHandle) -> None:
    probed = 0
    for route, method in api_operations():
        if method == "GET":
            for name in _query_names(route):
                for value in ("%00", "%FF%FE", "%C0%AF", "a%00b"):
                    response = api(tenant_a).get(f"{route.url(OWN_IDS)}?{name}={value}")
                    probed += 1

                    assert response.status_code < 500, (route.path, name, value, response.content[:200])
                    if response.status_code >= 400:
                        assert response["Content-Type"] == "application/problem+json"
    assert probed >= 150


# --------------------------------------------------------------------------- validation bugs found here


@db
@pytest.mark.parametrize(
    "params",
    [{"als": {"factors": 10**9}}, {"als": {"iterations": 10**9}}, {"nope": {"x": 1}}, {"als": {"{{7*7}}": 1}}],
    ids=["huge-factors", "huge-iterations", "unknown-algorithm", "unknown-parameter"],
)
def test_training_params_are_validated_when_set(tenant_a: TenantHandle, params: Any) -> None:
    before = snapshot(tenant_a)

    response = api(tenant_a).patch("/api/v1/settings", {"training": {"params": params}}, format="json")

    assert_problem(response, 400, "validation_error")
    assert snapshot(tenant_a) == before


@db
def test_an_event_id_longer_than_its_column_is_a_row_error(tenant_a: TenantHandle) -> None:
    rows = [{"event_id": "e" * 200, **_EVENT_ROW}, {"event_id": "fine", **_EVENT_ROW}]

    response = api(tenant_a).post("/api/v1/events", {"events": rows}, format="json")

    assert response.status_code == 200, response.content[:300]
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "event_id")]


@db
def test_a_batch_that_fails_on_a_too_long_event_id_stores_nothing_half(tenant_a: TenantHandle) -> None:
    """Whatever the answer to the bug above, the batch's other rows (and the customers and items
    they would create) are stored whole or not at all."""
    rows = [
        {"event_id": "e" * 200, **_EVENT_ROW},
        {"event_id": "fine", "customer_id": "c2", "item_id": "i2", "type": "view"},
    ]
    before = snapshot(tenant_a)

    response = api(tenant_a).post("/api/v1/events", {"events": rows}, format="json")

    if response.status_code >= 400:
        assert snapshot(tenant_a) == before
    else:
        assert response.json()["stored"] == 1


# --------------------------------------------------------------------------- headers


@db
def test_hostile_headers_are_refused(tenant_a: TenantHandle) -> None:
    client = api(tenant_a)
    body = {"events": [_EVENT_ROW]}
    before = snapshot(tenant_a)

    refused = [
        client.post("/api/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY=value)
        for value in ("'; DROP TABLE x; --", "k" * 256, "clé", "a\tb")
    ]
    anonymous = APIClient(raise_request_exception=False)
    keys = [
        anonymous.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {value}")
        for value in ("sk_live_'; DROP TABLE tenants_apikey; --", "{{7*7}}", "sk_live_%00_x", "x" * 10_000)
    ]

    for response in refused:
        assert_problem(response, 400, "validation_error")
    for response in keys:
        assert_problem(response, 401, "invalid_api_key")
    assert snapshot(tenant_a) == before


# --------------------------------------------------------------------------- the dashboard's inputs


@db
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/dashboard/items/?q=%00", 200),
        pytest.param("GET", "/dashboard/customers/?q=%00", 200),
        pytest.param("GET", "/dashboard/items/a%00b/", 404),
        pytest.param("GET", "/dashboard/customers/a%00b/", 404),
        pytest.param("POST", "/dashboard/scenarios/a%00b/delete/", 404),
        pytest.param("POST", "/dashboard/keys/a%00b/revoke/", 404),
        pytest.param("GET", "/dashboard/models/?job=00000000-0000-4000-8000-000000000000", 200),
        ("GET", "/dashboard/items/?q=%27%20OR%201%3D1%20--", 200),
        ("GET", "/dashboard/items/?q=%FF%FE", 200),
        ("GET", "/dashboard/items/?page=%00", 200),
        ("GET", "/dashboard/?days=%00", 200),
        ("GET", "/dashboard/experiments/?scenario=%00", 200),
        ("GET", "/dashboard/items/%FF%FE/", 404),
        ("GET", "/dashboard/jobs/a%00b/progress/", 404),
        ("GET", f"/dashboard/experiments/{10**30}/", 404),
        ("POST", f"/dashboard/models/{10**30}/promote/", 404),
        ("POST", f"/dashboard/team/members/{10**30}/remove/", 404),
        ("GET", "/dashboard/join/a%00b/", 404),  # a path with NUL is no page at all
    ],
)
def test_hostile_dashboard_urls_are_4xx_or_harmless(
    tenant_a: TenantHandle, store_browser: Client, method: str, path: str, status: int
) -> None:
    before = snapshot(tenant_a)

    response = store_browser.generic(method, path)

    assert response.status_code == status, response.content[:300]
    assert snapshot(tenant_a) == before


# --------------------------------------------------------------------------- bursts and brute force


@pytest.fixture
def burst_plan(live_db: None) -> Iterator[Plan]:
    plan = PlanFactory(name="Burst", requests_per_minute=60, burst=3)
    yield plan
    plan.delete()


def test_a_write_burst_is_429_stores_nothing_refused_and_spares_other_tenants(burst_plan: Plan) -> None:
    noisy, quiet = make_tenant("noisy-w", plan=burst_plan.code), make_tenant("quiet-w", plan=burst_plan.code)
    try:
        batches = [{"events": [{"event_id": f"b{n}", **_EVENT_ROW}]} for n in range(6)]
        answers = [api(noisy).post("/api/v1/events", batch, format="json") for batch in batches]
        other = api(quiet).post("/api/v1/events", batches[0], format="json")
        with tenant_context(noisy.tenant):
            noisy_stored = sorted(Event.objects.values_list("event_id", flat=True))
        with tenant_context(quiet.tenant):
            quiet_stored = sorted(Event.objects.values_list("event_id", flat=True))
    finally:
        for handle in (noisy, quiet):
            tenant_delete(tenant=handle.tenant, actor="test")

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429, 429]
    assert_problem(answers[3], 429, "rate_limited")
    assert int(answers[3]["Retry-After"]) >= 1
    assert noisy_stored == ["b0", "b1", "b2"]  # the refused batches left nothing
    assert other.status_code == 200
    assert quiet_stored == ["b0"]


def _brute_force(browser: Client, path: str, username: str, password: str) -> Any:
    for n in range(20):
        browser.post(path, {"username": username, "password": f"wrong-{n}"})
    return browser.post(path, {"username": username, "password": password})


def _address() -> str:
    """A client address of the test's own: the per-address count is shared by the whole run."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


@db
def test_the_dashboard_login_is_throttled_after_many_failures(tenant_a: TenantHandle) -> None:
    login = member(tenant_a.tenant)
    other = member(tenant_a.tenant)
    browser = Client(HTTP_HOST=host(tenant_a.tenant), REMOTE_ADDR=_address())
    before_the_limit = Client(HTTP_HOST=host(tenant_a.tenant), REMOTE_ADDR=_address())
    for n in range(3):  # a few typos are fine
        before_the_limit.post("/dashboard/login/", {"username": other.email, "password": f"typo-{n}"})
    assert (
        before_the_limit.post("/dashboard/login/", {"username": other.email, "password": other.password}).status_code
        == 302
    )

    last = _brute_force(browser, "/dashboard/login/", login.email, login.password)

    assert last.status_code != 302, "logged in right after 20 failed attempts"
    assert "_auth_user_id" not in browser.session
    assert "Too many failed attempts" in last.content.decode()
    # The account is locked from any address (the guesser may rotate addresses) ...
    elsewhere = Client(HTTP_HOST=host(tenant_a.tenant), REMOTE_ADDR=_address())
    assert elsewhere.post("/dashboard/login/", {"username": login.email, "password": login.password}).status_code != 302


@db
def test_the_admin_login_is_throttled_after_many_failures() -> None:
    email = f"staff-{uuid.uuid4().hex[:6]}@support.example"
    UserFactory(email=email, password="right-pass-123", is_staff=True)
    browser = Client(HTTP_HOST="localhost", REMOTE_ADDR=_address())

    last = _brute_force(browser, "/admin/login/", email, "right-pass-123")

    assert last.status_code != 302, "logged in right after 20 failed attempts"


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(live_db: None) -> None:
    """Issue 19.14: the throttle checked, then counted, so 24 simultaneous guesses got 12 real
    password checks for a limit of 10. Attempts are counted first now: exactly the limit are
    checked, the rest refused, however they interleave."""
    store = make_tenant("throttle")
    try:
        login = member(store.tenant)
        barrier = threading.Barrier(24)
        answers: list[str] = []

        def guess(n: int) -> None:
            from django.db import connections

            browser = Client(HTTP_HOST=host(store.tenant), REMOTE_ADDR=_address())
            barrier.wait()
            page = browser.post("/dashboard/login/", {"username": login.email, "password": f"wrong-{n}"}).content
            answers.append("throttled" if b"Too many failed attempts" in page else "checked")
            connections.close_all()

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert answers.count("checked") == settings.SHELFWISE_LOGIN_MAX_FAILURES
        assert answers.count("throttled") == 24 - settings.SHELFWISE_LOGIN_MAX_FAILURES
    finally:
        connection.set_schema_to_public()
        tenant_delete(tenant=Tenant.objects.get(pk=store.tenant.pk), actor="test")
