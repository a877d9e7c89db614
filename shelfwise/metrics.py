"""Prometheus metrics of the platform, and the ``/metrics`` endpoint.

Every process records into prometheus_client's metrics. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``make run``, the container image) each process writes its values to files in that directory
and ``/metrics`` adds up those of every gunicorn worker and Celery worker process on the machine
(gunicorn's ``child_exit`` and Celery's ``worker_process_shutdown`` mark dead processes, so
their gauges go and their counters stay). Without it, ``/metrics`` shows its own process only.

Tenant labels are bounded: ``SHELFWISE_METRICS_TENANT_LABEL`` = ``id`` (default) labels by
tenant id, ``off`` puts every tenant under ``all``. Routes are URL patterns, not paths.

``/metrics`` is not public: it needs ``Authorization: Bearer $SHELFWISE_METRICS_TOKEN``; without a
token configured it answers only loopback callers outside production, and 404 in production.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --------------------------------------------------------------------------- HTTP

HTTP_REQUESTS = Counter(
    "shelfwise_http_requests_total", "HTTP requests answered", ["route", "method", "status", "tenant"]
)
HTTP_SECONDS = Histogram(
    "shelfwise_http_request_duration_seconds",
    "Time to answer an HTTP request (in the app, after gunicorn parsed it)",
    ["route", "method", "tenant"],
    buckets=LATENCY_BUCKETS,
)

# --------------------------------------------------------------------------- serving

MODEL_LOAD_FAILURES = Counter(
    "shelfwise_model_load_failures_total", "Model bundles that failed their checks when loaded", ["tenant"]
)
RECOMMENDATIONS = Counter(
    "shelfwise_recommendations_total", "Recommendation lists served", ["tenant", "endpoint", "strategy"]
)
CACHE_LOOKUPS = Counter("shelfwise_recommendation_cache_total", "Recommendation cache lookups", ["tenant", "result"])
SCORING_SECONDS = Histogram(
    "shelfwise_onnx_scoring_seconds",
    "ONNX Runtime scoring time per call",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
SCORING_BATCH = Histogram(
    "shelfwise_onnx_scoring_batch_size", "Customers scored per ONNX Runtime call", buckets=(1, 2, 5, 10, 25, 50, 100)
)

# --------------------------------------------------------------------------- ingestion, tasks, training

EVENTS_INGESTED = Counter("shelfwise_events_ingested_total", "Events stored (duplicates not counted)", ["tenant"])
TASK_SECONDS = Histogram(
    "shelfwise_celery_task_duration_seconds",
    "Celery task run time by outcome (success, failure, retry)",
    ["task", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
TASK_FAILURES = Counter("shelfwise_celery_task_failures_total", "Celery tasks that failed for good", ["task"])
TASK_RETRIES = Counter("shelfwise_celery_task_retries_total", "Celery task retries", ["task"])
TRAINING_SECONDS = Histogram(
    "shelfwise_training_duration_seconds",
    "Model training time, by outcome",
    ["tenant", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)


def tenant_label(tenant_id: int | None) -> str:
    if tenant_id is None:
        return "none"
    return "all" if settings.SHELFWISE_METRICS_TENANT_LABEL == "off" else str(tenant_id)


# --------------------------------------------------------------------------- read at scrape time

QUEUES = ("default", "training", "scoring")


class StateCollector(Collector):
    """Gauges read when scraped (not per process): Celery queue depth from the broker, and per
    tenant the served model version, its NDCG@10 and its age (bounded to
    ``SHELFWISE_METRICS_MAX_TENANTS`` tenants, reused for ``SHELFWISE_METRICS_STATE_SECONDS``)."""

    def __init__(self) -> None:
        self._models: tuple[float, list[tuple[str, int, float, float]]] = (0.0, [])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("shelfwise_celery_queue_length", "Tasks waiting in a Celery queue", labels=["queue"])
        for queue, length in _queue_lengths().items():
            depth.add_metric([queue], length)
        yield depth
        version = GaugeMetricFamily(
            "shelfwise_model_active_version", "Model version served by default", labels=["tenant"]
        )
        ndcg = GaugeMetricFamily(
            "shelfwise_model_active_ndcg_at_10", "NDCG@10 of the served version", labels=["tenant"]
        )
        age = GaugeMetricFamily(
            "shelfwise_model_active_age_seconds", "Seconds since the served version was trained", labels=["tenant"]
        )
        for tenant, number, score, seconds in self._active_models():
            version.add_metric([tenant], number)
            ndcg.add_metric([tenant], score)
            age.add_metric([tenant], seconds)
        yield version
        yield ndcg
        yield age

    def _active_models(self) -> list[tuple[str, int, float, float]]:
        loaded_at, rows = self._models
        if time.monotonic() - loaded_at < settings.SHELFWISE_METRICS_STATE_SECONDS:
            return rows
        try:
            rows = _active_models_read()
        except Exception:  # a scrape must answer even when the database does not
            logger.exception("metrics: could not read the active models")
            rows = []
        self._models = (time.monotonic(), rows)
        return rows


def _queue_lengths() -> dict[str, int]:
    import redis

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            lengths = pipe.execute()
    except redis.RedisError:
        return {}
    return dict(zip(QUEUES, (int(n) for n in lengths), strict=True))


def _active_models_read() -> list[tuple[str, int, float, float]]:
    """One query over the busiest active tenants' schemas (psycopg composes the identifiers)."""
    from django.db import connection
    from django.db.models import F
    from django.utils import timezone
    from psycopg import sql

    from recommendations.models import ModelVersion
    from tenants.models import Tenant

    tenants = list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE)
        .exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by(F("usage__events_this_month").desc(nulls_last=True), "pk")
        .values_list("pk", "schema_name")[: settings.SHELFWISE_METRICS_MAX_TENANTS]
    )
    if not tenants:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s",
            [ModelVersion._meta.db_table],
        )
        migrated = {schema for (schema,) in cursor.fetchall()}
        parts = [
            sql.SQL(
                "(SELECT {tenant}::bigint, version, COALESCE((metrics -> 'model' ->> 'ndcg@10')::float8, 0), "
                "finished_at FROM {schema}.{table} WHERE status = 'active' AND name = 'default' LIMIT 1)"
            ).format(
                tenant=sql.Literal(pk), schema=sql.Identifier(schema), table=sql.Identifier(ModelVersion._meta.db_table)
            )
            for pk, schema in tenants
            if schema in migrated
        ]
        if not parts:
            return []
        cursor.execute(sql.SQL(" UNION ALL ").join(parts).as_string(connection.connection))
        rows = cursor.fetchall()
    now = timezone.now()
    return [
        (tenant_label(pk), int(version), float(score), (now - finished).total_seconds() if finished else 0.0)
        for pk, version, score, finished in rows
    ]


