"""Liveness and readiness probes (unauthenticated, no tenant data)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from shelfwise.datastores.postgres import db
from shelfwise.datastores.redis_client import REDIS_ERRORS, redis_client

_migrations_ok = False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    global _migrations_ok  # noqa: PLW0603 - once applied, migrations stay applied
    try:
        db().set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrations_ok:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if plan:
                return f"{len(plan)} migration(s) not applied"
            _migrations_ok = True
    except DatabaseError as exc:
        return f"unreachable: {exc.__class__.__name__}"
    return None


def _check_redis(url: str | None = None) -> str | None:
    try:
        if url is None:
            redis_client().ping()
        else:
            with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
                client.ping()
    except REDIS_ERRORS as exc:
        return f"unreachable: {exc.__class__.__name__}"
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: PostgreSQL answers and migrations are applied (503 otherwise).
    Redis and the broker are checked and reported, but their loss only degrades the service
    (recommendations uncached, events still stored), so it does not take every web process out
    of the load balancer at once: the answer is then 200 with ``"status": "degraded"``."""
    started = time.perf_counter()
    database = _check_database()
    checks = {
        "database": database,
        "redis": _check_redis(),
        "broker": _check_redis(settings.CELERY_BROKER_URL)
        if settings.CELERY_BROKER_URL != settings.REDIS_URL
        else None,
    }
    if database is not None:
        status = "unavailable"
    else:
        status = "ok" if all(problem is None for problem in checks.values()) else "degraded"
    body = {
        "status": status,
        "checks": {name: (problem or "ok") for name, problem in checks.items()},
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=503 if database is not None else 200)


PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes, and token-authenticated scrapes of /metrics, before anything reads the
    Host header: load balancers, kubelets, Prometheus and the image's HEALTHCHECK call by task or
    pod IP or 127.0.0.1, which ALLOWED_HOSTS need not list. (/metrics without a token — loopback
    only, outside production — keeps Django's host check, against DNS rebinding.) First in
    MIDDLEWARE; nothing else runs for these (no session, no tenant, no access-log line)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        if request.path_info == "/metrics" and settings.SHELFWISE_METRICS_TOKEN:
            from shelfwise.observability.metrics import metrics_view

            return metrics_view(request)
        return self.get_response(request)
