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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
from prometheus_client.core import GaugeMetricFamily, Metric
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


_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)`` (label values in the metric's label order), remembered: the
    serving path records several per request and ``labels()`` validates and locks every time.
    Bounded like the metric itself (nothing here removes labelled children)."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def tenant_label(tenant_id: int | None) -> str:
    if tenant_id is None:
        return "none"
    return "all" if settings.SHELFWISE_METRICS_TENANT_LABEL == "off" else str(tenant_id)


# --------------------------------------------------------------------------- read at scrape time

QUEUES = ("default", "training", "scoring")


# Apps register what they report when scraped (e.g. the served model per store): a function
# returning metric families, called on every scrape (it caches what is expensive itself).
ScrapeSource = Callable[[], Iterable[Metric]]
_scrape_sources: list[ScrapeSource] = []


def scrape_source_register(source: ScrapeSource) -> None:
    """Report ``source``'s metric families on every scrape (call from AppConfig.ready)."""
    if source not in _scrape_sources:
        _scrape_sources.append(source)


class StateCollector(Collector):
    """Gauges read when scraped, not recorded per process: Celery queue depth from the broker,
    and what the apps registered (``scrape_source_register``)."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("shelfwise_celery_queue_length", "Tasks waiting in a Celery queue", labels=["queue"])
        for queue, length in _queue_lengths().items():
            depth.add_metric([queue], length)
        yield depth
        for source in list(_scrape_sources):
            try:
                yield from source()
            except Exception:  # a scrape must answer even when a source cannot
                logger.exception("metrics: scrape source %s failed", getattr(source, "__name__", source))


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
    child(HTTP_REQUESTS, route, method, str(status), tenant).inc()
    child(HTTP_SECONDS, route, method, tenant).observe(seconds)


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
