"""Probes, logging hygiene, settings safety and tenant lifecycle."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from shelfwise.datastores.redis_client import tenant_key
from shelfwise.observability.logs import ContextFilter, JsonFormatter, redact_text
from tenants.models import ApiKey, AuditLogEntry, Domain, Tenant
from tenants.services import tenant_delete
from tests.factories import make_tenant
from tests.helpers import ROOT, TenantHandle


@pytest.mark.django_db
def test_healthz_is_public_and_has_no_tenant_data(client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_redis_broker_and_migrations(client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_probes_answer_any_host_the_orchestrator_calls(client) -> None:
    # Kubernetes probes by pod IP, the image's HEALTHCHECK by 127.0.0.1: not in ALLOWED_HOSTS.
    for path in ("/healthz", "/readyz"):
        assert client.get(path, HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/api/v1/whoami", HTTP_HOST="10.1.2.3:8000").status_code == 400  # only the probes


@pytest.mark.django_db
def test_metrics_scrapes_by_ip_with_the_token(client, settings) -> None:
    settings.SHELFWISE_METRICS_TOKEN = "scrape-token-for-this-test"
    by_ip = {"HTTP_HOST": "10.1.2.3:8000"}

    assert client.get("/metrics", **by_ip, HTTP_AUTHORIZATION="Bearer scrape-token-for-this-test").status_code == 200
    assert client.get("/metrics", **by_ip, HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", **by_ip).status_code == 404


@pytest.fixture
def json_log() -> io.StringIO:
    """Capture what the JSON handler would write for the shelfwise and django loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


@pytest.mark.django_db
def test_request_log_line_is_json_with_request_id_and_tenant_and_no_key(
    json_log: io.StringIO, tenant_a: TenantHandle
) -> None:
    secret = tenant_a.key.rsplit("_", 1)[1]

    tenant_a.client().get("/api/v1/whoami", HTTP_X_REQUEST_ID="trace-me-123456")
    tenant_a.client(tenant_a.key + "x").get("/api/v1/whoami")  # a wrong key is not logged either
    logging.getLogger("shelfwise.test").warning("oops %s", f"Bearer {tenant_a.key}")  # nor a careless message

    output = json_log.getvalue()
    assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    request_lines = [line for line in lines if line["logger"] == "shelfwise.request"]
    assert request_lines[0]["request_id"] == "trace-me-123456"
    assert request_lines[0]["tenant"] == tenant_a.slug
    assert request_lines[0]["status"] == 200
    assert request_lines[0]["route"] == "api/v1/whoami"
    assert {"timestamp", "level", "duration_ms", "method", "path"} <= set(request_lines[0])
    assert request_lines[1]["status"] == 401


def test_redaction_keeps_prefix_and_drops_secret() -> None:
    key = "sk_live_abcdefghijkl_" + "Z" * 40

    assert redact_text(f"key={key}") == "key=sk_live_abcdefghijkl_[redacted]"
    assert "Z" * 10 not in redact_text(f"Authorization: Bearer {key}")


def _settings_probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_settings_refuse_to_start_without_servers(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["SHELFWISE_DEV_STATE"] = str(tmp_path / "missing.json")

    result = _settings_probe(env)

    assert result.returncode != 0
    assert "DATABASE_URL is not set and no dev servers are running" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must list"),
    ],
)
def test_production_settings_refuse_unsafe_config(overrides: dict[str, str], message: str) -> None:
    env = {
        **os.environ,
        "SHELFWISE_ENV": "production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "api.example.com",
        "DEBUG": "false",
        **overrides,
    }

    result = _settings_probe(env)

    assert result.returncode != 0
    assert message in result.stderr


def test_settings_never_default_to_the_standard_ports() -> None:
    assert settings.DATABASES["default"]["PORT"] not in (5432, "5432")
    assert ":6379" not in settings.REDIS_URL


