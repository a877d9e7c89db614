"""Liveness and readiness probes (unauthenticated, no tenant data)."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from shelfwise.redis_client import REDIS_ERRORS, redis_client
from shelfwise.tenancy import db

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
    """PostgreSQL, Redis and the Celery broker are reachable and migrations are applied."""
    started = time.perf_counter()
    checks = {
        "database": _check_database(),
        "redis": _check_redis(),
        "broker": _check_redis(settings.CELERY_BROKER_URL)
        if settings.CELERY_BROKER_URL != settings.REDIS_URL
        else None,
    }
    ok = all(problem is None for problem in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {name: (problem or "ok") for name, problem in checks.items()},
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if ok else 503)
