"""Serving's own counters. Exposed through the platform's Prometheus metrics (see
shelfwise.observability.metrics); recording them never fails a request."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def _metrics() -> object | None:
    try:
        from shelfwise.observability import metrics
    except ImportError:  # pragma: no cover - shelfwise.observability.metrics is part of the platform
        return None
    return metrics


def model_load_failed(*, tenant_id: int, version: int) -> None:
    """A bundle failed its checks: alert (the version is not served meanwhile)."""
    module = _metrics()
    if module is not None:
        module.MODEL_LOAD_FAILURES.labels(tenant=module.tenant_label(tenant_id)).inc()  # type: ignore[attr-defined]


def recommendation_served(*, tenant_id: int, endpoint: str, strategy: str, cache: str) -> None:
    module = _metrics()
    if module is not None:
        tenant = module.tenant_label(tenant_id)  # type: ignore[attr-defined]
        module.child(module.RECOMMENDATIONS, tenant, endpoint, strategy).inc()  # type: ignore[attr-defined]
        if cache != "none":
            module.child(module.CACHE_LOOKUPS, tenant, cache).inc()  # type: ignore[attr-defined]


def scoring_observed(*, seconds: float, batch: int) -> None:
    module = _metrics()
    if module is not None:
        module.SCORING_SECONDS.observe(seconds)  # type: ignore[attr-defined]
        module.SCORING_BATCH.observe(batch)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- read when scraped

_active_models: tuple[float, list[tuple[str, int, float, float]]] = (0.0, [])


def active_model_gauges() -> list[Any]:
    """Per store (the ``SHELFWISE_METRICS_MAX_TENANTS`` busiest): the served version, its
    NDCG@10 and its age; read over their schemas in one query, reused for
    ``SHELFWISE_METRICS_STATE_SECONDS``. Registered with shelfwise.observability.metrics' scrape sources."""
    from prometheus_client.core import GaugeMetricFamily

    global _active_models  # noqa: PLW0603
    loaded_at, rows = _active_models
    if time.monotonic() - loaded_at >= settings.SHELFWISE_METRICS_STATE_SECONDS:
        rows = _active_models_read()
        _active_models = (time.monotonic(), rows)
    version = GaugeMetricFamily("shelfwise_model_active_version", "Model version served by default", labels=["tenant"])
    ndcg = GaugeMetricFamily("shelfwise_model_active_ndcg_at_10", "NDCG@10 of the served version", labels=["tenant"])
    age = GaugeMetricFamily(
        "shelfwise_model_active_age_seconds", "Seconds since the served version was trained", labels=["tenant"]
    )
    for tenant, number, score, seconds in rows:
        version.add_metric([tenant], number)
        ndcg.add_metric([tenant], score)
        age.add_metric([tenant], seconds)
    return [version, ndcg, age]


def _active_models_read() -> list[tuple[str, int, float, float]]:
    from django.db import connection
    from django.db.models import F
    from django.utils import timezone
    from psycopg import sql

    from recommendations.models import ModelVersion
    from shelfwise.datastores.postgres import schemas_having_tables
    from shelfwise.observability.metrics import tenant_label
    from tenants.models import Tenant

    tenants = list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE)
        .exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by(F("usage__events_this_month").desc(nulls_last=True), "pk")
        .values_list("pk", "schema_name")[: settings.SHELFWISE_METRICS_MAX_TENANTS]
    )
    table = ModelVersion._meta.db_table
    migrated = schemas_having_tables([schema for _, schema in tenants], [table])
    parts = [
        sql.SQL(
            "(SELECT {tenant}::bigint, version, COALESCE((metrics -> 'model' ->> 'ndcg@10')::float8, 0), "
            "finished_at FROM {schema}.{table} WHERE status = 'active' AND name = 'default' LIMIT 1)"
        ).format(tenant=sql.Literal(pk), schema=sql.Identifier(schema), table=sql.Identifier(table))
        for pk, schema in tenants
        if schema in migrated
    ]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(" UNION ALL ").join(parts).as_string(connection.connection))
        rows = cursor.fetchall()
    now = timezone.now()
    return [
        (tenant_label(pk), int(number), float(score), (now - finished).total_seconds() if finished else 0.0)
        for pk, number, score, finished in rows
    ]