@pytest.mark.django_db
def test_tenant_create_command_prints_key_once(capsys) -> None:
    call_command("tenant_create", "cli-store", "--name", "CLI Store", "--plan", "free", "--owner-email", "o@cli.test")

    out = capsys.readouterr().out
    tenant = Tenant.objects.get(slug="cli-store")
    assert tenant.plan.code == "free"
    assert Domain.objects.get(tenant=tenant).domain == f"cli-store.{settings.SHELFWISE_BASE_DOMAIN}"
    raw = next(line.split(": ", 1)[1].strip() for line in out.splitlines() if "API key:" in line)
    assert raw.startswith("sk_live_")
    assert tenant.memberships.get().role == "owner"
    assert AuditLogEntry.objects.filter(action="tenant.create", tenant_slug="cli-store").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Slug", "--name", "x"], "invalid slug"),
        (["ok-slug", "--name", "x", "--plan", "gold"], "unknown plan"),
    ],
)
def test_tenant_create_command_validates(args: list[str], message: str) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("tenant_create", *args)


@pytest.mark.django_db
def test_apikey_commands_create_list_and_revoke(tenant_a: TenantHandle, capsys) -> None:
    call_command("apikey_create", tenant_a.slug, "--name", "from cli", "--kind", "public")
    printed = capsys.readouterr().out.strip().splitlines()
    raw = printed[-1]
    assert raw.startswith("pk_live_")
    assert printed[-2].rsplit(" ", 1)[-1].startswith("cts_")  # the public key's signing secret
    assert tenant_a.client(raw).get("/api/v1/whoami").status_code == 200

    call_command("apikey_revoke", raw.rsplit("_", 1)[0])

    assert tenant_a.client(raw).get("/api/v1/whoami").status_code == 401
    call_command("apikey_list", tenant_a.slug)
    assert "revoked" in capsys.readouterr().out


def test_deleting_a_tenant_drops_schema_keys_and_redis(live_db: None) -> None:
    handle = make_tenant("doomed")
    tenant = handle.tenant
    assert handle.client().get("/api/v1/whoami").status_code == 200
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(tenant_key(tenant.pk, "features", "x"), "1")

    tenant_delete(tenant=tenant, actor="test")

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [tenant.schema_name])
        assert cursor.fetchone() is None
    assert not ApiKey.objects.filter(tenant_id=tenant.pk).exists()
    assert not Domain.objects.filter(tenant_id=tenant.pk).exists()
    assert list(client.scan_iter(match=f"sw:{tenant.pk}:*")) == []
    assert handle.client().get("/api/v1/whoami").status_code == 401
    assert AuditLogEntry.objects.filter(action="tenant.delete", tenant_slug=tenant.slug).exists()


def test_gunicorn_recycles_preloaded_workers_without_hanging(django_db_setup: None) -> None:
    """Workers are forked from a master that loaded the app (WEB_PRELOAD) and replaced after
    WEB_MAX_REQUESTS. A native library that starts threads at import (ONNX Runtime does) makes
    a forked worker hang at exit, and the site stops answering: nothing like that is imported
    by the web app."""
    import urllib.request

    from tests.fixtures.processes import start_app_server, stop_process

    server = start_app_server("recycle", workers=1, env={"WEB_MAX_REQUESTS": "3", "WEB_PRELOAD": "true"})
    try:
        for _ in range(12):  # four generations of workers
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:  # noqa: S310
                assert response.status == 200
        log = server.log.read_text(errors="replace")
        assert log.count("Booting worker") >= 4
        assert "WORKER TIMEOUT" not in log
    finally:
        stop_process(server.process)
    check = subprocess.run(
        [sys.executable, "-c", ("import sys, shelfwise.wsgi; from django.urls import get_resolver; "
                                "get_resolver().url_patterns; "
                                "print(bool({'onnxruntime', 'faiss'} & sys.modules.keys()))")],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shelfwise.settings"},
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert check.stdout.strip() == "False"
