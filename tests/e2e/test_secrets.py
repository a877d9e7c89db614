"""Secrets stay secret: API keys, passwords and one-time link tokens, through a store's life.

A store is created with the real services; its owner logs in to the dashboard, creates, uses and
rotates keys, invites a colleague who joins, and resets a password; the keys are used on the API,
also wrongly (a forged key, a key without ``Bearer``, a key in a body field or the query string).
Then every place a secret could end up is searched for the clear values: every text-like column of
every table in every schema, the decoded sessions, Redis (app and broker), the logs (every logger
at DEBUG, SQL with its parameters included) and the Django admin pages of those keys and users.
Each search also looks for something that *is* meant to be there (a key's hash, an item id, a
key's prefix), so an empty result means the search worked, not that it looked nowhere.

Settings: secrets come from the environment only; the source holds no secret-looking literal but
the documented development default, which production refuses.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from psycopg import sql
from rest_framework.test import APIClient

from shelfwise.observability.logs import ContextFilter, JsonFormatter
from tenants.models import ApiKey, AuditLogEntry, Invitation, Membership, Tenant
from tenants.services import tenant_create, tenant_delete
from tests.factories import unique_slug
from tests.helpers import ROOT, host

KEY_RE = re.compile(r"\b(?:sk|pk)_live_[a-z2-7]{12}_[A-Za-z0-9]{40}\b")
LINK_RE = re.compile(r"https?://[^/\s]+(/dashboard/\S+/)")
WHOAMI = "/api/v1/whoami"
ITEM_ID = "leak-mug"


def secret_of(key: str) -> str:
    """The secret part of ``<kind>_live_<id>_<secret>`` (the id and prefix are not secret)."""
    return key.rsplit("_", 1)[1]


@dataclass
class LeakRun:
    """A store taken through its life, and where its secrets could have gone."""

    tenant: Tenant
    owner_email: str
    secrets: dict[str, str] = field(default_factory=dict)  # what -> clear value
    link_tokens: dict[str, str] = field(default_factory=dict)  # one-time tokens e-mailed in links
    keys: dict[str, str] = field(default_factory=dict)  # what -> full key (prefixes are shown)
    user_ids: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    log: str = ""
    redis_values: list[tuple[str, bytes]] = field(default_factory=list)


# --------------------------------------------------------------------------- capture


@contextmanager
def every_log_line() -> Iterator[io.StringIO]:
    """Every logger at DEBUG into the production JSON formatter, SQL with its parameters included:
    a secret in a debug line is one ``LOG_LEVEL=DEBUG`` away from the log store (django.request
    too: its records carry the request object, written redacted)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    loggers = [root, *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    levels = {lg: lg.level for lg in loggers}
    detached = [lg for lg in loggers if not lg.propagate]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    for lg in [root, *detached]:
        lg.addHandler(handler)
    connection.force_debug_cursor = True
    try:
        yield stream
    finally:
        connection.force_debug_cursor = False
        for lg in [root, *detached]:
            lg.removeHandler(handler)
        for lg, level in levels.items():
            lg.setLevel(level)


def redis_values() -> list[tuple[str, bytes]]:
    """Every key and value (members, fields, scores) in the app's and the broker's Redis."""
    out: list[tuple[str, bytes]] = []
    for url in dict.fromkeys([settings.REDIS_URL, settings.CELERY_BROKER_URL]):
        client = redis.Redis.from_url(url)
        for name in client.scan_iter(count=1000):
            kind = client.type(name).decode()
            parts: list[Any] = [name]
            if kind == "string":
                parts.append(client.get(name))
            elif kind == "hash":
                parts += [b for pair in client.hgetall(name).items() for b in pair]
            elif kind == "list":
                parts += client.lrange(name, 0, -1)
            elif kind == "set":
                parts += client.smembers(name)
            elif kind == "zset":
                parts += [member for member, _score in client.zrange(name, 0, -1, withscores=True)]
            elif kind == "stream":
                parts += [repr(entry).encode() for entry in client.xrange(name)]
            out.append((name.decode(errors="replace"), b"\0".join(p for p in parts if p is not None)))
    return out


# --------------------------------------------------------------------------- the store's life


def api(key: str | None = None) -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def expect(run: LeakRun, response: Any, status: int) -> Any:
    run.statuses.append(response.status_code)
    assert response.status_code == status, response.content[:500]
    return response


def dashboard_key(run: LeakRun, owner: Client, name: str, kind: str) -> str:
    page = expect(run, owner.post("/dashboard/keys/", {"name": name, "kind": kind}), 200)
    found = KEY_RE.search(page.content.decode())
    assert found is not None, "the new key is shown once, on its creation page"
    listing = expect(run, owner.get("/dashboard/keys/"), 200)
    assert secret_of(found[0]).encode() not in listing.content  # and only there
    return found[0]


def emailed_link() -> str:
    found = LINK_RE.search(str(mail.outbox[-1].body))
    assert found is not None, mail.outbox[-1].body
    return found[1]


def use_the_api(run: LeakRun) -> None:
    """Keys at work, and keys where they do not belong (none of it may answer 500)."""
    server, public = run.keys["dashboard secret key"], run.keys["dashboard public key"]
    item = {"title": "Mug", "price": 9.5, "currency": "GBP", "categories": ["kitchen"]}
    expect(run, api(run.keys["default key"]).get(WHOAMI), 200)
    expect(run, api(server).put(f"/api/v1/items/{ITEM_ID}", item, format="json"), 201)
    event = {"event_id": "leak-e1", "customer_id": "shopper-1", "item_id": ITEM_ID, "type": "purchase"}
    expect(run, api(server).post("/api/v1/events", {"events": [event]}, format="json"), 200)
    expect(run, api(server).get("/api/v1/items", {"limit": 1}), 200)
    expect(run, api(public).get("/api/v1/recommendations/popular"), 200)

    forged = server[:-4] + ("AAAA" if not server.endswith("AAAA") else "BBBB")
    run.secrets["forged key"] = secret_of(forged)
    expect(run, api(forged).get(WHOAMI), 401)
    expect(run, APIClient().get(WHOAMI, HTTP_AUTHORIZATION=server), 401)  # no "Bearer"
    expect(run, APIClient().get(WHOAMI, HTTP_X_API_KEY=server), 401)  # not our header
    expect(run, api(server).put(f"/api/v1/items/{ITEM_ID}-2", {**item, "price": server}, format="json"), 400)
    misplaced = {**event, "event_id": server, "customer_id": server, "timestamp": server}
    expect(
        run,
        api(server).post("/api/v1/events", {"events": [misplaced]}, format="json", HTTP_IDEMPOTENCY_KEY="leak-1"),
        400,
    )
    expect(run, api(server).get("/api/v1/items", {"api_key": server}), 400)


def rotate_the_key(run: LeakRun, owner: Client) -> None:
    """Rotation: a new key, then the old one revoked (there is no one-step rotate)."""
    old = run.keys["dashboard secret key"]
    run.keys["rotated key"] = dashboard_key(run, owner, "backend (rotated)", ApiKey.Kind.SECRET)
    old_id = old.split("_")[2]
    expect(run, owner.post(f"/dashboard/keys/{old_id}/revoke/"), 302)
    assert expect(run, api(old).get(WHOAMI), 401).json()["code"] == "revoked_api_key"
    expect(run, api(run.keys["rotated key"]).get(WHOAMI), 200)


def invite_a_colleague(run: LeakRun, owner: Client) -> None:
    email = f"colleague-{secrets.token_hex(4)}@leak.example"
    password = secrets.token_urlsafe(15)
    run.secrets["invitee password"] = password
    run.secrets["mismatched password"] = password + "-typo"
    mail.outbox.clear()
    expect(run, owner.post("/dashboard/team/", {"email": email, "role": "admin"}), 302)
    link = emailed_link()
    run.link_tokens["invitation token"] = link.rstrip("/").rsplit("/", 1)[1]
    visitor = Client(HTTP_HOST=host(run.tenant))
    expect(run, visitor.get(link), 200)
    again = expect(run, visitor.post(link, {"password1": password, "password2": password + "-typo"}), 200)
    assert password.encode() not in again.content  # a form shown again does not echo the password
    expect(run, visitor.post(link, {"password1": password, "password2": password}), 302)
    fresh = Client(HTTP_HOST=host(run.tenant))
    expect(run, fresh.post("/dashboard/login/", {"username": email, "password": password}), 302)
    run.user_ids.append(get_user_model().objects.get(email=email).pk)


def reset_a_password(run: LeakRun) -> None:
    new_password = secrets.token_urlsafe(15)
    run.secrets["owner password (after reset)"] = new_password
    visitor = Client(HTTP_HOST=host(run.tenant))
    mail.outbox.clear()
    expect(run, visitor.post("/dashboard/password-reset/", {"email": run.owner_email}), 302)
    link = emailed_link()
    run.link_tokens["password reset token"] = link.rstrip("/").rsplit("/", 1)[1]
    form_url = expect(run, visitor.get(link), 302)["Location"]
    expect(run, visitor.get(form_url), 200)
    passwords = {"new_password1": new_password, "new_password2": new_password}
    expect(run, visitor.post(form_url, passwords), 302)
    login = {"username": run.owner_email, "password": new_password}
    expect(run, Client(HTTP_HOST=host(run.tenant)).post("/dashboard/login/", login), 302)


def live_a_store(run: LeakRun, owner_password: str) -> None:
    owner = Client(HTTP_HOST=host(run.tenant))
    expect(run, owner.post("/dashboard/login/", {"username": run.owner_email, "password": owner_password}), 302)
    run.secrets["mistyped password"] = owner_password[::-1] + "x"
    mistyped = {"username": run.owner_email, "password": run.secrets["mistyped password"]}
    expect(run, Client(HTTP_HOST=host(run.tenant)).post("/dashboard/login/", mistyped), 200)
    run.keys["dashboard secret key"] = dashboard_key(run, owner, "backend", ApiKey.Kind.SECRET)
    run.keys["dashboard public key"] = dashboard_key(run, owner, "web shop", ApiKey.Kind.PUBLIC)
    use_the_api(run)
    rotate_the_key(run, owner)
    invite_a_colleague(run, owner)
    reset_a_password(run)


@pytest.fixture(scope="module")
def leak_run(django_db_setup: None, django_db_blocker: Any) -> Iterator[LeakRun]:
    """One store's life, committed, with every log line it wrote and Redis as it left it."""
    with django_db_blocker.unblock():
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        connection.set_schema_to_public()
        owner_email = f"owner-{secrets.token_hex(4)}@leak.example"
        with every_log_line() as stream:
            created = tenant_create(
                slug=unique_slug("leak"), name="Leak Store", plan_code="pro", owner_email=owner_email, actor="test"
            )
            assert created.owner is not None
            assert created.owner_password is not None
            run = LeakRun(tenant=created.tenant, owner_email=owner_email, user_ids=[created.owner.pk])
            run.keys["default key"] = created.raw_key
            run.secrets["owner password (generated)"] = created.owner_password
            live_a_store(run, created.owner_password)
            connection.set_schema_to_public()
        run.log = stream.getvalue()
        run.redis_values = redis_values()
        run.secrets |= {f"{what} secret": secret_of(key) for what, key in run.keys.items()}
    yield run
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        tenant_delete(tenant=Tenant.objects.get(pk=run.tenant.pk), actor="test")
        get_user_model().objects.filter(pk__in=run.user_ids).delete()


# --------------------------------------------------------------------------- the database

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "xml")
TEXT_ARRAYS = ("_text", "_varchar", "_bpchar", "_json", "_jsonb")


