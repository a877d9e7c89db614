"""Test fixtures: real PostgreSQL and Redis (throw-away servers from `make test`), real tenants,
real Celery workers and a real gunicorn where behaviour depends on them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from shelfwise.datastores import redis_client as shelfwise_redis
from shelfwise.dev.servers import free_port, port_open
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_delete

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".dev" / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("SHELFWISE_EPHEMERAL") != "1" and os.environ.get("SHELFWISE_TEST_ALLOW_SHARED") != "1":
        pytest.exit(
            "Tests flush Redis and start workers on the broker: run them with `make test` "
            "(throw-away servers), or set SHELFWISE_TEST_ALLOW_SHARED=1 if you mean it.",
            returncode=2,
        )


# --------------------------------------------------------------------------- database


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: Any) -> Iterator[None]:
    """Always create and migrate the test database, also for runs whose only database tests
    use committed data (``live_db``), which pytest-django's default would not set up."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    assert connection.settings_dict["NAME"].startswith("test_")
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        teardown_databases(config, verbosity=0)


# --------------------------------------------------------------------------- tenants


@dataclass
class TenantHandle:
    """A committed tenant plus its raw default secret key."""

    tenant: Tenant
    key: str

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def client(self, key: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key or self.key}")
        return client


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tenant(prefix: str = "t", *, plan: str = "pro", **kwargs: Any) -> TenantHandle:
    connection.set_schema_to_public()
    created = tenant_create(slug=unique_slug(prefix), name=f"Store {prefix}", plan_code=plan, actor="test", **kwargs)
    return TenantHandle(created.tenant, created.raw_key)


@pytest.fixture(scope="session")
def tenant_a(django_db_setup: None, django_db_blocker: Any) -> TenantHandle:
    """A tenant shared by the session (committed); tests must not change its settings."""
    with django_db_blocker.unblock():
        return make_tenant("alpha")


@pytest.fixture(scope="session")
def tenant_b(django_db_setup: None, django_db_blocker: Any) -> TenantHandle:
    with django_db_blocker.unblock():
        return make_tenant("beta")


@pytest.fixture
def live_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Committed database access (no wrapping transaction): for tests whose data must be seen
    by other processes (workers, gunicorn). Such tests create their own tenants."""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


@pytest.fixture
def fresh_tenant(live_db: None) -> Iterator[TenantHandle]:
    """A committed tenant of its own, deleted (schema dropped) afterwards."""
    handle = make_tenant("fresh")
    yield handle
    connection.set_schema_to_public()
    if Tenant.objects.filter(pk=handle.tenant.pk).exists():
        tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")


@pytest.fixture(autouse=True)
def _reset_context() -> Iterator[None]:
    """Each test starts in the public schema with a clean app Redis and a closed circuit."""
    shelfwise_redis.reset_circuit()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield
    connection.set_schema_to_public()
    shelfwise_redis.reset_circuit()


def tables_containing(text: str) -> list[str]:
    """Every table, in every schema, with a row whose text form contains ``text``."""
    from psycopg import sql

    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        )
        for schema, table in cursor.fetchall():
            query = sql.SQL("SELECT count(*) FROM {}.{} t WHERE t::text LIKE %s").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            cursor.execute(query.as_string(), [f"%{text}%"])
            if cursor.fetchone()[0]:
                hits.append(f"{schema}.{table}")
    return hits


# --------------------------------------------------------------------------- processes


METRICS_DIR = Path(tempfile.gettempdir()) / f"shelfwise-test-metrics-{os.getpid()}"
METRICS_TOKEN = "test-metrics-token"


def child_env() -> dict[str, str]:
    """Environment that points a child process at the test database and servers."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SHELFWISE_ENV": "test",
        "PYTHONUNBUFFERED": "1",
        # The session's gunicorn and Celery processes share one Prometheus directory, as the
        # processes of one machine do (make run, a container).
        "PROMETHEUS_MULTIPROC_DIR": str(METRICS_DIR),
        "SHELFWISE_METRICS_TOKEN": METRICS_TOKEN,
        "SHELFWISE_METRICS_STATE_SECONDS": "0",  # scrape-time gauges read afresh
    }


def _wait_for(predicate: Any, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} did not become ready in {timeout}s\n{tail}")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(
    name: str,
    queues: str = "default,training,scoring",
    concurrency: int = 2,
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> WorkerProcess:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"worker-{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shelfwise",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "--pool",
            "prefork",
            "-n",
            f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
            *extra_args,
        ],
        env={**child_env(), **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    from shelfwise.celery import app

    own_broker = "CELERY_BROKER_URL" in (env or {})  # (Celery prefers that variable to any app's setting)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if own_broker:  # not reachable by this process's pings: its own "ready" line
            return b" ready." in log.read_bytes()
        replies = app.control.ping(timeout=0.5)
        return any(name in next(iter(reply)) for reply in replies)

    try:
        _wait_for(ready, 60, "celery worker", log)
    except BaseException:
        stop_process(process)
        raise
    return WorkerProcess(process, log)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None) -> Iterator[WorkerProcess]:
    """A real Celery worker process (all queues) against the test database."""
    worker = start_worker("session")
    yield worker
    stop_process(worker.process)


@dataclass
class AppServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_app_server(
    name: str = "app", workers: int = 2, env: dict[str, str] | None = None, app: str = "shelfwise.wsgi:application"
) -> AppServer:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = ARTIFACTS / f"gunicorn-{name}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "-c",
            str(ROOT / "shelfwise" / "server" / "gunicorn_conf.py"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
        ],
        env={**child_env(), **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        return port_open(port)

    try:
        _wait_for(ready, 60, "gunicorn", log)
    except BaseException:
        stop_process(process)
        raise
    return AppServer(f"http://127.0.0.1:{port}", port, process, log)


@pytest.fixture(scope="session")
def app_server(django_db_setup: None) -> Iterator[AppServer]:
    """The app under gunicorn (as `make run` serves it) against the test database."""
    server = start_app_server("session")
    yield server
    stop_process(server.process)


# --------------------------------------------------------------------------- browser (dashboard)

CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machines have no internet: without these Chromium keeps trying to reach Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium, installed here (apt-get, as root) when missing: Playwright's own browser
    download is not available on these machines."""
    import shutil

    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-qq", "chromium"]
        if subprocess.run(install, capture_output=True, check=False, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False, timeout=600)
            subprocess.run(install, capture_output=True, check=False, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("the dashboard tests need Chromium: apt-get install chromium (Debian)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's event loop runs only while a module of browser
    tests does, so the other tests' database access is not affected by it."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
    connections.close_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; a screenshot is saved when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    # ORM calls made while Playwright's loop is active get a connection of their own (Django's
    # connections are per context); close it, or the test database cannot be dropped.
    from django.db import connections

    connections.close_all()
