"""OpenTelemetry traces: Django requests, Celery tasks (the trace continues from the request
that enqueued them), psycopg queries and Redis commands, plus the serving path's own spans.

Exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; otherwise nothing is installed and the spans the
code opens are OpenTelemetry's no-ops. The standard ``OTEL_*`` variables apply (service name,
sampler, batch delay, headers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import trace

logger = logging.getLogger(__name__)

tracer = trace.get_tracer("shelfwise")
_installed = False


def tracing_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def init_tracing(role: str) -> bool:
    """Install the tracer provider and the instrumentations (once per process); call before
    Django builds its middleware (the Django instrumentation adds one). False if not configured."""
    global _installed  # noqa: PLW0603
    if _installed or not tracing_configured():
        return _installed
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", f"shelfwise-{role}"), "shelfwise.role": role}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    _installed = True
    logger.info("tracing: exporting OTLP spans as %s", resource.attributes["service.name"])
    return True


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


_NO_SPAN = nullcontext(trace.INVALID_SPAN)  # a non-recording span, as the no-op tracer gives


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A span of the serving path (nothing at all unless tracing is installed: the hot path
    opens several per request)."""
    return _span(name, attributes) if _installed else _NO_SPAN
