"""API-key authentication: tenant from the key, 401/403 problem+json, revocation and suspension
take effect at once (even after the key record was cached)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import override_settings

from tenants.models import ApiKey, AuditLogEntry, Tenant
from tenants.services import apikey_create, apikey_revoke, tenant_reactivate, tenant_suspend
from tests.helpers import TenantHandle, assert_problem

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"


def test_valid_key_resolves_its_tenant(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().get(WHOAMI)

    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == tenant_a.slug
    assert body["key_kind"] == "secret"
    assert body["key_prefix"] == tenant_a.key.rsplit("_", 1)[0]
    assert set(body["scopes"]) == {"ingest", "events", "recommend", "admin"}


def test_tenant_comes_from_the_key_not_the_host(tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    host_b = tenant_b.tenant.get_primary_domain().domain

    response = tenant_a.client().get(WHOAMI, HTTP_HOST=host_b, HTTP_X_TENANT=tenant_b.slug)

    assert response.status_code == 200
    assert response.json()["tenant"] == tenant_a.slug


def test_missing_key_is_401(client) -> None:
    response = client.get(WHOAMI)

    assert_problem(response, 401, "missing_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer sk_live_aaaaaaaaaaaa_" + "A" * 40,
    ],
)
def test_malformed_or_unknown_key_is_401(client, header: str) -> None:
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=header)

    assert_problem(response, 401, "invalid_api_key")


def test_key_in_query_or_other_header_is_not_accepted(client, tenant_a: TenantHandle) -> None:
    response = client.get(f"{WHOAMI}?api_key={tenant_a.key}", HTTP_X_API_KEY=tenant_a.key)

    assert_problem(response, 401, "missing_api_key")


def test_forged_key_id_of_a_with_secret_of_b_is_refused(client, tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    prefix_a = tenant_a.key.rsplit("_", 1)[0]
    secret_b = tenant_b.key.rsplit("_", 1)[1]

    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {prefix_a}_{secret_b}")

    assert_problem(response, 401, "invalid_api_key")


def test_secret_key_presented_as_public_is_refused(client, tenant_a: TenantHandle) -> None:
    as_public = "pk" + tenant_a.key[2:]

    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {as_public}")

    assert_problem(response, 401, "invalid_api_key")


def test_revoked_key_is_refused_immediately_even_when_cached(tenant_a: TenantHandle) -> None:
    api_key, raw = apikey_create(tenant=tenant_a.tenant, name="to revoke", actor="test")
    client = tenant_a.client(raw)
    assert client.get(WHOAMI).status_code == 200  # now cached in Redis

    apikey_revoke(api_key=api_key, actor="test")
    response = client.get(WHOAMI)

    assert_problem(response, 401, "revoked_api_key")
    assert tenant_a.client().get(WHOAMI).status_code == 200  # other keys unaffected
    assert AuditLogEntry.objects.filter(action="apikey.revoke", target=api_key.prefix).exists()


def test_a_key_remembered_by_the_process_is_checked_against_redis_every_request(tenant_a: TenantHandle) -> None:
    """The process remembers verified keys, but Redis's record (or the database when Redis has
    none) decides on every request: a change made elsewhere is seen at once."""
    from django.utils import timezone

    from shelfwise.datastores.redis_client import redis_call
    from tenants.services import APIKEY_CACHE_PREFIX

    api_key, raw = apikey_create(tenant=tenant_a.tenant, name="remembered", actor="test")
    client = tenant_a.client(raw)
    assert client.get(WHOAMI).status_code == 200  # verified from the database, remembered
    assert client.get(WHOAMI).status_code == 200  # remembered, confirmed against Redis

    # Revoked by another process that could not reach Redis: the record there still says usable...
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    # ...until it expires; then the database is read again, though this process remembers the key.
    redis_call(lambda r: r.delete(APIKEY_CACHE_PREFIX + api_key.pk), default=None)
    assert_problem(client.get(WHOAMI), 401, "revoked_api_key")
    assert_problem(client.get(WHOAMI), 401, "revoked_api_key")


def test_suspended_tenant_is_refused_immediately_and_reactivation_restores(tenant_a: TenantHandle) -> None:
    client = tenant_a.client()
    assert client.get(WHOAMI).status_code == 200  # cached

    tenant_suspend(tenant=tenant_a.tenant, reason="unpaid invoice", actor="test")
    assert_problem(client.get(WHOAMI), 403, "tenant_suspended")

    tenant_reactivate(tenant=Tenant.objects.get(pk=tenant_a.tenant.pk), reason="paid", actor="test")
    assert client.get(WHOAMI).status_code == 200


def test_suspend_command_refuses_keys_at_once(tenant_a: TenantHandle) -> None:
    client = tenant_a.client()
    assert client.get(WHOAMI).status_code == 200

    call_command("tenant_suspend", tenant_a.slug, "--reason", "abuse report")

    assert_problem(client.get(WHOAMI), 403, "tenant_suspended")
    entry = AuditLogEntry.objects.get(action="tenant.suspend", tenant_slug=tenant_a.slug)
    assert entry.metadata["reason"] == "abuse report"
    assert entry.actor.startswith("cli:")


def test_public_key_has_only_events_and_recommend(tenant_a: TenantHandle) -> None:
    _api_key, raw = apikey_create(tenant=tenant_a.tenant, name="browser", kind=ApiKey.Kind.PUBLIC, actor="test")

    body = tenant_a.client(raw).get(WHOAMI).json()

    assert raw.startswith("pk_live_")
    assert sorted(body["scopes"]) == ["events", "recommend"]
    assert body["key_kind"] == "public"


def test_last_used_is_recorded(tenant_a: TenantHandle) -> None:
    api_key, raw = apikey_create(tenant=tenant_a.tenant, name="usage", actor="test")
    assert api_key.last_used_at is None

    tenant_a.client(raw).get(WHOAMI)

    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_api_answers_are_never_cached(tenant_a: TenantHandle) -> None:
    """Issue 19.15: answers with shoppers' data went out without Cache-Control."""
    api = tenant_a.client()
    answers = [api.get("/api/v1/whoami"), api.get("/api/v1/customers/c-1/recommendations"), api.get("/api/v1/nowhere")]

    assert [answer["Cache-Control"] for answer in answers] == ["no-store"] * 3


