"""Request bodies as a real gunicorn hands them to the app: chunked bodies are read (within the
upload limit) instead of being taken for empty ones, and an empty body is not an object."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from catalog.models import Event, Item
from shelfwise.http.fastpath import frame_chunked_body
from tests.fixtures.processes import AppServer, start_app_server, stop_process
from tests.helpers import TenantHandle

pytestmark = pytest.mark.slow


def chunked(server: AppServer, method: str, path: str, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One request whose body is sent with Transfer-Encoding: chunked (no Content-Length)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    pieces: Iterator[bytes] = (body[start : start + 7] for start in range(0, len(body), 7))
    connection.request(
        method,
        path,
        body=pieces,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    status, content = response.status, response.read()
    connection.close()
    return status, json.loads(content) if content else {}


def test_a_chunked_put_is_read_not_taken_for_an_empty_one(fresh_tenant: TenantHandle, app_server: AppServer) -> None:
    """Issue 19.5: the item was reset to defaults (its title lost) by a chunked PUT."""
    body = json.dumps({"title": "Keep me", "categories": ["gifts"], "price": 2.5}).encode()

    status, answer = chunked(app_server, "PUT", "/api/v1/items/x", fresh_tenant.key, body)

    assert status == 201, answer
    assert answer["title"] == "Keep me"
    with tenant_context(fresh_tenant.tenant):
        assert Item.objects.get(external_id="x").title == "Keep me"


def test_a_chunked_post_of_events_is_stored(fresh_tenant: TenantHandle, app_server: AppServer) -> None:
    rows = [{"event_id": f"chunked-{n}", "customer_id": "c1", "item_id": f"i{n}", "type": "view"} for n in range(50)]

    status, answer = chunked(
        app_server, "POST", "/api/v1/events", fresh_tenant.key, json.dumps({"events": rows}).encode()
    )

    assert (status, answer["stored"]) == (200, 50), answer
    with tenant_context(fresh_tenant.tenant):
        assert Event.objects.count() == 50


def test_an_empty_put_is_a_400_and_changes_nothing(fresh_tenant: TenantHandle, app_server: AppServer) -> None:
    created, _ = chunked(app_server, "PUT", "/api/v1/items/x", fresh_tenant.key, b'{"title": "Keep me"}')

    status, answer = chunked(app_server, "PUT", "/api/v1/items/x", fresh_tenant.key, b"")
    plain = fresh_tenant.client().put("/api/v1/items/x", data=b"", content_type="application/json")

    assert created == 201
    assert (status, answer["code"]) == (400, "validation_error")
    assert plain.status_code == 400
    with tenant_context(fresh_tenant.tenant):
        assert Item.objects.get(external_id="x").title == "Keep me"


def test_a_chunked_body_over_the_upload_limit_is_refused_with_413(fresh_tenant: TenantHandle) -> None:
    server = start_app_server("small-bodies", workers=1, env={"SHELFWISE_MAX_BODY_BYTES": "200"})
    try:
        small = chunked(server, "PUT", "/api/v1/items/x", fresh_tenant.key, b'{"title": "fits"}')
        large = chunked(server, "PUT", "/api/v1/items/x", fresh_tenant.key, json.dumps({"title": "y" * 400}).encode())
    finally:
        stop_process(server.process)

    assert small[0] == 201
    assert (large[0], large[1]["code"]) == (413, "payload_too_large")
    with tenant_context(fresh_tenant.tenant):
        assert Item.objects.get(external_id="x").title == "fits"


def test_without_a_terminated_input_a_chunked_body_is_refused_with_411(tenant_a: TenantHandle, client: Any) -> None:
    environ: dict[str, Any] = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": None}
    frame_chunked_body(environ)

    response = client.put(
        "/api/v1/items/x",
        data=b"",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tenant_a.key}",
        **{key: value for key, value in environ.items() if key.startswith("shelfwise.")},
    )

    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
