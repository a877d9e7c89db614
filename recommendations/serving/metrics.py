"""Serving's own counters. Exposed through the platform's Prometheus metrics (see
shelfwise.metrics); recording them never fails a request."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def _metrics() -> object | None:
    try:
        from shelfwise import metrics
    except ImportError:  # pragma: no cover - shelfwise.metrics is part of the platform
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
        module.RECOMMENDATIONS.labels(tenant=tenant, endpoint=endpoint, strategy=strategy).inc()  # type: ignore[attr-defined]
        if cache != "none":
            module.CACHE_LOOKUPS.labels(tenant=tenant, result=cache).inc()  # type: ignore[attr-defined]


def scoring_observed(*, seconds: float, batch: int) -> None:
    module = _metrics()
    if module is not None:
        module.SCORING_SECONDS.observe(seconds)  # type: ignore[attr-defined]
        module.SCORING_BATCH.observe(batch)  # type: ignore[attr-defined]