def text_like_columns() -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """(schema, table) -> [(column, is_bytea)] for every text-like column of every base table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type = 'bytea' "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
            "  AND c.table_schema NOT LIKE 'pg\\_%%' "
            "  AND (c.data_type = ANY(%s) OR c.data_type = 'bytea' "
            "       OR (c.data_type = 'ARRAY' AND c.udt_name = ANY(%s))) "
            "ORDER BY 1, 2, c.ordinal_position",
            [list(TEXT_TYPES), list(TEXT_ARRAYS)],
        )
        columns: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        for schema, table, column, is_bytea in cursor.fetchall():
            columns.setdefault((schema, table), []).append((column, is_bytea))
    return columns


def database_hits(needles: dict[str, str]) -> dict[str, set[str]]:
    """what -> {schema.table.column} holding the clear value (one query per table)."""
    texts = list(needles.values())
    blobs = [value.encode() for value in texts]
    hits: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        for (schema, table), columns in text_like_columns().items():
            conditions, selected = [], []
            for column, is_bytea in columns:
                ident = sql.Identifier(column)
                if is_bytea:
                    selected.append(ident)
                    conditions.append(
                        sql.SQL("EXISTS (SELECT FROM unnest(%(b)s::bytea[]) n WHERE position(n IN {}) > 0)").format(
                            ident
                        )
                    )
                else:
                    selected.append(sql.SQL("{}::text").format(ident))
                    conditions.append(
                        sql.SQL("EXISTS (SELECT FROM unnest(%(t)s::text[]) n WHERE strpos({}::text, n) > 0)").format(
                            ident
                        )
                    )
            query = sql.SQL("SELECT {} FROM {}.{} WHERE {} LIMIT 100").format(
                sql.SQL(", ").join(selected),
                sql.Identifier(schema),
                sql.Identifier(table),
                sql.SQL(" OR ").join(conditions),
            )
            cursor.execute(query.as_string(cursor.connection), {"t": texts, "b": blobs})
            for row in cursor.fetchall():
                for (column, _is_bytea), cell in zip(columns, row, strict=True):
                    content = bytes(cell) if isinstance(cell, bytes | memoryview) else str(cell or "").encode()
                    for what, value in needles.items():
                        if value.encode() in content:
                            hits.setdefault(what, set()).add(f"{schema}.{table}.{column}")
    return hits


@pytest.mark.django_db
def test_no_column_of_any_table_in_any_schema_holds_a_clear_secret(leak_run: LeakRun) -> None:
    rotated = ApiKey.objects.get(pk=leak_run.keys["rotated key"].split("_")[2])
    control = "control: the rotated key's stored hash"

    hits = database_hits({**leak_run.secrets, **leak_run.link_tokens, control: rotated.secret_hash})

    assert set(hits) == {control}, {what: where for what, where in hits.items() if what != control}
    assert "public.tenants_apikey.secret_hash" in hits[control]
    schemas = {schema for schema, _table in text_like_columns()}
    assert {"public", leak_run.tenant.schema_name} <= schemas


@pytest.mark.django_db
def test_sessions_decoded_hold_no_clear_secret(leak_run: LeakRun) -> None:
    decoded = [json.dumps(SessionStore().decode(row.session_data), default=str) for row in Session.objects.all()]
    members = {str(pk) for pk in leak_run.user_ids}

    assert any(json.loads(text).get("_auth_user_id") in members for text in decoded)  # the run's logins are here
    leaked = {
        what for what, value in {**leak_run.secrets, **leak_run.link_tokens}.items() if any(value in t for t in decoded)
    }
    assert leaked == set()


def test_redis_holds_no_clear_secret(leak_run: LeakRun) -> None:
    def holding(value: str) -> list[str]:
        return [name for name, content in leak_run.redis_values if value.encode() in content]

    assert holding(ITEM_ID), "control: the event's item is in the online features"
    leaked = {what: holding(value) for what, value in {**leak_run.secrets, **leak_run.link_tokens}.items()}
    assert {what: names for what, names in leaked.items() if names} == {}


# --------------------------------------------------------------------------- logs


@pytest.mark.django_db
def test_logs_hold_no_key_secret_or_password(leak_run: LeakRun) -> None:
    lines = [json.loads(line) for line in leak_run.log.splitlines()]
    requests = [line for line in lines if line["logger"] == "shelfwise.request"]
    rotated = ApiKey.objects.get(pk=leak_run.keys["rotated key"].split("_")[2])

    # Controls: the run was captured, request lines for its answers and SQL with parameters.
    assert {200, 302, 400, 401} <= {line["status"] for line in requests}
    assert any(line["logger"] == "django.db.backends" for line in lines)
    assert rotated.secret_hash in leak_run.log  # inserted, so in the SQL log: its parameters are there
    leaked = {what for what, value in leak_run.secrets.items() if value in leak_run.log}
    assert leaked == set()


def test_logs_hold_no_one_time_link_token(leak_run: LeakRun) -> None:
    leaked = {what for what, value in leak_run.link_tokens.items() if value in leak_run.log}

    assert leaked == set()


def test_a_logged_object_holding_a_key_is_redacted_too() -> None:
    key = "sk_live_abcdefghijkl_" + "Z" * 40

    class QueryRequest:  # what django.utils.log.log_response passes as extra={"request": ...}
        def __repr__(self) -> str:
            return f"<WSGIRequest: GET '/api/v1/items?api_key={key}'>"

    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/",), None)
    record.request = QueryRequest()

    assert "Z" * 40 not in JsonFormatter().format(record)


# --------------------------------------------------------------------------- Django admin


@pytest.mark.django_db
def test_admin_pages_of_the_keys_and_users_show_no_secret(leak_run: LeakRun) -> None:
    email = f"root-{secrets.token_hex(4)}@support.example"
    root = get_user_model().objects.create_superuser(username=email, email=email, password=secrets.token_urlsafe(16))
    client = Client(HTTP_HOST="localhost")
    client.force_login(root)
    store = leak_run.tenant
    key_ids = [key.split("_")[2] for key in leak_run.keys.values()]
    pages = [
        "/admin/tenants/apikey/",
        f"/admin/tenants/apikey/?tenant={store.pk}",
        f"/admin/tenants/tenant/{store.pk}/change/",
        "/admin/auth/user/",
        "/admin/tenants/membership/",
        "/admin/tenants/invitation/",
        f"/admin/tenants/auditlogentry/?tenant={store.pk}",
        *(f"/admin/tenants/apikey/{key_id}/change/" for key_id in key_ids),
        *(f"/admin/auth/user/{pk}/change/" for pk in leak_run.user_ids),
        *(f"/admin/auth/user/{pk}/password/" for pk in leak_run.user_ids),
        *(
            f"/admin/tenants/invitation/{pk}/change/"
            for pk in Invitation.objects.filter(tenant=store).values_list("pk", flat=True)
        ),
        *(
            f"/admin/tenants/membership/{pk}/change/"
            for pk in Membership.objects.filter(tenant=store).values_list("pk", flat=True)
        ),
        *(
            f"/admin/tenants/auditlogentry/{pk}/change/"
            for pk in AuditLogEntry.objects.filter(tenant=store).values_list("pk", flat=True)
        ),
    ]

    html = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html[page] = response.content.decode()

    everything = "\n".join(html.values())
    for key_id in key_ids:  # controls: the keys and people are on these pages, by their public parts
        assert f"_live_{key_id}" in html[f"/admin/tenants/apikey/{key_id}/change/"]
    assert leak_run.owner_email in everything
    leaked = {
        (what, page)
        for what, value in {**leak_run.secrets, **leak_run.link_tokens}.items()
        for page, text in html.items()
        if value in text
    }
    assert leaked == set()


# --------------------------------------------------------------------------- settings and source

PACKAGES = ("shelfwise", "tenants", "catalog", "recommendations", "support", "dashboard")
SECRET_NAME_RE = re.compile(r"(?i)secret|passw(?:or)?d|passwd|token|api_?key|credential|private_?key|\bdsn\b|_dsn\b")
# Names about a secret rather than holding one: sw:apikey: is a key prefix, SECRET_LENGTH a length.
NOT_A_SECRET_RE = re.compile(
    r"(?i)(?:prefix|length|alphabet|_re|pattern|header|name|field|kind|scope|ttl|seconds|url)$"
)
ENV_READERS = {"getenv", "env_str"}  # plus os.environ.get / environ.get below
CREDENTIALS_IN_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
# The documented development default (README: "SECRET_KEY | dev-only value"), refused in production.
ALLOWED = {("shelfwise/settings.py", "_DEV_SECRET")}


def _name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return str(target.slice.value)
    return None


def _env_default(call: ast.Call) -> tuple[str, ast.expr] | None:
    func = call.func
    is_environ_get = isinstance(func, ast.Attribute) and func.attr == "get" and _name(func.value) == "environ"
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if (is_environ_get or called in ENV_READERS) and len(call.args) >= 2 and isinstance(call.args[0], ast.Constant):
        return str(call.args[0].value), call.args[1]
    return None


def named_values(tree: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) for assignments, keyword arguments, dict entries, defaults and env defaults."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            yield from ((name, node.value) for t in node.targets if (name := _name(t)))
        elif isinstance(node, ast.AnnAssign) and node.value is not None and (name := _name(node.target)):
            yield name, node.value
        elif isinstance(node, ast.Call):
            yield from ((k.arg, k.value) for k in node.keywords if k.arg)
            if (env := _env_default(node)) is not None:
                yield env
        elif isinstance(node, ast.Dict):
            yield from (
                (k.value, v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = [*node.args.posonlyargs, *node.args.args]
            yield from (
                (a.arg, d) for a, d in zip(args[len(args) - len(node.args.defaults) :], node.args.defaults, strict=True)
            )
            yield from (
                (a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is not None
            )


def secret_literals(source: str, filename: str) -> list[str]:
    """Secret-looking string literals: assigned to a secret-like name, or credentials in a URL."""
    tree = ast.parse(source, filename)
    found = []
    for name, value in named_values(tree):
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str) and len(value.value) >= 8):
            continue
        if SECRET_NAME_RE.search(name) and not NOT_A_SECRET_RE.search(name) and (filename, name) not in ALLOWED:
            found.append(f"{filename}:{value.lineno}: {name} = {value.value!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and CREDENTIALS_IN_URL_RE.search(node.value):
            found.append(f"{filename}:{node.lineno}: credentials in a URL literal")
    return found


def test_the_secret_literal_scan_finds_planted_secrets() -> None:
    planted = (
        'SECRET_KEY = "k3y-planted-in-source-0123456789"\n'
        'EMAIL_HOST_PASSWORD: str = "hunter2hunter2"\n'
        'TOKEN = os.environ.get("SHELFWISE_METRICS_TOKEN", "default-token-123")\n'
        'DATABASES = {"default": {"PASSWORD": "s3cret-pass"}}\n'
        'def connect(password="pa55word-default"): ...\n'
        'user_create(email="a@b.c", password="initial-password")\n'
        'BROKER = "redis://user:pw-in-url@redis:6379/0"\n'
        'APIKEY_CACHE_PREFIX = "sw:apikey:"\n'  # not a secret: a name for one
    )

    found = secret_literals(planted, "planted.py")

    assert sorted(int(line.split(":")[1]) for line in found) == [1, 2, 3, 4, 5, 6, 7]


def test_the_source_holds_no_secret_literal_but_the_refused_dev_default() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += secret_literals(path.read_text(), str(path.relative_to(ROOT)))

    assert found == []


SETTINGS_PROBE = """
import json, os, runpy
from django.core.exceptions import ImproperlyConfigured
values = runpy.run_module("shelfwise.settings")
print(json.dumps({
    "SECRET_KEY": values["SECRET_KEY"],
    "EMAIL_HOST_PASSWORD": values["EMAIL_HOST_PASSWORD"],
    "SHELFWISE_METRICS_TOKEN": values["SHELFWISE_METRICS_TOKEN"],
    "SENTRY_DSN": values["SENTRY_DSN"],
    "DATABASE_PASSWORD": values["DATABASES"]["default"].get("PASSWORD"),
    "REDIS_URL": values["REDIS_URL"],
    "dev_default": values["_DEV_SECRET"],
}))
os.environ.update({"SHELFWISE_ENV": "production", "SECRET_KEY": values["_DEV_SECRET"], "DEBUG": "false",
                   "ALLOWED_HOSTS": "api.example.com"})
