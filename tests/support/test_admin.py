"""Support staff's Django admin on the public host: who may see and do what, and that what they
do (suspend, revoke, create) takes effect on the API at once and is audited."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from recommendations.models import ModelVersion, TrainingJob
from support import admin_pages
from support.services import SUPPORT_GROUP, SUPPORT_PERMISSIONS, support_group_sync
from tenants.models import ApiKey, AuditLogEntry, Domain, Membership, Plan, Tenant
from tenants.services import apikey_create, tenant_delete, tenant_suspend, tenant_usage_record
from tests.factories import ModelVersionFactory, PlanFactory, TrainingJobFactory, UserFactory, make_tenant, member
from tests.helpers import TenantHandle, host

ADMIN_HOST = "localhost"
WHOAMI = "/api/v1/whoami"
TENANTS = "/admin/tenants/tenant/"


@dataclass
class Staff:
    user: User
    email: str
    password: str
    client: Client


StaffFactory = Callable[..., Staff]


@pytest.fixture
def staff() -> Iterator[StaffFactory]:
    """Makes logged-in staff users (deleted afterwards). Request it after the database fixture."""
    made: list[User] = []

    def make(*, group: str | None = None, perms: tuple[str, ...] = (), superuser: bool = False) -> Staff:
        email = f"staff-{secrets.token_hex(4)}@support.example"
        password = secrets.token_urlsafe(16)
        user = UserFactory(email=email, password=password, is_staff=True, is_superuser=superuser)
        if group:
            user.groups.add(Group.objects.get(name=group))
        for name in perms:
            app_label, codename = name.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        made.append(user)
        client = Client(HTTP_HOST=ADMIN_HOST)
        client.force_login(user)
        return Staff(user, email, password, client)

    yield make
    connection.set_schema_to_public()
    User.objects.filter(pk__in=[u.pk for u in made]).delete()


def run_action(client: Client, changelist: str, action: str, pks: list[object], **extra: str):
    """Post an admin action as the changelist's action bar does (the first step)."""
    return client.post(
        changelist, {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": "0", **extra}
    )


def confirm_action(client: Client, changelist: str, action: str, pks: list[object], **fields: str):
    """Post the action's confirmation page."""
    return client.post(
        changelist, {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "confirm": "yes", **fields}
    )


# --------------------------------------------------------------------------- the support group


@pytest.mark.django_db
def test_the_support_group_has_exactly_its_least_privilege_permissions_even_after_drift() -> None:
    group = Group.objects.get(name=SUPPORT_GROUP)
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert granted == set(SUPPORT_PERMISSIONS)
    assert not any(name.startswith("auth.") or ".delete_" in name for name in granted)
    assert "tenants.change_tenant" not in granted
    assert "tenants.add_tenant" not in granted

    # Given a permission added by hand, when the group is synced (as every migrate does) ...
    group.permissions.add(Permission.objects.get(content_type__app_label="auth", codename="change_user"))
    support_group_sync()
    # ... then it is exactly the declared set again.
    assert {p.codename for p in Group.objects.get(name=SUPPORT_GROUP).permissions.all()} == {
        name.split(".")[1] for name in SUPPORT_PERMISSIONS
    }


@pytest.mark.django_db
def test_support_user_create_makes_a_staff_account_that_logs_in_and_prints_its_password_once(
    tenant_a: TenantHandle,
) -> None:
    email = f"agent-{secrets.token_hex(3)}@support.example"
    out = StringIO()
    call_command("support_user_create", "--email", email.upper(), stdout=out)

    user = User.objects.get(email=email)
    assert user.is_staff
    assert not user.is_superuser
    assert [g.name for g in user.groups.all()] == [SUPPORT_GROUP]
    password = next(line.split()[1] for line in out.getvalue().splitlines() if line.strip().startswith("password:"))
    assert AuditLogEntry.objects.filter(action="support_user.create", target=f"user:{email}").exists()

    browser = Client(HTTP_HOST=ADMIN_HOST)
    login = browser.post("/admin/login/?next=/admin/", {"username": email, "password": password})
    assert login.status_code == 302
    assert login["Location"] == "/admin/"
    tenants = browser.get(TENANTS)
    assert tenants.status_code == 200
    assert tenant_a.slug.encode() in tenants.content

    # Running it again keeps the password (and does not print one).
    again = StringIO()
    call_command("support_user_create", "--email", email, stdout=again)
    assert "unchanged" in again.getvalue()
    assert password not in again.getvalue()
    user.refresh_from_db()
    assert user.check_password(password)


@pytest.mark.django_db
def test_support_user_create_refuses_superusers_and_store_members(tenant_a: TenantHandle) -> None:
    boss = User.objects.create_superuser(username="boss@x.example", email="boss@x.example", password="x" * 16)
    with pytest.raises(CommandError, match="superuser"):
        call_command("support_user_create", "--email", boss.email, stdout=StringIO())
    store_user = member(tenant_a.tenant, Membership.Role.VIEWER)
    with pytest.raises(CommandError, match="member"):
        call_command("support_user_create", "--email", store_user.email, stdout=StringIO())
    assert not User.objects.get(email=store_user.email).is_staff
    assert User.objects.get(pk=boss.pk).groups.count() == 0


# --------------------------------------------------------------------------- tenants


def test_support_sees_tenants_with_usage_and_links(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    tenant = fresh_tenant.tenant
    tenant_usage_record(tenant_id=tenant.pk, usage={"items": 1234, "customers": 56, "events_this_month": 789012})
    support = staff(group=SUPPORT_GROUP)

    page = support.client.get(TENANTS, {"q": tenant.slug}, HTTP_HOST=f"{ADMIN_HOST}:8000")

    assert page.status_code == 200
    html = page.content.decode()
    assert tenant.slug in html
    assert "1,234" in html
    assert "789,012" in html
    assert f'href="http://{tenant.slug}.localhost:8000/dashboard/"' in html
    assert f'href="/admin/tenants/apikey/?tenant={tenant.pk}"' in html
    assert f'href="/admin/tenants/membership/?tenant={tenant.pk}"' in html
    assert f'href="/admin/tenants/auditlogentry/?tenant={tenant.pk}"' in html
    assert f'href="/admin/tenants/tenant/{tenant.pk}/models/"' in html
    assert 'value="suspend_tenants"' in html
    assert 'value="delete_selected"' not in html
    assert "/admin/tenants/tenant/add/" not in html  # support does not create tenants


def test_the_tenant_list_costs_the_same_queries_however_many_tenants(live_db: None, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    support.client.get(TENANTS)  # session and permission caches warm

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert support.client.get(TENANTS).status_code == 200
        return len(captured)

    before = queries()
    extra = make_tenant("count")
    try:
        assert queries() == before
    finally:
        tenant_delete(tenant=Tenant.objects.get(pk=extra.tenant.pk), actor="test")


def test_tenant_links_filter_the_related_lists_to_that_tenant(
    fresh_tenant: TenantHandle, tenant_b: TenantHandle, staff: StaffFactory
) -> None:
    support = staff(group=SUPPORT_GROUP)
    mine = ApiKey.objects.get(tenant=fresh_tenant.tenant)
    theirs = ApiKey.objects.filter(tenant=tenant_b.tenant).first()
    assert theirs is not None

    keys = support.client.get("/admin/tenants/apikey/", {"tenant": fresh_tenant.tenant.pk})
    audit = support.client.get("/admin/tenants/auditlogentry/", {"tenant": fresh_tenant.tenant.pk})

    assert keys.status_code == audit.status_code == 200
    assert mine.pk.encode() in keys.content
    assert theirs.pk.encode() not in keys.content
    assert fresh_tenant.slug.encode() in audit.content
    assert tenant_b.slug.encode() not in audit.content


def test_support_suspends_with_a_reason_and_the_key_is_refused_at_once_then_reactivates(
    fresh_tenant: TenantHandle, staff: StaffFactory
) -> None:
    support = staff(group=SUPPORT_GROUP)
    api = fresh_tenant.client()
    pk = fresh_tenant.tenant.pk
    assert api.get(WHOAMI).status_code == 200  # the key's record is now cached (Redis and process)

    first = run_action(support.client, TENANTS, "suspend_tenants", [pk])
    assert first.status_code == 200
    assert b'name="reason"' in first.content
    assert Tenant.objects.get(pk=pk).status == Tenant.Status.ACTIVE  # nothing happens before confirming

    done = confirm_action(support.client, TENANTS, "suspend_tenants", [pk], reason="Chargeback #4711")

    assert done.status_code == 302
    tenant = Tenant.objects.get(pk=pk)
    assert tenant.status == Tenant.Status.SUSPENDED
    assert tenant.status_reason == "Chargeback #4711"
    entry = AuditLogEntry.objects.get(action="tenant.suspend", tenant=tenant)
    assert entry.actor == f"user:{support.email}"
    assert entry.metadata["reason"] == "Chargeback #4711"
    refused = api.get(WHOAMI)
    assert refused.status_code == 403
    assert refused.json()["code"] == "tenant_suspended"

    confirm_action(support.client, TENANTS, "reactivate_tenants", [pk], reason="Paid")

    assert Tenant.objects.get(pk=pk).status == Tenant.Status.ACTIVE
    assert AuditLogEntry.objects.get(action="tenant.reactivate", tenant=tenant).metadata["reason"] == "Paid"
    assert api.get(WHOAMI).status_code == 200


def test_suspending_without_a_reason_is_refused_and_changes_nothing(
    fresh_tenant: TenantHandle, staff: StaffFactory
) -> None:
    support = staff(group=SUPPORT_GROUP)
    pk = fresh_tenant.tenant.pk

    response = confirm_action(support.client, TENANTS, "suspend_tenants", [pk], reason="   ")

    assert response.status_code == 200
    assert b"This field is required." in response.content
    assert b"errornote" in response.content
    assert Tenant.objects.get(pk=pk).status == Tenant.Status.ACTIVE
    assert not AuditLogEntry.objects.filter(action="tenant.suspend", tenant_id=pk).exists()
    assert fresh_tenant.client().get(WHOAMI).status_code == 200


def test_suspending_needs_the_suspend_permission(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    viewer = staff(perms=("tenants.view_tenant",))
    pk = fresh_tenant.tenant.pk

    page = viewer.client.get(TENANTS)
    confirm_action(viewer.client, TENANTS, "suspend_tenants", [pk], reason="trying")

    assert page.status_code == 200
    assert b"suspend_tenants" not in page.content
    assert Tenant.objects.get(pk=pk).status == Tenant.Status.ACTIVE
    assert not AuditLogEntry.objects.filter(action="tenant.suspend", tenant_id=pk).exists()


@pytest.mark.django_db
def test_nobody_deletes_a_tenant_from_the_admin(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    root = staff(superuser=True)
    delete_url = f"{TENANTS}{tenant_a.tenant.pk}/delete/"

    for client in (support.client, root.client):
        assert client.get(delete_url).status_code == 403
        assert client.post(delete_url, {"post": "yes"}).status_code == 403
        assert b"delete_selected" not in client.get(TENANTS).content
        run_action(client, TENANTS, "delete_selected", [tenant_a.tenant.pk], post="yes")

    assert Tenant.objects.filter(pk=tenant_a.tenant.pk).exists()
    assert tenant_a.client().get(WHOAMI).status_code == 200


@pytest.mark.django_db
def test_support_cannot_create_or_change_tenants(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    change_url = f"{TENANTS}{tenant_a.tenant.pk}/change/"

    assert support.client.get(f"{TENANTS}add/").status_code == 403
    assert (
        support.client.post(f"{TENANTS}add/", {"slug": "sneaky-store", "name": "S", "plan": "free"}).status_code == 403
    )
    view = support.client.get(change_url)
    assert view.status_code == 200
    assert b'name="name"' not in view.content  # read-only for support
    assert support.client.post(change_url, {"name": "Renamed", "plan": tenant_a.tenant.plan_id}).status_code == 403
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).name == tenant_a.tenant.name
    assert not Tenant.objects.filter(slug="sneaky-store").exists()


def test_a_superuser_creates_a_tenant_through_the_service_and_sees_its_key_once(
    live_db: None, staff: StaffFactory
) -> None:
    root = staff(superuser=True)
    slug = f"adm-{secrets.token_hex(4)}"
    owner_email = f"owner-{secrets.token_hex(3)}@{slug}.example"
    try:
        created = root.client.post(
            f"{TENANTS}add/", {"slug": slug, "name": "Admin-made store", "plan": "pro", "owner_email": owner_email}
        )

        assert created.status_code == 200, created.content[:2000]
        assert "no-store" in created["Cache-Control"]
        tenant = Tenant.objects.get(slug=slug)
        assert tenant.plan.code == "pro"
        assert tenant.schema_name == f"t_{slug.replace('-', '_')}"
        assert Domain.objects.filter(tenant=tenant, domain=f"{slug}.localhost", is_primary=True).exists()
        key = created.context["created"].raw_key
        assert key.encode() in created.content
        api = Client()
        whoami = api.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert whoami.status_code == 200
        assert whoami.json()["tenant"] == slug
        owner = Membership.objects.select_related("user").get(tenant=tenant)
        assert (owner.user.email, owner.role) == (owner_email, Membership.Role.OWNER)
        assert created.context["created"].owner_password.encode() in created.content
        assert AuditLogEntry.objects.get(action="tenant.create", tenant=tenant).actor == f"user:{root.email}"
        assert key.encode() not in root.client.get(f"{TENANTS}{tenant.pk}/change/").content

        staff_owner = root.client.post(
            f"{TENANTS}add/", {"slug": f"{slug}-2", "name": "S", "plan": "free", "owner_email": root.email}
        )
        assert staff_owner.status_code == 200
        assert b"Staff accounts cannot be store members." in staff_owner.content
        assert not Tenant.objects.filter(slug=f"{slug}-2").exists()

        duplicate = root.client.post(f"{TENANTS}add/", {"slug": slug, "name": "Again", "plan": "free"})
        assert duplicate.status_code == 200
        assert b"already exists" in duplicate.content
        assert Tenant.objects.filter(slug=slug).count() == 1
    finally:
        connection.set_schema_to_public()
        for tenant in Tenant.objects.filter(slug=slug):
            tenant_delete(tenant=tenant, actor="test")
        User.objects.filter(email=owner_email).delete()


def test_a_superusers_plan_change_is_audited_and_takes_effect_on_the_keys(
    fresh_tenant: TenantHandle, staff: StaffFactory
) -> None:
    root = staff(superuser=True)
    tenant = fresh_tenant.tenant
    domain = Domain.objects.get(tenant=tenant)
    enterprise = Plan.objects.get(code="enterprise")
    api = fresh_tenant.client()
    before = api.get(WHOAMI)  # caches the key record with the old plan's limits
    assert before["RateLimit-Limit"] == str(tenant.plan.burst) != str(enterprise.burst)

    response = root.client.post(
        f"{TENANTS}{tenant.pk}/change/",
        {
            "name": "Renamed store",
            "plan": enterprise.pk,
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "1",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-id": str(domain.pk),
            "domains-0-tenant": str(tenant.pk),
        },
    )

    assert response.status_code == 302, response.content[:3000]
    tenant.refresh_from_db()
    assert (tenant.name, tenant.plan_id) == ("Renamed store", enterprise.pk)
    entry = AuditLogEntry.objects.get(action="tenant.update", tenant=tenant)
    assert entry.actor == f"user:{root.email}"
    assert entry.metadata["plan"] == {"from": "pro", "to": "enterprise"}
    api.get(WHOAMI)  # this request finds the cached record gone and reads the key again
    limited = api.get(WHOAMI)
    assert limited.status_code == 200
    assert limited["RateLimit-Limit"] == str(enterprise.burst)


# --------------------------------------------------------------------------- access to the rest


@pytest.mark.django_db
def test_support_cannot_open_users_or_groups(staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    group = Group.objects.get(name=SUPPORT_GROUP)

    for url in [
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        f"/admin/auth/user/{support.user.pk}/change/",
        "/admin/auth/group/",
        f"/admin/auth/group/{group.pk}/change/",
    ]:
        assert support.client.get(url).status_code == 403, url
    assert support.client.post(f"/admin/auth/user/{support.user.pk}/change/", {"is_superuser": "on"}).status_code == 403
    support.user.refresh_from_db()
    assert not support.user.is_superuser
    index = support.client.get("/admin/")
    assert index.status_code == 200
    assert b"/admin/auth/user/" not in index.content
    assert b"/admin/tenants/tenant/" in index.content


@pytest.mark.django_db
def test_the_audit_log_is_read_only_for_everyone(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    entry = AuditLogEntry.objects.filter(tenant=tenant_a.tenant).first()
    assert entry is not None
    support = staff(group=SUPPORT_GROUP)
    root = staff(superuser=True)
    base = "/admin/tenants/auditlogentry/"

    for client in (support.client, root.client):
        assert client.get(base).status_code == 200
        view = client.get(f"{base}{entry.pk}/change/")
        assert view.status_code == 200
        assert b'name="_save"' not in view.content
        assert client.post(f"{base}{entry.pk}/change/", {"action": "forged"}).status_code == 403
        assert client.get(f"{base}{entry.pk}/delete/").status_code == 403
        assert client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
        assert client.get(f"{base}add/").status_code == 403
        run_action(client, base, "delete_selected", [entry.pk], post="yes")

    assert AuditLogEntry.objects.get(pk=entry.pk).action == entry.action


@pytest.mark.django_db
def test_the_api_key_pages_never_show_the_secret_hash(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    key = ApiKey.objects.filter(tenant=tenant_a.tenant).first()
    assert key is not None
    support = staff(group=SUPPORT_GROUP)

    for client in (support.client, staff(superuser=True).client):
        listing = client.get("/admin/tenants/apikey/", {"q": key.prefix})
        detail = client.get(f"/admin/tenants/apikey/{key.pk}/change/")
        assert listing.status_code == detail.status_code == 200
        assert key.prefix.encode() in listing.content  # found by its prefix
        for page in (listing, detail):
            assert key.secret_hash.encode() not in page.content
            assert b"secret_hash" not in page.content
            assert b"Secret hash" not in page.content
        assert client.get("/admin/tenants/apikey/add/").status_code == 403
        assert client.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).exists()


def test_support_revokes_a_key_and_it_is_refused_at_once(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    keys_url = "/admin/tenants/apikey/"
    target = ApiKey.objects.get(tenant=fresh_tenant.tenant)
    _other, other_raw = apikey_create(tenant=fresh_tenant.tenant, name="kept", actor="test")
    api = fresh_tenant.client()
    assert api.get(WHOAMI).status_code == 200

    first = run_action(support.client, keys_url, "revoke_keys", [target.pk])
    assert first.status_code == 200
    assert target.prefix.encode() in first.content
    assert ApiKey.objects.get(pk=target.pk).revoked_at is None  # not before confirming

    done = confirm_action(support.client, keys_url, "revoke_keys", [target.pk])

    assert done.status_code == 302
    assert ApiKey.objects.get(pk=target.pk).revoked_at is not None
    refused = api.get(WHOAMI)
    assert refused.status_code == 401
    assert refused.json()["code"] == "revoked_api_key"
    assert fresh_tenant.client(other_raw).get(WHOAMI).status_code == 200  # only the selected key
    assert AuditLogEntry.objects.get(action="apikey.revoke", target=target.prefix).actor == f"user:{support.email}"


def test_revoking_needs_the_revoke_permission(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    viewer = staff(perms=("tenants.view_apikey",))
    key = ApiKey.objects.get(tenant=fresh_tenant.tenant)

    page = viewer.client.get("/admin/tenants/apikey/")
    confirm_action(viewer.client, "/admin/tenants/apikey/", "revoke_keys", [key.pk])

    assert page.status_code == 200
    assert b"revoke_keys" not in page.content
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert fresh_tenant.client().get(WHOAMI).status_code == 200


def test_support_adds_a_member_but_never_a_staff_account(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    store_user = UserFactory()
    add_url = "/admin/tenants/membership/add/"
    try:
        refused = support.client.post(
            add_url, {"email": support.email, "tenant": fresh_tenant.tenant.pk, "role": "owner"}
        )
        assert refused.status_code == 200
        assert b"Staff accounts cannot be store members." in refused.content
        assert not Membership.objects.filter(user=support.user).exists()

        added = support.client.post(
            add_url, {"email": store_user.email, "tenant": fresh_tenant.tenant.pk, "role": "admin"}
        )

        assert added.status_code == 302, added.content[:2000]
        membership = Membership.objects.get(user=store_user, tenant=fresh_tenant.tenant)
        assert membership.role == Membership.Role.ADMIN
        entry = AuditLogEntry.objects.get(action="membership.create", tenant=fresh_tenant.tenant)
        assert (entry.actor, entry.target) == (f"user:{support.email}", f"user:{store_user.email}")
        assert (
            support.client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"}).status_code
            == 403
        )
        assert Membership.objects.filter(pk=membership.pk).exists()
    finally:
        store_user.delete()


def test_a_tenant_host_cannot_be_the_public_host(fresh_tenant: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    add_url = "/admin/tenants/domain/add/"
    custom = f"shop-{secrets.token_hex(3)}.example.com"

    refused = support.client.post(add_url, {"domain": "localhost", "tenant": fresh_tenant.tenant.pk})
    added = support.client.post(add_url, {"domain": custom.upper(), "tenant": fresh_tenant.tenant.pk})

    assert refused.status_code == 200
    assert b"public site" in refused.content
    assert not Domain.objects.filter(domain="localhost").exists()
    assert added.status_code == 302, added.content[:2000]
    domain = Domain.objects.get(domain=custom)
    assert domain.tenant_id == fresh_tenant.tenant.pk
    assert not domain.is_primary  # the store already has its primary host
    assert AuditLogEntry.objects.get(action="domain.create", target=f"domain:{custom}").actor == f"user:{support.email}"


# --------------------------------------------------------------------------- models and training jobs


def _model_rows(handle: TenantHandle, *, marker: str, version: int, ndcg: float) -> None:
    with tenant_context(handle.tenant):
        model = ModelVersionFactory(
            version=version,
            algorithm="ease",
            status=ModelVersion.Status.ACTIVE,
            trigger=ModelVersion.Trigger.SCHEDULE,
            metrics={"model": {"ndcg@10": ndcg}, "popularity": {"ndcg@10": 0.0101}},
        )
        TrainingJobFactory(
            status=TrainingJob.Status.FAILED,
            stage="train",
            progress=40,
            trigger=ModelVersion.Trigger.MANUAL,
            requested_by=f"user:{marker}@store.example",
            error=f"{marker}: out of memory",
            version=model,
            active_slot=None,
        )
    connection.set_schema_to_public()


@pytest.fixture
def other_store(live_db: None) -> Iterator[TenantHandle]:
    handle = make_tenant("other")
    yield handle
    connection.set_schema_to_public()
    tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")


def test_a_tenants_models_page_shows_its_versions_and_jobs_and_nothing_of_others(
    fresh_tenant: TenantHandle, other_store: TenantHandle, staff: StaffFactory
) -> None:
    _model_rows(fresh_tenant, marker="mine-7f3a", version=3, ndcg=0.4321)
    _model_rows(other_store, marker="theirs-2b9c", version=9, ndcg=0.9876)
    support = staff(group=SUPPORT_GROUP)

    mine = support.client.get(f"{TENANTS}{fresh_tenant.tenant.pk}/models/")
    theirs = support.client.get(f"{TENANTS}{other_store.tenant.pk}/models/")

    assert mine.status_code == theirs.status_code == 200
    html = mine.content.decode()
    assert "<td>v3</td>" in html
    assert "0.4321" in html
    assert "0.0101" in html
    assert "mine-7f3a: out of memory" in html
    assert "40%" in html
    assert "theirs-2b9c" not in html
    assert "0.9876" not in html
    assert "<td>v9</td>" not in html
    assert "theirs-2b9c: out of memory" in theirs.content.decode()
    assert "mine-7f3a" not in theirs.content.decode()
    assert support.client.get(f"{TENANTS}999999999/models/").status_code == 404
    assert connection.schema_name == "public"


def test_training_jobs_of_all_tenants_are_bounded_and_leave_out_suspended_ones(
    fresh_tenant: TenantHandle, other_store: TenantHandle, staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _model_rows(fresh_tenant, marker="first-51c0", version=1, ndcg=0.2)
    _model_rows(other_store, marker="second-93de", version=1, ndcg=0.3)  # the newer job
    support = staff(group=SUPPORT_GROUP)
    url = f"{TENANTS}training-jobs/"
    assert url.encode() in support.client.get(TENANTS).content  # linked from the tenant list

    both = support.client.get(url, {"status": "failed"}).content.decode()
    assert "first-51c0: out of memory" in both
    assert "second-93de: out of memory" in both
    assert fresh_tenant.slug in both
    assert other_store.slug in both
    assert "first-51c0" not in support.client.get(url, {"status": "succeeded"}).content.decode()

    monkeypatch.setattr(admin_pages, "ALL_JOBS_SHOWN", 1)
    newest = support.client.get(url).content.decode()
    assert "second-93de" in newest
    assert "first-51c0" not in newest
    monkeypatch.undo()

    # At most ALL_JOBS_MAX_TENANTS stores are read: the busiest by events this month.
    tenant_usage_record(tenant_id=fresh_tenant.tenant.pk, usage={"events_this_month": 10**12})
    monkeypatch.setattr(admin_pages, "ALL_JOBS_MAX_TENANTS", 1)
    busiest = support.client.get(url)
    assert busiest.status_code == 200
    assert "first-51c0" in busiest.content.decode()
    assert "second-93de" not in busiest.content.decode()
    assert busiest.context["tenants_read"] == 1
    assert busiest.context["tenants_total"] >= 2
    monkeypatch.undo()

    tenant_suspend(tenant=other_store.tenant, reason="test", actor="test")
    active_only = support.client.get(url).content.decode()
    assert "first-51c0" in active_only
    assert "second-93de" not in active_only


# --------------------------------------------------------------------------- without the group


@pytest.mark.django_db
def test_staff_without_the_group_sees_nothing(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    nobody = staff()
    index = nobody.client.get("/admin/")

    assert index.status_code == 200
    assert "have permission to view or edit anything" in index.content.decode()
    assert b"/admin/tenants/" not in index.content
    for url in [
        TENANTS,
        f"{TENANTS}{tenant_a.tenant.pk}/change/",
        f"{TENANTS}{tenant_a.tenant.pk}/models/",
        f"{TENANTS}training-jobs/",
        "/admin/tenants/apikey/",
        "/admin/tenants/auditlogentry/",
        "/admin/tenants/membership/",
        "/admin/auth/user/",
    ]:
        assert nobody.client.get(url).status_code == 403, url
    assert run_action(nobody.client, TENANTS, "suspend_tenants", [tenant_a.tenant.pk]).status_code == 403
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).status == Tenant.Status.ACTIVE


@pytest.mark.django_db
def test_anonymous_and_store_users_are_sent_to_the_admin_login(tenant_a: TenantHandle) -> None:
    anonymous = Client(HTTP_HOST=ADMIN_HOST)
    response = anonymous.get(f"{TENANTS}training-jobs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")

    owner = member(tenant_a.tenant, Membership.Role.OWNER)
    store_login = anonymous.post("/admin/login/", {"username": owner.email, "password": owner.password})
    assert store_login.status_code == 200  # a store owner is not staff: the login form again
    assert anonymous.get(TENANTS).status_code == 302


@pytest.mark.django_db
def test_the_admin_lives_on_the_public_host_only(tenant_a: TenantHandle, staff: StaffFactory) -> None:
    support = staff(group=SUPPORT_GROUP)
    index = support.client.get("/admin/")
    assert index.status_code == 200
    assert b'id="support-pages"' in index.content  # the cross-tenant pages are linked
    on_store_host = Client(HTTP_HOST=host(tenant_a.tenant))
    on_store_host.force_login(support.user)
    assert on_store_host.get("/admin/").status_code == 404
    assert on_store_host.get("/admin/login/").status_code == 404


def test_a_superusers_plan_edit_is_audited_and_reaches_its_stores_keys(
    fresh_tenant: TenantHandle, staff: StaffFactory
) -> None:
    root = staff(superuser=True)
    plan = PlanFactory(name="Editable", burst=50)
    Tenant.objects.filter(pk=fresh_tenant.tenant.pk).update(plan=plan)
    api = fresh_tenant.client()
    api.get(WHOAMI)
    assert api.get(WHOAMI)["RateLimit-Limit"] == "50"

    fields = {name: getattr(plan, name) for name in ("code", "name", "requests_per_minute", "max_api_keys",
                                                      "trainings_per_day")}  # fmt: skip
    response = root.client.post(f"/admin/tenants/plan/{plan.pk}/change/", {**fields, "burst": 7})
    assert response.status_code == 302, response.content[:3000]
    entry = AuditLogEntry.objects.get(action="plan.update", target=f"plan:{plan.code}")
    assert entry.metadata == {"changed": ["burst"]}
    api.get(WHOAMI)  # finds the cached record gone and reads the key again
    assert api.get(WHOAMI)["RateLimit-Limit"] == "7"
