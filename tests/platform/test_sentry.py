"""Error reports reach Sentry's transport (an in-test HTTP endpoint standing in for Sentry):
a Celery task that fails after its retries is reported once, with release, environment and the
tenant tag, and without key secrets."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from shelfwise.dev.servers import free_port
from tests.fixtures.processes import start_worker, stop_process
from tests.helpers import TenantHandle

pytestmark = pytest.mark.slow

SECRET = "QpZ8rT3vW9xY2aB5cD7eF1gH4jK6mN0s"  # the secret part of a key that must not leave
KEY = f"sk_live_abcdefgh1234_{SECRET}"
ADDRESS = "17 Quietwater Lane"  # a shopper's property, passed to the task


class _Collector(BaseHTTPRequestHandler):
    envelopes: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        type(self).envelopes.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def sentry_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    envelopes: list[bytes] = []
    handler = type("Collector", (_Collector,), {"envelopes": envelopes})
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey@127.0.0.1:{port}/1", envelopes
    server.shutdown()


def events_in(envelopes: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for envelope in list(envelopes):
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_a_failed_task_is_reported_once_with_its_tenant_and_no_secret(
    fresh_tenant: TenantHandle, sentry_endpoint: tuple[str, list[bytes]]
) -> None:
    dsn, envelopes = sentry_endpoint
    worker = start_worker(
        "sentry",
        queues="sentrytest",
        concurrency=1,
        env={"SENTRY_DSN": dsn, "SENTRY_RELEASE": "test-release", "SENTRY_ENVIRONMENT": "ci"},
        extra_args=("--include", "tests.probes.sentry_tasks"),
    )
    try:
        from tests.probes.sentry_tasks import always_failing

        with tenant_context(fresh_tenant.tenant):
            result = always_failing.apply_async(args=(KEY, {"address": ADDRESS}), queue="sentrytest")
        with pytest.raises(Exception, match="could not reach the store"):
            result.get(timeout=60, propagate=True)
        deadline = time.monotonic() + 20
        while not events_in(envelopes) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # a report per retry would have arrived by now
    finally:
        stop_process(worker.process)

    assert len(re.findall(r"always_failing\[[0-9a-f-]+\] retry", worker.log_text())) == 2  # it did retry, twice
    events = events_in(envelopes)
    assert len(events) == 1, [e.get("exception") for e in events]  # two retries, one report
    event = events[0]
    assert event["tags"]["tenant"] == fresh_tenant.slug
    assert event["tags"]["request_id"] == result.id  # enqueued outside a request: the task's id
    assert event["release"] == "test-release"
    assert event["environment"] == "ci"
    assert event["exception"]["values"][-1]["type"] == "ConnectionError"
    raw = b"".join(envelopes)
    assert SECRET.encode() not in raw
    assert b"sk_live_abcdefgh1234" in raw  # the key's identifying prefix stays, for support
    assert ADDRESS.encode() not in raw  # shoppers' properties are scrubbed from the task's arguments
    assert "celery-job" in event.get("extra", {})  # the arguments were there to scrub