try:
    runpy.run_module("shelfwise.settings")
except ImproperlyConfigured as exc:
    print(json.dumps({"production_with_dev_default": str(exc)}))
else:
    print(json.dumps({"production_with_dev_default": "started"}))
"""


def _probe(env: dict[str, str]) -> list[dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_settings_take_secrets_from_the_environment_only() -> None:
    given = {
        name: f"{name.lower()}-{secrets.token_urlsafe(24)}"
        for name in ("SECRET_KEY", "EMAIL_HOST_PASSWORD", "SHELFWISE_METRICS_TOKEN")
    }
    db_password = secrets.token_urlsafe(16)
    redis_password = secrets.token_urlsafe(16)
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {*given, "SENTRY_DSN", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    base |= {
        "SHELFWISE_ENV": "development",
        "DATABASE_URL": f"postgres://shelfwise:{db_password}@db.invalid:5433/shelfwise",
        "REDIS_URL": f"redis://:{redis_password}@redis.invalid:6380/0",
    }
    dsn = f"https://{secrets.token_hex(16)}@sentry.invalid/1"

    configured, _ = _probe({**base, **given, "SENTRY_DSN": dsn})
    unset, refused = _probe(base)

    assert {name: configured[name] for name in given} == given
    assert configured["SENTRY_DSN"] == dsn
    assert configured["DATABASE_PASSWORD"] == db_password
    assert redis_password in configured["REDIS_URL"]
    # Without the environment: nothing but the documented dev default, which production refuses.
    assert unset["EMAIL_HOST_PASSWORD"] == unset["SHELFWISE_METRICS_TOKEN"] == unset["SENTRY_DSN"] == ""
    assert unset["SECRET_KEY"] == unset["dev_default"]
    assert "SECRET_KEY must be set" in refused["production_with_dev_default"]