_state_collector = StateCollector()
_default_registered = False


def _registry() -> CollectorRegistry:
    global _default_registered  # noqa: PLW0603
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_state_collector)
        return registry
    if not _default_registered:
        REGISTRY.register(_state_collector)
        _default_registered = True
    return REGISTRY


def _allowed(request: HttpRequest) -> bool:
    token = settings.SHELFWISE_METRICS_TOKEN
    if token:
        scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return not settings.PRODUCTION and request.META.get("REMOTE_ADDR") in {"127.0.0.1", "::1"}


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics`` in Prometheus' text format (404 to anyone not allowed: it does not exist for them)."""
    if not _allowed(request):
        return HttpResponseNotFound(b"Not found", content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def process_dead(pid: int) -> None:
    """A process that recorded metrics ended (gunicorn worker, Celery pool process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(*, route: str, method: str, status: int, tenant_id: int | None, seconds: float) -> None:
    tenant = tenant_label(tenant_id)
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status), tenant=tenant).inc()
    HTTP_SECONDS.labels(route=route, method=method, tenant=tenant).observe(seconds)


def observe_task(*, task: str, outcome: str, seconds: float | None) -> None:
    if seconds is not None:
        TASK_SECONDS.labels(task=task, outcome=outcome).observe(seconds)
    if outcome == "failure":
        TASK_FAILURES.labels(task=task).inc()
    elif outcome == "retry":
        TASK_RETRIES.labels(task=task).inc()


def events_ingested(*, tenant_id: int, count: int) -> None:
    if count:
        EVENTS_INGESTED.labels(tenant=tenant_label(tenant_id)).inc(count)


def training_observed(*, tenant_id: int, outcome: str, seconds: float) -> None:
    TRAINING_SECONDS.labels(tenant=tenant_label(tenant_id), outcome=outcome).observe(seconds)
