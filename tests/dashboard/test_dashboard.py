"""The dashboard through Django's test client: who may see and change what, on which host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import ApiKey, AuditLogEntry, Membership
from tests.factories import member
from tests.helpers import TenantHandle, host

pytestmark = pytest.mark.django_db


def logged_in(handle: TenantHandle, role: str = Membership.Role.OWNER) -> Client:
    login = member(handle.tenant, role)
    client = Client(HTTP_HOST=host(handle.tenant))
    response = client.post("/dashboard/login/", {"username": login.email, "password": login.password})
    assert response.status_code == 302, response.content
    return client


def test_pages_need_a_login_and_carry_the_security_headers(tenant_a: TenantHandle) -> None:
    anonymous = Client(HTTP_HOST=host(tenant_a.tenant))
    response = anonymous.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/")

    login_page = anonymous.get("/dashboard/login/")
    assert login_page.status_code == 200
    csp = login_page["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert login_page["X-Frame-Options"] == "DENY"
    assert b"csrfmiddlewaretoken" in login_page.content


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard/items/",
        "/dashboard/customers/",
        "/dashboard/models/",
        "/dashboard/keys/",
        "/dashboard/experiments/",
        "/dashboard/settings/",
    ],
)
def test_every_page_renders_for_a_member(tenant_a: TenantHandle, path: str) -> None:
    client = logged_in(tenant_a, Membership.Role.VIEWER)
    response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    assert tenant_a.tenant.name.encode() in response.content


def test_a_members_pages_are_never_cached(tenant_a: TenantHandle) -> None:
    """Issue 19.15: authenticated pages (a store's data) went out without Cache-Control."""
    page = logged_in(tenant_a).get("/dashboard/customers/")

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    assert "private" in page["Cache-Control"]


def test_the_dashboard_does_not_exist_on_the_public_host(client) -> None:
    assert client.get("/dashboard/", HTTP_HOST="localhost").status_code == 404
    assert client.get("/dashboard/login/", HTTP_HOST="localhost").status_code == 404


def test_another_stores_user_cannot_log_in_and_gets_404_with_a_session(
    tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    outsider = member(tenant_a.tenant)
    on_b = Client(HTTP_HOST=host(tenant_b.tenant))
    refused = on_b.post("/dashboard/login/", {"username": outsider.email, "password": outsider.password})
    wrong_password = on_b.post("/dashboard/login/", {"username": outsider.email, "password": "not-it"})
    assert refused.status_code == wrong_password.status_code == 200
    assert b"correct" in refused.content  # "Please enter a correct e-mail and password"
    assert refused.content.count(b"correct") == wrong_password.content.count(b"correct")
    # Even with a session on B's host (e.g. a cookie shared across subdomains), nothing of B shows.
    on_b.force_login(get_user_model().objects.get(email=outsider.email))
    for path in ["/dashboard/", "/dashboard/keys/", "/dashboard/models/", "/dashboard/customers/"]:
        assert on_b.get(path).status_code == 404, path


def test_a_viewer_sees_but_cannot_change(tenant_a: TenantHandle) -> None:
    viewer = logged_in(tenant_a, Membership.Role.VIEWER)
    keys_page = viewer.get("/dashboard/keys/")
    assert b"Create key" not in keys_page.content
    assert b"Train now" not in viewer.get("/dashboard/models/").content
    assert viewer.post("/dashboard/keys/", {"name": "sneaky", "kind": "secret"}).status_code == 403
    assert viewer.post("/dashboard/models/train/").status_code == 403
    key = ApiKey.objects.filter(tenant=tenant_a.tenant, revoked_at__isnull=True).first()
    assert key is not None
    assert viewer.post(f"/dashboard/keys/{key.pk}/revoke/").status_code == 403
    assert not ApiKey.objects.filter(tenant=tenant_a.tenant, name="sneaky").exists()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_an_admin_creates_a_key_shown_once_and_revokes_it(tenant_a: TenantHandle) -> None:
    admin = logged_in(tenant_a, Membership.Role.ADMIN)
    created = admin.post("/dashboard/keys/", {"name": "shop backend", "kind": "secret", "scopes": ["recommend"]})
    assert created.status_code == 200
    assert set(created["Cache-Control"].split(", ")) == {
        "no-store",
        "max-age=0",
        "no-cache",
        "must-revalidate",
        "private",
    }
    row = ApiKey.objects.get(tenant=tenant_a.tenant, name="shop backend")
    assert row.scopes == ["recommend"]
    raw = created.context["created"]["key"]
    assert raw.startswith(f"sk_live_{row.pk}_")
    assert raw.encode() in created.content
    assert raw.encode() not in admin.get("/dashboard/keys/").content  # shown once

    api = tenant_a.client(raw)
    assert api.get("/api/v1/whoami").status_code == 200
    assert admin.post(f"/dashboard/keys/{row.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/whoami").status_code == 401
    assert AuditLogEntry.objects.filter(action="apikey.revoke", target=row.prefix, actor__startswith="user:").exists()


def test_an_admin_sees_a_public_keys_signing_secret_and_it_is_audited(tenant_a: TenantHandle) -> None:
    admin = logged_in(tenant_a, Membership.Role.ADMIN)
    created = admin.post("/dashboard/keys/", {"name": "web shop", "kind": "public"})
    row = ApiKey.objects.get(tenant=tenant_a.tenant, name="web shop")
    secret = created.context["created"]["signing_secret"]
    assert secret.startswith("cts_")
    assert secret.encode() in created.content
    assert secret.encode() not in admin.get("/dashboard/keys/").content  # only when asked for

    shown = admin.post(f"/dashboard/keys/{row.pk}/signing-secret/")
    assert shown.status_code == 200
    assert secret.encode() in shown.content
    assert "no-store" in shown["Cache-Control"]
    assert (
        AuditLogEntry.objects.filter(
            action="apikey.signing_secret_shown", target=row.prefix, actor__startswith="user:"
        ).count()
        == 2
    )  # at creation, and now
    viewer = logged_in(tenant_a, Membership.Role.VIEWER)
    assert viewer.post(f"/dashboard/keys/{row.pk}/signing-secret/").status_code == 403
    secret_key = ApiKey.objects.filter(tenant=tenant_a.tenant, kind="secret", revoked_at__isnull=True).first()
    assert secret_key is not None
    refused = admin.post(f"/dashboard/keys/{secret_key.pk}/signing-secret/", follow=True)
    assert b"only an active public key has a signing secret" in refused.content


def test_a_key_of_another_store_cannot_be_revoked_from_here(tenant_a: TenantHandle, tenant_b: TenantHandle) -> None:
    admin = logged_in(tenant_a, Membership.Role.ADMIN)
    foreign = ApiKey.objects.filter(tenant=tenant_b.tenant, revoked_at__isnull=True).first()
    assert foreign is not None
    assert admin.post(f"/dashboard/keys/{foreign.pk}/revoke/").status_code == 404
    assert admin.post(f"/dashboard/keys/{foreign.pk}/signing-secret/").status_code == 404
    assert ApiKey.objects.get(pk=foreign.pk).revoked_at is None


def test_looking_at_an_item_in_the_dashboard_is_not_an_impression(tenant_a: TenantHandle) -> None:
    from recommendations.serving.cache import impressions_key
    from shelfwise.datastores.redis_client import redis_call

    api = tenant_a.client()
    assert api.put("/api/v1/items/dash-look", {"title": "Looked at"}, format="json").status_code in {200, 201}
    key = impressions_key(tenant_a.tenant.pk, f"{datetime.now(UTC):%Y%m%d}")

    def shown() -> int:
        return int(redis_call(lambda client: client.hget(key, "similar|0|default"), default=None) or 0)

    before = shown()
    viewer = logged_in(tenant_a, Membership.Role.VIEWER)
    page = viewer.get("/dashboard/items/dash-look/")
    assert page.status_code == 200
    assert b"Similar items" in page.content
    assert shown() == before
    assert api.get("/api/v1/items/dash-look/similar").status_code == 200  # the API's answer is one
    assert shown() == before + 1
