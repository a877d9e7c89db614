"""The Python SDK (sdk/python, `shelfwise_client`) against the real app under gunicorn: ingestion
(single rows, and batches chunked past the API's 10,000-row limit with per-row errors in the
caller's positions), training through the job helper, promotion and rollback, every kind of
recommendation, typed errors, and retries — through an in-test proxy that answers 429 or loses
an answer — that repeat the same Idempotency-Key so the API replays instead of storing twice.
Both the sync and the async client. Also: the generated types match docs/openapi.yaml, and the
package type-checks under strict mypy."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import shelfwise_client
from django.db import connection
from shelfwise_client import (
    AsyncShelfwise,
    AuthenticationError,
    ConflictError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    Shelfwise,
    ValidationError,
    customer_token,
)
from shelfwise_client import _core as core
from shelfwise_client.types import EventIn

from tenants.customer_tokens import TokenCheck, token_check
from tenants.models import Tenant
from tenants.services import apikey_create, apikey_signing_secret, tenant_delete
from tests.factories import make_tenant, taste_events
from tests.fixtures.processes import AppServer, WorkerProcess
from tests.helpers import CUSTOMER_TOKEN_VECTOR, ROOT, TenantHandle

SDK = ROOT / "sdk" / "python"


def generator_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_schema", SDK / "scripts" / "generate_schema.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def store(django_db_setup: None, django_db_blocker: Any) -> Iterator[TenantHandle]:
    """A store of this module's own (with its secret key), deleted afterwards."""
    with django_db_blocker.unblock():
        handle = make_tenant("sdkpy")
    yield handle
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")


def api_url(app_server: AppServer) -> str:
    return f"{app_server.url}/api/v1/"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    answered: int = 0
    upstream_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes
    forward_first: bool  # send the request on, then lose the answer and send this instead
    delay: float = 0.0