def test_unknown_api_path_is_problem_404(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().get("/api/v1/no-such-thing")

    assert_problem(response, 404, "not_found")


def test_request_id_is_accepted_and_echoed(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().get(WHOAMI, HTTP_X_REQUEST_ID="req-1234567890")

    assert response["X-Request-ID"] == "req-1234567890"


def test_malformed_request_id_is_replaced(tenant_a: TenantHandle) -> None:
    response = tenant_a.client().get(WHOAMI, HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_browser_preflight_for_public_keys_is_allowed(client) -> None:
    response = client.options(
        "/api/v1/events",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, shelfwise-customer-token",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "shelfwise-customer-token" in response["Access-Control-Allow-Headers"]  # a page's customer token
    assert "Access-Control-Allow-Credentials" not in response


def test_dashboard_paths_are_not_cross_origin(client) -> None:
    response = client.options("/admin/login/", HTTP_ORIGIN="https://evil.example.com")

    assert "Access-Control-Allow-Origin" not in response


def test_unknown_api_path_with_post_is_problem_404_not_a_csrf_page(tenant_a: TenantHandle) -> None:
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_a.key}")
    response = client.post("/api/v1/models/abc:promote", {}, format="json")

    assert_problem(response, 404, "not_found")


UNKNOWN_KEY = "sk_live_" + "a" * 12 + "_" + "b" * 40  # well-formed, no such id


def test_an_unknown_key_id_costs_no_database_read_once_probed(client, django_assert_num_queries) -> None:
    """Issue 19.13: every probe of an unknown key id read PostgreSQL (before any limit): free
    load for a guesser and a timing difference from a known id with a wrong secret."""
    first = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {UNKNOWN_KEY}", REMOTE_ADDR="203.0.113.7")

    with django_assert_num_queries(0):
        again = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {UNKNOWN_KEY}", REMOTE_ADDR="203.0.113.7")

    assert_problem(first, 401, "invalid_api_key")
    assert_problem(again, 401, "invalid_api_key")


@override_settings(SHELFWISE_AUTH_FAILURES_PER_MINUTE=5)
def test_an_address_that_keeps_failing_is_refused_before_the_database(
    client, tenant_a: TenantHandle, django_assert_num_queries
) -> None:
    for n in range(5):  # five well-formed keys whose ids do not exist
        forged = "sk_live_" + chr(ord("c") + n) * 12 + "_" + "c" * 40
        answer = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {forged}", REMOTE_ADDR="203.0.113.8")
        assert answer.status_code == 401

    with django_assert_num_queries(0):
        refused = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {UNKNOWN_KEY}", REMOTE_ADDR="203.0.113.8")
    elsewhere = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {tenant_a.key}", REMOTE_ADDR="203.0.113.9")

    assert_problem(refused, 429, "rate_limited")
    assert refused["Retry-After"] == "60"
    assert elsewhere.status_code == 200
