"""Prometheus metrics of the platform (one registry per process; multi-process aggregation is
configured by the web and worker roles).

Tenant labels are bounded: ``SHELFWISE_METRICS_TENANT_LABEL`` = ``id`` (default) labels by
tenant id, ``off`` puts every tenant under ``all``.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Histogram

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


def tenant_label(tenant_id: int) -> str:
    return "all" if settings.SHELFWISE_METRICS_TENANT_LABEL == "off" else str(tenant_id)