class FaultProxy:
    """An HTTP proxy in front of the app that answers or breaks chosen requests (one fault per
    matching request, in order), and records every request it sees."""

    HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

            def do_PUT(self) -> None:
                proxy.handle(self)

            def do_PATCH(self) -> None:
                proxy.handle(self)

            def do_DELETE(self) -> None:
                proxy.handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/"

    def inject(
        self,
        method: str,
        path: str,
        status: int,
        *,
        code: str = "",
        headers: dict[str, str] | None = None,
        forward_first: bool = False,
        delay: float = 0.0,
    ) -> None:
        body = json.dumps(
            {
                "type": f"/api/problems/{code}",
                "title": "Injected",
                "status": status,
                "detail": "injected by the test proxy",
                "code": code,
                "request_id": "proxy",
            }
        ).encode()
        with self.lock:
            self.faults.append(Fault(method, path, status, headers or {}, body, forward_first, delay))

    def matching(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        seen = Seen(handler.command, path, {k.lower(): v for k, v in handler.headers.items()}, time.monotonic())
        with self.lock:
            self.seen.append(seen)
            fault = next((f for f in self.faults if (f.method, f.path) == (handler.command, path)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is None or fault.forward_first:
            status, headers, content = self.forward(handler, body)
            seen.upstream_headers = {name.lower(): value for name, value in headers}
        if fault is not None:
            status, headers, content = fault.status, [*fault.headers.items()], fault.body
            headers.append(("Content-Type", "application/problem+json"))
        seen.answered = status
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in self.HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in self.HOP_BY_HOP}
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(app_server: AppServer) -> Iterator[FaultProxy]:
    running = FaultProxy(app_server.url)
    yield running
    running.close()


# --------------------------------------------------------------------------- the build


def test_generated_types_match_the_committed_openapi_schema() -> None:
    """A change to docs/openapi.yaml that changes a generated type fails here until
    `make sdk` regenerates _schema.py (and then mypy, below, checks the client against it)."""
    committed = (SDK / "src" / "shelfwise_client" / "_schema.py").read_text()

    generated = generator_script().generate()

    assert generated == committed, "sdk/python/src/shelfwise_client/_schema.py is stale: run `make sdk`"


def test_the_sdk_type_checks_under_strict_mypy() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_core_plans_chunks_by_rows_and_bytes_and_backs_off_with_full_jitter() -> None:
    by_rows = core.plan_chunks([10] * 10_050, max_rows=10_000, max_bytes=10**9)
    by_bytes = core.plan_chunks([10, 10, 10, 10, 500], max_rows=100, max_bytes=25)
    policy = core.RetryPolicy(max_retries=5, backoff_initial=0.5, backoff_max=2.0)
    delays = [[policy.backoff(attempt) for _ in range(200)] for attempt in range(5)]
    moved = core.reindex([{"index": 3, "field": "events.3.type", "code": "invalid", "message": "m"}], 10_000, "events")

    assert [(r.start, r.stop) for r in by_rows] == [(0, 10_000), (10_000, 10_050)]
    assert [(r.start, r.stop) for r in by_bytes] == [(0, 2), (2, 4), (4, 5)]  # a big row alone
    assert all(0 <= d <= min(2.0, 0.5 * 2**n) for n, ds in enumerate(delays) for d in ds)
    assert max(delays[0]) > 0.25  # jittered, not fixed
    assert min(delays[0]) < 0.25
    assert moved == [{"index": 10_003, "field": "events.10003.type", "code": "invalid", "message": "m"}]
    assert (
        f"shelfwise-python/{shelfwise_client.__version__} (python {sys.version_info[0]}.{sys.version_info[1]})"
        == core.USER_AGENT
    )
    assert core.normalize_base_url("http://h:1") == core.normalize_base_url("http://h:1/api/v1/") == "http://h:1/api/v1"


def test_customer_tokens_are_the_ones_the_server_accepts(store: TenantHandle, live_db: None) -> None:
    """``customer_token`` (the SDK's own code, no server import) reproduces the server's
    known-answer vector, and the server accepts what it mints for a real public key."""
    vector = CUSTOMER_TOKEN_VECTOR
    minted = customer_token(
        vector["secret"], vector["key_id"], vector["customer_id"], ttl=3600, now=vector["expiry"] - 3600
    )
    row, raw = apikey_create(tenant=store.tenant, name="web", kind="public", actor="test")
    secret = apikey_signing_secret(api_key=row, actor="test")
    for form in (raw, raw.rsplit("_", 1)[0], row.pk):  # the key, its prefix, its id
        token = customer_token(secret, form, "shopper-9", ttl=600)
        check = token_check(token, key_id=row.pk, secret_hash=row.secret_hash, customer_id="shopper-9")
        assert check == TokenCheck.VALID, form

    assert minted == vector["token"]
    for bad in (
        {"signing_secret": "not-a-secret"},
        {"public_key": "sk_live_abcdefghijkl_x"},
        {"ttl": 0},
        {"ttl": 8 * 86400},
        {"customer_id": ""},
    ):
        arguments = {"signing_secret": secret, "public_key": raw, "customer_id": "c1", "ttl": 60} | bad
        with pytest.raises(ValueError, match=r"."):
            customer_token(
                str(arguments["signing_secret"]),
                str(arguments["public_key"]),
                str(arguments["customer_id"]),
                ttl=int(arguments["ttl"]),
            )


# --------------------------------------------------------------------------- ingestion and errors


@pytest.mark.slow
def test_items_customers_and_events_single_and_batch(app_server: AppServer, store: TenantHandle) -> None:
    with Shelfwise(store.key, base_url=api_url(app_server)) as client:
        mug = client.items.upsert({"item_id": "mug%1", "title": "Mug", "categories": ["kitchen"], "price": 4.50})
        cup = client.items.upsert({"item_id": "cup-1", "title": "Cup", "price": Decimal("3.10")})  # type: ignore[typeddict-item]
        items = client.items.batch(
            [
                {"item_id": "plate-1", "title": "Plate", "price": 7.25, "currency": "GBP"},
                {"item_id": "bad id", "title": "Spaces are not allowed"},
                {"item_id": "bowl-1", "title": "Bowl", "in_stock": False},
            ]
        )
        listed = client.items.list(category="kitchen")
        shopper = client.customers.upsert({"customer_id": "shopper-1", "properties": {"tier": "gold"}})
        customers = client.customers.batch(
            [{"customer_id": "shopper-2"}, {"customer_id": "shopper-3", "anonymous": True}]
        )
        tracked = client.events.track({"customer_id": "shopper-1", "item_id": "mug%1", "type": "view"})
        history = client.customers.events("shopper-1")

        assert (mug["item_id"], mug["price"], client.items.get("mug%1")["title"]) == ("mug%1", 4.5, "Mug")
        assert cup["price"] == 3.1  # a Decimal is sent as a JSON number
        assert {k: items[k] for k in ("received", "created", "rejected")} == {
            "received": 3,
            "created": 2,
            "rejected": 1,
        }
        assert [(e["index"], e["field"]) for e in items["errors"]] == [(1, "item_id")]
        assert [item["item_id"] for item in listed["results"]] == ["mug%1"]
        assert shopper["properties"] == {"tier": "gold"}
        assert (customers["created"], client.customers.get("shopper-3")["anonymous"]) == (2, True)
        assert (tracked["stored"], tracked["received"]) == (1, 1)
        assert [(e["item_id"], e["type"]) for e in history["results"]] == [("mug%1", "view")]


@pytest.mark.slow
def test_a_chunk_with_no_acceptable_row_is_merged_and_an_all_bad_batch_raises(
    app_server: AppServer, store: TenantHandle
) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = Shelfwise(store.key, base_url=api_url(app_server), http_client=http, max_batch_rows=3)
    good = {"customer_id": "chunky", "item_id": "i-1", "type": "view"}
    bad = {"customer_id": "chunky", "item_id": "i-1", "type": "Not A Type"}

    mixed = client.events.batch([good, good, good, bad, bad])  # the second request is refused whole
    with pytest.raises(ValidationError) as refused:
        client.events.batch([bad, bad, bad, bad])

    assert len(sent) == 4
    assert {k: mixed[k] for k in ("received", "stored", "rejected")} == {"received": 5, "stored": 3, "rejected": 2}
    assert [(e["index"], e["field"]) for e in mixed["errors"]] == [(3, "type"), (4, "type")]
    assert (refused.value.status, refused.value.code) == (400, "validation_error")
    assert [e.get("index") for e in refused.value.errors] == [0, 1, 2, 3]
    http.close()


@pytest.mark.slow
def test_errors_are_typed_with_the_problems_fields(app_server: AppServer, store: TenantHandle) -> None:
    bad_key = store.key[:-4] + "xxxx"
    with (
        Shelfwise(bad_key, base_url=api_url(app_server)) as stranger,
        Shelfwise(store.key, base_url=api_url(app_server)) as client,
    ):
        with pytest.raises(AuthenticationError) as unauthenticated:
            stranger.whoami()
        with pytest.raises(NotFoundError) as missing:
            client.items.get("no-such-item")
        with pytest.raises(ValidationError) as invalid:
            client.events.track({"customer_id": "c", "item_id": "i", "type": "rating"})  # no value
        with pytest.raises(ConflictError) as refused:
            client.models.rollback()

    assert (unauthenticated.value.status, unauthenticated.value.code) == (401, "invalid_api_key")
    assert unauthenticated.value.request_id
    assert unauthenticated.value.title
    assert unauthenticated.value.detail
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert (invalid.value.status, invalid.value.code) == (400, "validation_error")
    assert [(e.get("index"), e["field"]) for e in invalid.value.errors] == [(0, "value")]
    assert (refused.value.status, refused.value.code) == (409, "promotion_refused")
    assert isinstance(refused.value, shelfwise_client.ShelfwiseError)


# --------------------------------------------------------------------------- training and recommendations


@pytest.mark.slow
def test_chunked_ingest_train_promote_rollback_and_recommend(
    app_server: AppServer, store: TenantHandle, celery_worker: WorkerProcess
) -> None:
    events: list[EventIn] = taste_events(customers=420)  # 10,080 events
    bad: EventIn = {"customer_id": "c0", "item_id": "i0", "type": "Not A Type"}
    events.insert(7, bad)
    events.insert(10_003, bad)
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = Shelfwise(store.key, base_url=api_url(app_server), http_client=http)

    ingested = client.events.batch(events)
    batches_sent = [r for r in sent if r.url.path == "/api/v1/events"]

    assert len(batches_sent) == 2  # 10,000 + 82 rows, each with its own Idempotency-Key
    assert len({r.headers["Idempotency-Key"] for r in batches_sent}) == 2
    assert {k: v for k, v in ingested.items() if k != "errors"} == {
        "received": 10_082,
        "stored": 10_080,
        "duplicates": 0,
        "rejected": 2,
        "customers_created": 420,
        "items_created": 96,
        "errors_truncated": False,
    }
    assert [(e["index"], e["field"], e["code"]) for e in ingested["errors"]] == [
        (7, "type", "invalid_format"),
        (10_003, "type", "invalid_format"),
    ]

    first = client.jobs.wait(client.models.train(), timeout=240, poll_interval=0.3)
    baseline = client.jobs.wait(client.models.train(algorithm="popularity")["job_id"], timeout=240, poll_interval=0.3)
    promoted = client.models.promote(2, reason="try the baseline")
    statuses = {v["version"]: v.get("status") for v in client.models.list()}
    rolled_back = client.models.rollback(reason="back to ALS")

    assert (first.get("status"), first.get("version"), baseline.get("status")) == ("succeeded", 1, "succeeded")
    assert client.jobs.get(first["job_id"]).get("progress") == 100
    assert promoted.get("status") == "active"
    assert statuses == {1: "retired", 2: "active"}
    assert (rolled_back["version"], client.models.get(1).get("status")) == (1, "active")

    # Every web process (the server has two) follows the rollback from its next request (the
    # serving stamp), without waiting for SHELFWISE_SERVING_CONFIG_SECONDS.
    personal = client.recommendations.for_customer("c5", count=5, fields=["title"])
    similar = client.recommendations.similar("i0", count=5, filters={"in_stock": True})
    popular = client.recommendations.popular(count=3)
    trending = client.recommendations.trending(count=3, exclude=[popular["items"][0]["item_id"]])
    session = client.recommendations.session(["i0", "i6", "i12"], count=4)
    requests = [{"customer_id": f"c{n}", "count": 2} for n in range(150)]
    sent.clear()
    batch = client.recommendations.batch(requests)

    assert (personal["strategy"], personal["model_version"], len(personal["items"])) == ("model", 1, 5)
    assert all("title" in item for item in personal["items"])  # fields=["title"]
    assert (similar["strategy"], len(similar["items"])) == ("model", 5)
    assert "i0" not in {item["item_id"] for item in similar["items"]}
    assert len(popular["items"]) == 3
    assert popular["items"][0]["item_id"] not in {item["item_id"] for item in trending["items"]}
    assert len(session["items"]) == 4
    assert not {"i0", "i6", "i12"} & {item["item_id"] for item in session["items"]}
    assert len(sent) == 2  # 100 + 50: the API's limit per request
    assert [result["customer_id"] for result in batch["results"]] == [f"c{n}" for n in range(150)]
    assert all(len(result["items"]) == 2 for result in batch["results"])
    http.close()


@pytest.mark.slow
def test_the_async_client(app_server: AppServer, store: TenantHandle) -> None:
    async def scenario() -> dict[str, Any]:
        async with AsyncShelfwise(store.key, base_url=api_url(app_server)) as client:
            who = await client.whoami()
            items = await client.items.batch([{"item_id": f"a-{n}", "title": f"A {n}"} for n in range(5)])
            events = await client.events.batch(
                [{"customer_id": f"ac-{n % 3}", "item_id": f"a-{n}", "type": "purchase"} for n in range(5)]
            )
            popular, personal, missing = await asyncio.gather(
                client.recommendations.popular(count=2),
                client.recommendations.for_customer("ac-1", count=2),
                client.customers.get("nobody"),
                return_exceptions=True,
            )
            scenario = await client.scenarios.put("home", name="Home page", default_source={"kind": "trending"})
            experiment = await client.experiments.create(
                name="Trending or popular",
                scenario="home",
                variants=[
                    {"key": "trending", "share": 50, "source": {"kind": "trending"}},
                    {"key": "popular", "share": 50, "source": {"kind": "popularity"}},
                ],
            )
            started = await client.experiments.start(experiment["experiment_id"])
            results = await client.experiments.results(experiment["experiment_id"])
            stopped = await client.experiments.stop(experiment["experiment_id"])
            return {
                "who": who,
                "items": items,
                "events": events,
                "popular": popular,
                "personal": personal,
                "missing": missing,
                "scenario": scenario,
                "statuses": [experiment.get("status"), started.get("status"), stopped.get("status")],
                "results": results,
            }

    done = asyncio.run(scenario())

    assert done["who"]["tenant"] == store.slug
    assert (done["items"]["created"], done["events"]["stored"]) == (5, 5)
    assert len(done["popular"]["items"]) == 2
    assert done["personal"]["scenario"] == "default"
    assert isinstance(done["missing"], NotFoundError)
    assert done["scenario"]["default_source"]["kind"] == "trending"
    assert done["statuses"] == ["draft", "running", "stopped"]
    assert isinstance(done["results"], dict)


# --------------------------------------------------------------------------- retries


@pytest.mark.slow
def test_a_429_is_retried_after_retry_after_with_the_same_idempotency_key(
    proxy: FaultProxy, store: TenantHandle
) -> None:
    proxy.inject("POST", "/api/v1/events", 429, code="rate_limited", headers={"Retry-After": "1"})
    event: EventIn = {"event_id": "retry-429", "customer_id": "retrier", "item_id": "r-1", "type": "view"}

    with Shelfwise(store.key, base_url=proxy.url) as client:
        result = client.events.track(event)
        history = client.customers.events("retrier")
    attempts = proxy.matching("POST", "/api/v1/events")

    assert [a.answered for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert re.fullmatch(r"[0-9a-f-]{36}", attempts[0].headers["idempotency-key"])
    assert (
        attempts[0].headers["user-agent"]
        == f"shelfwise-python/0.1.0 (python {sys.version_info[0]}.{sys.version_info[1]})"
    )
    assert (result["stored"], result["duplicates"]) == (1, 0)
    assert [e["event_id"] for e in history["results"]] == ["retry-429"]


@pytest.mark.slow
def test_without_retries_a_429_is_a_rate_limited_error_with_retry_after(proxy: FaultProxy, store: TenantHandle) -> None:
    proxy.inject("GET", "/api/v1/whoami", 429, code="rate_limited", headers={"Retry-After": "7"})

    with Shelfwise(store.key, base_url=proxy.url, max_retries=0) as client, pytest.raises(RateLimitedError) as limited:
        client.whoami()

    assert (limited.value.status, limited.value.code, limited.value.retry_after) == (429, "rate_limited", 7.0)
    assert len(proxy.seen) == 1


@pytest.mark.slow
def test_a_lost_answer_then_503_is_replayed_not_repeated_async(proxy: FaultProxy, store: TenantHandle) -> None:
    # The first attempt reaches the app and is stored, but its answer is replaced by a 503; the
    # retry carries the same Idempotency-Key, so the app replays the first answer. The event has
    # no event_id: only the key keeps it from being stored twice.
    proxy.inject("POST", "/api/v1/events", 503, code="service_unavailable", forward_first=True)

    async def send() -> tuple[Any, Any]:
        async with AsyncShelfwise(store.key, base_url=proxy.url, backoff_initial=0.05) as client:
            result = await client.events.track({"customer_id": "lost-answer", "item_id": "la-1", "type": "purchase"})
            return result, await client.customers.events("lost-answer")

    result, history = asyncio.run(send())
    attempts = proxy.matching("POST", "/api/v1/events")

    assert [a.answered for a in attempts] == [503, 200]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert attempts[1].upstream_headers.get("idempotent-replayed") == "true"
    assert result["stored"] == 1
    assert len(history["results"]) == 1


@pytest.mark.slow
def test_timeouts_and_refused_connections_are_network_errors(proxy: FaultProxy, store: TenantHandle) -> None:
    proxy.inject("GET", "/api/v1/whoami", 200, delay=1.5)
    closed = httpx.URL(proxy.url).copy_with(port=1)

    with (
        Shelfwise(store.key, base_url=proxy.url, timeout=0.3, max_retries=0) as slow,
        pytest.raises(RequestTimeoutError),
    ):
        slow.whoami()
    with (
        Shelfwise(store.key, base_url=str(closed), max_retries=2, backoff_initial=0.01) as nowhere,
        pytest.raises(NetworkError) as refused,
    ):
        nowhere.whoami()

    assert not isinstance(refused.value, RequestTimeoutError)
