"""Helpers shared by the tests (test modules never import each other)."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from django.apps import apps
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection, models, transaction
from django.http import HttpResponse
from django.urls import URLResolver, get_resolver
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from recommendations.models import ModelVersion
from recommendations.services.training import training_job_execute, training_job_request
from shelfwise.datastores.redis_client import redis_call, tenant_key_pattern
from shelfwise.http.views import ApiView
from shelfwise.observability.traffic import traffic_flush
from shelfwise.wsgi import application
from tenants.models import ApiKey, Tenant

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".dev" / "test-artifacts"


# --------------------------------------------------------------------------- stores


@dataclass
class TenantHandle:
    """A committed tenant plus its raw default secret key."""

    tenant: Tenant
    key: str

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def client(self, key: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key or self.key}")
        return client


def tables_containing(text: str) -> list[str]:
    """Every table, in every schema, with a row whose text form contains ``text``."""
    from psycopg import sql

    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        )
        for schema, table in cursor.fetchall():
            query = sql.SQL("SELECT count(*) FROM {}.{} t WHERE t::text LIKE %s").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            cursor.execute(query.as_string(), [f"%{text}%"])
            if cursor.fetchone()[0]:
                hits.append(f"{schema}.{table}")
    return hits


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the API's problem+json for ``code`` (and returns its body)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/api/problems/{code}"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


# --------------------------------------------------------------------------- dashboard users


def host(tenant: Tenant) -> str:
    return f"{tenant.slug}.localhost"


# --------------------------------------------------------------------------- models


# A customer token every implementation must reproduce (tenants.customer_tokens and the Python
# SDK's customer_token).
CUSTOMER_TOKEN_VECTOR: dict[str, Any] = {
    "secret": "cts_example-signing-secret",
    "key_id": "abcdefghijkl",
    "customer_id": "shopper@example.com",
    "expiry": 2_000_000_000,
    "token": "ct1.2000000000.MHbFfGsYzfuXuk_MZEiHscGKHL4VHAlGz5Le2_lMma0",
}


def train_now(store: TenantHandle, **options: object) -> ModelVersion:
    """Train in this process — or, when a Celery worker of the session took the queued job
    first (it is sent to the broker too), wait for that worker to finish it."""
    with tenant_context(store.tenant):
        job = training_job_request(trigger="cli", requested_by="test", **options)  # type: ignore[arg-type]
        training_job_execute(str(job.id))
        job.refresh_from_db()
        deadline = time.monotonic() + 300
        while not job.is_finished and time.monotonic() < deadline:
            time.sleep(0.2)
            job.refresh_from_db()
        assert job.status == "succeeded", job.error
        return ModelVersion.objects.get(pk=job.version_id)


# --------------------------------------------------------------------------- the production WSGI application


class _WsgiHandler:
    """Django's test client, but through the production WSGI application."""

    def __init__(self, app: Any = application) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any]) -> HttpResponse:
        as_sent = dict(environ)  # a WSGIRequest rewrites the path in the environ it is given
        started: list[Any] = []
        body = b"".join(self.app(environ, lambda status, headers: started.extend((status, headers))))
        status, headers = started
        response = HttpResponse(body, status=int(status.split()[0]))
        for name, value in headers:
            response[name] = value
        response.wsgi_request = WSGIRequest(as_sent)  # type: ignore[attr-defined]
        return response


def wsgi_client(key: str, app: Any = application) -> APIClient:
    client = APIClient()
    client.handler = _WsgiHandler(app)  # type: ignore[assignment]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# --------------------------------------------------------------------------- the API surface, from the URL conf

API_PREFIX = "/api/v1/"
HANDLER_METHODS = ("get", "put", "patch", "post", "delete")


@dataclass(frozen=True)
class Route:
    """One URL pattern, includes flattened: ``/api/v1/items/<str:item_id>``."""

    path: str
    callback: Any
    name: str | None

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"<(?:\w+:)?(\w+)>", self.path))

    def url(self, values: Mapping[str, Any]) -> str:
        """The path with ``values`` for its parameters (route converters or regex groups)."""
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: quote(str(values[m[1]]), safe=""), self.path)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: quote(str(values[m[1]]), safe=""), path)
        path = path.replace("^", "").replace("$", "")
        assert not re.search(r"[()\\*+?\[\]|]", path), f"cannot fill the pattern {self.path}"
        return path


