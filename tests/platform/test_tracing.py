"""OpenTelemetry: a recommendation request on a real gunicorn exports its trace over OTLP/HTTP
to an in-test collector, with the cache, scoring and database spans under the request's span; a
request that enqueues a Celery task continues its trace in the worker; log lines carry the trace
id; without an endpoint nothing is installed."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from recommendations.models import TrainingJob
from shelfwise.dev.servers import free_port
from tests.factories import load_taste_store, make_tenant
from tests.fixtures.processes import start_app_server, start_worker, stop_process
from tests.helpers import TenantHandle, train_now

pytestmark = pytest.mark.slow

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


class _Collector(BaseHTTPRequestHandler):
    spans: list[Any]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                type(self).spans.extend(scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def collector() -> Iterator[tuple[str, list[Any]]]:
    spans: list[Any] = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), type("Collector", (_Collector,), {"spans": spans}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", spans
    server.shutdown()


def test_a_recommendation_request_exports_its_trace(live_db: None, collector: tuple[str, list[Any]]) -> None:
    endpoint, spans = collector
    store: TenantHandle = make_tenant("traced")
    load_taste_store(store)
    train_now(store, two_stage=False)
    server = start_app_server(
        "traced", workers=1, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        # exclude_seen=false: not among the lists the promotion warmed, so a miss that scores.
        path = "/api/v1/customers/c3/recommendations?exclude_seen=false"
        connection.request("GET", path, headers={"Authorization": f"Bearer {store.key}"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("X-Shelfwise-Cache") == "miss"
        response.read()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("recommendations" in s.name and s.kind == 2 for s in spans):
            time.sleep(0.1)
    finally:
        stop_process(server.process)

    server_span = next(s for s in spans if s.kind == 2 and "recommendations" in s.name)  # SPAN_KIND_SERVER
    same_trace = [s for s in spans if s.trace_id == server_span.trace_id]
    names = {s.name for s in same_trace}
    assert "api.rate_limit_and_prelude" in names  # the rate limit's call, which reads the cache
    assert "recommendations.compute" in names
    assert "recommendations.score" in names
    assert any(s.kind == 3 and s.name in {"EVALSHA", "EVAL"} for s in same_trace), names  # Redis (client)
    assert any(s.kind == 3 and s.name.split()[0] in {"SELECT", "INSERT", "UPDATE"} for s in same_trace), names


def _wait_until(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)


def test_the_trace_continues_into_the_task_a_request_enqueues(live_db: None, collector: tuple[str, list[Any]]) -> None:
    endpoint, spans = collector
    store: TenantHandle = make_tenant("tracedtask")
    load_taste_store(store)
    # A broker database of their own: the session's worker (no exporter) must not take the task.
    broker = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/13"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
    }
    worker = start_worker("traced", queues="training", concurrency=1, env=env)
    server = start_app_server("tracedtask", workers=1, env=env)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request(
            "POST",
            "/api/v1/models:train",
            body=b'{"algorithm": "popularity"}',
            headers={"Authorization": f"Bearer {store.key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 202, response.read()
        job_id = json.loads(response.read())["job_id"]
        _wait_until(lambda: any(s.kind == CONSUMER for s in spans), 60)
        with tenant_context(store.tenant):
            assert TrainingJob.objects.get(pk=job_id).status == "succeeded"
    finally:
        stop_process(server.process)
        stop_process(worker.process)

    server_span = next(s for s in spans if s.kind == SERVER and "models:train" in s.name)
    producer = next(s for s in spans if s.kind == PRODUCER)
    consumer = next(s for s in spans if s.kind == CONSUMER)
    assert producer.trace_id == server_span.trace_id  # published inside the request
    assert consumer.trace_id == server_span.trace_id  # ... and the worker's run continues it
    assert consumer.parent_span_id == producer.span_id
    assert "train_model" in consumer.name
    # The worker's own spans (its queries) are in the same trace.
    assert any(s.kind == 3 and s.trace_id == server_span.trace_id and s.parent_span_id != b"" for s in spans)

    # The request's log line names the trace it belongs to.
    trace_id = server_span.trace_id.hex()
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("path") == "/api/v1/models:train"]
    assert request_lines, lines[-5:]
    assert request_lines[0]["trace_id"] == trace_id


def test_nothing_is_installed_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from shelfwise.observability import tracing

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.init_tracing("test") is False
    with tracing.span("anything") as current:
        assert not current.is_recording()  # OpenTelemetry's no-op: nothing recorded, nothing sent
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