def all_routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                found.append(Route("/" + prefix + str(pattern.pattern), pattern.callback, pattern.name))

    walk(get_resolver().url_patterns, "")
    return found


def api_view_routes() -> list[tuple[Route, type[ApiView]]]:
    out = []
    for route in all_routes():
        view = getattr(route.callback, "view_class", None)
        if route.path.startswith(API_PREFIX) and isinstance(view, type) and issubclass(view, ApiView):
            out.append((route, view))
    return out


def api_operations() -> list[tuple[Route, str]]:
    """Every (route, method) the v1 API implements; HEAD and OPTIONS are added by the caller."""
    return [
        (route, method.upper())
        for route, view in api_view_routes()
        for method in HANDLER_METHODS
        if hasattr(view, method)
    ]


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The committed OpenAPI document (test_contract keeps it equal to what the code generates)."""
    return dict(yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text()))


def openapi_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in openapi_document()["paths"].items() for method in operations}


def as_openapi_path(route: Route) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.path)


# --------------------------------------------------------------------------- everything a store has


def _tenant_models() -> list[type[models.Model]]:
    """Every model of the apps that live in a tenant's schema."""
    labels = [app.rsplit(".", 1)[-1] for app in settings.TENANT_APPS if app not in settings.SHARED_APPS]
    return [model for label in labels for model in apps.get_app_config(label).get_models()]


def _public_models_of_a_tenant() -> list[tuple[type[models.Model], str]]:
    """Every public model with a foreign key to the tenant, and that key's name."""
    return [
        (model, f.name)
        for model in apps.get_models()
        for f in model._meta.get_fields()
        if f.many_to_one and f.related_model is Tenant and model not in _tenant_models()
    ]


# Redis keys that count the tenant's own requests (rate-limit buckets, per-day traffic).
USAGE_KEYS = re.compile(rb"^sw:\d+:(rl|traffic):")


def tenant_snapshot(tenant: Tenant, *, own_usage: bool = True) -> dict[str, Any]:
    """Every row of the tenant's schema, its public rows (tenant, keys, members, domains,
    invitations, audit log...) and its Redis keys with their values. ``own_usage=False`` leaves
    out what the tenant's own requests leave behind (its rate-limit bucket, traffic counts, its
    key's last use), for tests where the tenant itself sends the refused requests."""
    traffic_flush()  # requests counted so far are written now, not in the middle of a test
    snapshot: dict[str, Any] = {}
    with tenant_context(tenant):
        for model in _tenant_models():
            snapshot[model._meta.label] = list(model.objects.order_by("pk").values())
    snapshot["tenant"] = list(Tenant.objects.filter(pk=tenant.pk).values())
    for model, key in _public_models_of_a_tenant():
        snapshot[model._meta.label] = list(model._default_manager.filter(**{key: tenant.pk}).order_by("pk").values())

    def redis_values(client: Any) -> dict[bytes, bytes]:
        return {key: client.dump(key) for key in client.scan_iter(match=tenant_key_pattern(tenant.pk))}

    snapshot["redis"] = redis_call(redis_values, default=None)
    if not own_usage:
        snapshot["redis"] = {k: v for k, v in (snapshot["redis"] or {}).items() if not USAGE_KEYS.match(k)}
        for row in snapshot[ApiKey._meta.label]:
            row.pop("last_used_at")
    connection.set_schema_to_public()
    return snapshot


# --------------------------------------------------------------------------- property tests

# Hypothesis settings: pure properties, and database ones (fewer examples, each a few queries in
# a savepoint of a module-scoped store, so the function-scoped-fixture check does not apply).
PURE_EXAMPLES: dict[str, Any] = {"max_examples": 150, "deadline": None}
DB_EXAMPLES: dict[str, Any] = {"max_examples": 40, "deadline": None}


@contextmanager
def scratch(store: Tenant) -> Iterator[None]:
    """The store's schema for one example; everything written in it is rolled back."""
    with tenant_context(store), transaction.atomic():
        yield
        transaction.set_rollback(True)
