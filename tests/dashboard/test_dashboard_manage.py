"""The dashboard's steering pages through Django's test client: experiments, settings and usage,
the team and its invitations. Each test that changes something uses a store of its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from recommendations.models import Experiment, Scenario, TrainingJob
from recommendations.services.experiments import experiment_results
from recommendations.services.training import TrainingQuotaExceeded, training_job_request
from tenants.models import AuditLogEntry, Invitation, Membership, Tenant
from tests.factories import ExperimentFactory, PlanFactory, ScenarioFactory, TrainingJobFactory, member
from tests.helpers import TenantHandle, host


def logged_in(tenant: Tenant, role: str = Membership.Role.OWNER) -> tuple[Client, str]:
    login = member(tenant, role)
    client = Client(HTTP_HOST=host(tenant))
    response = client.post("/dashboard/login/", {"username": login.email, "password": login.password})
    assert response.status_code == 302, response.content
    return client, login.email


def variant_rows(*rows: dict[str, object], extra: int = 2) -> dict[str, object]:
    """The POST data of the variant formset (prefix ``v``) as the page sends it: two pre-filled
    rows, then blank rows whose selects still post their defaults."""
    data: dict[str, object] = {"v-TOTAL_FORMS": len(rows) + extra, "v-INITIAL_FORMS": 2, "v-MIN_NUM_FORMS": 2}
    for index, row in enumerate(rows):
        for field, value in row.items():
            data[f"v-{index}-{field}"] = value
    for index in range(len(rows), len(rows) + extra):
        data[f"v-{index}-kind"] = "active"  # an untouched row still posts its select's default
    return data


# --------------------------------------------------------------------------- experiments


def test_an_admin_adds_a_scenario_runs_an_experiment_and_sees_its_results(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    admin, _ = logged_in(store, Membership.Role.ADMIN)
    assert b"No scenarios yet" in admin.get("/dashboard/experiments/").content

    bad = admin.post("/dashboard/experiments/", {"key": "Product Page", "kind": "version"})
    assert bad.status_code == 200
    assert b"lowercase letters" in bad.content
    assert b"Which version?" in bad.content
    saved = admin.post("/dashboard/experiments/", {"key": "product-page", "name": "Product page", "kind": "trending"})
    assert saved.status_code == 302
    with tenant_context(store):
        assert Scenario.objects.get(key="product-page").default_source == {"kind": "trending"}

    shares_off = admin.post(
        "/dashboard/experiments/new/",
        {
            "name": "Model vs popular",
            "scenario": "product-page",
            **variant_rows(
                {"key": "model", "share": 60, "kind": "active"}, {"key": "popular", "share": 30, "kind": "popularity"}
            ),
        },
    )
    assert shares_off.status_code == 200
    assert b"add up to 90, not 100" in shares_off.content
    with tenant_context(store):
        assert not Experiment.objects.exists()  # nothing stored of the refused form

    created = admin.post(
        "/dashboard/experiments/new/",
        {
            "name": "Model vs popular",
            "scenario": "product-page",
            **variant_rows(
                {"key": "model", "share": 50, "kind": "active"}, {"key": "popular", "share": 50, "kind": "popularity"}
            ),
        },
    )
    assert created.status_code == 302, created.content[:2000]
    with tenant_context(store):
        experiment = Experiment.objects.get()
    assert [v["key"] for v in experiment.variants] == ["model", "popular"]
    assert created["Location"] == f"/dashboard/experiments/{experiment.pk}/"

    api = fresh_tenant.client()
    seed = [{"type": "view", "customer_id": f"s{n % 4}", "item_id": f"i{n % 6}"} for n in range(24)]
    assert api.post("/api/v1/events", {"events": seed}, format="json").status_code in {200, 201}
    assert admin.post(f"/dashboard/experiments/{experiment.pk}/start/").status_code == 302
    ids = {}
    for n in range(30):
        body = api.get(f"/api/v1/customers/c{n}/recommendations", {"scenario": "product-page", "count": "3"}).json()
        ids[f"c{n}"] = body["recommendation_id"]
        assert body["recommendation_id"].startswith(f"rec_{experiment.pk}_")
    clicked = [f"c{n}" for n in range(10)]
    events = [{"type": "view", "customer_id": c, "item_id": "i1", "recommendation_id": ids[c]} for c in clicked]
    assert api.post("/api/v1/events", {"events": events}, format="json").status_code in {200, 201}

    page = admin.get(f"/dashboard/experiments/{experiment.pk}/")
    assert page.status_code == 200
    with tenant_context(store):
        results = experiment_results(experiment=Experiment.objects.get())
    html = page.content.decode()
    for variant in results["variants"]:
        row = re.search(rf'<tr id="variant-{variant["key"]}">(.*?)</tr>', html, re.S)
        assert row is not None
        cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
        assert cells[3] == str(variant["impressions"])
        assert cells[4] == str(variant["clicks"])
        low, high = variant["ctr_ci95"]
        assert f"({low * 100:.2f} % – {high * 100:.2f} %)" in row.group(1)
    assert sum(v["impressions"] for v in results["variants"]) == 30
    assert sum(v["clicks"] for v in results["variants"]) == 10
    assert 'data-chart="experiment_ctr"' in html
    assert 'id="chart-data"' in html

    # A running experiment's scenario cannot be deleted; stopping brings the default back.
    admin.post("/dashboard/scenarios/product-page/delete/")
    with tenant_context(store):
        assert Scenario.objects.filter(key="product-page").exists()
    assert admin.post(f"/dashboard/experiments/{experiment.pk}/stop/").status_code == 302
    with tenant_context(store):
        assert Experiment.objects.get().status == Experiment.Status.STOPPED
    body = api.get("/api/v1/customers/c1/recommendations", {"scenario": "product-page"}).json()
    assert body["recommendation_id"].startswith("rec_0_")
    actions = set(AuditLogEntry.objects.filter(tenant=store).values_list("action", flat=True))
    assert {"scenario.save", "experiment.create", "experiment.start", "experiment.stop"} <= actions


def test_a_viewer_cannot_change_experiments(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    with tenant_context(store):
        scenario = ScenarioFactory(key="home")
        experiment = ExperimentFactory(
            name="draft",
            scenario=scenario,
            variants=[
                {"key": "a", "share": 50.0, "source": {"kind": "active"}},
                {"key": "b", "share": 50.0, "source": {"kind": "trending"}},
            ],
        )
    viewer, _ = logged_in(store, Membership.Role.VIEWER)
    page = viewer.get("/dashboard/experiments/")
    assert page.status_code == 200
    assert b"home" in page.content
    assert b"New experiment" not in page.content
    assert b"Save scenario" not in page.content
    assert viewer.post("/dashboard/experiments/", {"key": "sneaky", "kind": "active"}).status_code == 403
    assert viewer.post(f"/dashboard/experiments/{experiment.pk}/start/").status_code == 403
    assert viewer.post("/dashboard/scenarios/home/delete/").status_code == 403
    assert viewer.get("/dashboard/experiments/new/").status_code == 403
    assert viewer.post("/dashboard/experiments/new/", {"name": "x", "scenario": "home"}).status_code == 403
    with tenant_context(store):
        assert Experiment.objects.get().status == Experiment.Status.DRAFT
        assert not Scenario.objects.filter(key="sneaky").exists()


# --------------------------------------------------------------------------- settings and usage


def test_an_owner_changes_event_weights_and_the_retrain_schedule(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    owner, _ = logged_in(store)
    page = owner.get("/dashboard/settings/")
    assert page.status_code == 200
    assert b'name="events-weight_purchase" value="10.0"' in page.content
    assert b"automatic decides once a training has measured how often shoppers buy again" in page.content

    weights = {f"events-weight_{t}": w for t, w in {"view": 1, "add_to_cart": 4, "purchase": 10, "rating": 1}.items()}
    weights["events-weight_remove_from_cart"] = -2
    saved = owner.post(
        "/dashboard/settings/",
        {"section": "events", **weights, "events-weight_view": 2.5, "events-new_type": "wishlist",
         "events-new_weight": 3, "events-auto_create_items": "on"},
    )  # fmt: skip
    assert saved.status_code == 302
    events = Tenant.objects.get(pk=store.pk).settings["events"]
    assert events["weights"]["view"] == 2.5
    assert events["weights"]["wishlist"] == 3
    assert events["auto_create_items"] is True
    assert events["auto_create_customers"] is False

    refused = owner.post("/dashboard/settings/", {"section": "events", **weights, "events-weight_view": 500})
    assert refused.status_code == 200
    assert b"less than or equal to 100" in refused.content
    assert Tenant.objects.get(pk=store.pk).settings["events"]["weights"]["view"] == 2.5  # unchanged

    removed = owner.post(
        "/dashboard/settings/",
        {"section": "events", **weights, "events-weight_wishlist": 3, "events-remove_wishlist": "on"},
    )
    assert removed.status_code == 302
    assert "wishlist" not in Tenant.objects.get(pk=store.pk).settings["events"]["weights"]

    training = {
        "section": "training",
        "training-algorithm": "ease",
        "training-exclude_seen": "false",
        "training-schedule_hour_utc": "",
        "training-retrain_growth": "0.5",
        "training-gate_tolerance": "0.05",
        "training-keep_versions": "3",
    }
    assert owner.post("/dashboard/settings/", training).status_code == 302
    stored = Tenant.objects.get(pk=store.pk).settings["training"]
    assert stored["algorithm"] == "ease"
    assert stored["exclude_seen"] is False  # "recommend them too"
    assert stored["schedule_hour_utc"] is None
    assert stored["auto_promote"] is False
    assert stored["keep_versions"] == 3
    assert owner.post("/dashboard/settings/", {**training, "training-keep_versions": "1"}).status_code == 200
    assert Tenant.objects.get(pk=store.pk).settings["training"]["keep_versions"] == 3
    assert AuditLogEntry.objects.filter(tenant=store, action="settings.update").count() == 3


def test_usage_shows_the_plans_limits_against_live_counts(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    api = fresh_tenant.client()
    items = [{"item_id": f"i{n}", "title": f"Item {n}"} for n in range(7)]
    assert api.post("/api/v1/items:batch", {"items": items}, format="json").status_code == 200
    viewer, _ = logged_in(store, Membership.Role.VIEWER)
    page = viewer.get("/dashboard/settings/").content.decode()
    plan = store.plan
    row = re.search(r"<tr><td>Items in the catalog</td><td>(\d+)</td><td>(\w+)</td>", page)
    assert row is not None
    assert row.groups() == ("7", str(plan.max_items))
    assert re.search(rf"<td>Trainings in the last 24 hours</td><td>0</td><td>{plan.trainings_per_day}</td>", page)
    # A viewer sees the settings but every field is disabled and there is no save button.
    assert "Save event settings" not in page
    assert 'name="events-weight_view"' in page
    assert re.search(r'<input type="number" name="events-weight_view"[^>]* disabled', page)
    assert viewer.post("/dashboard/settings/", {"section": "training"}).status_code == 403


def test_the_plans_trainings_per_day_are_enforced(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    plan = PlanFactory(name="Tiny", trainings_per_day=2)
    Tenant.objects.filter(pk=store.pk).update(plan=plan)
    with tenant_context(Tenant.objects.get(pk=store.pk)):
        for hours_ago in (30, 20, 1):  # one outside the rolling 24 hours
            job = TrainingJobFactory(status=TrainingJob.Status.FAILED, active_slot=None)
            TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=hours_ago))
        with pytest.raises(TrainingQuotaExceeded) as refused:
            training_job_request(trigger="manual", requested_by="test")
    # The oldest job inside the window (20 h ago) leaves it in about 4 hours.
    assert 3.9 * 3600 < refused.value.retry_after_seconds <= 4 * 3600 + 2
    response = fresh_tenant.client().post("/api/v1/models:train", {}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "training_quota_exceeded"
    assert 3.9 * 3600 < int(response["Retry-After"]) <= 4 * 3600 + 2


# --------------------------------------------------------------------------- team


def _link(message: mail.EmailMessage) -> str:
    found = re.search(r"https?://[^/\s]+(/dashboard/join/[^/\s]+/)", str(message.body))
    assert found is not None, message.body
    return found.group(1)


def test_an_owner_invites_a_new_person_who_joins_once(fresh_tenant: TenantHandle, mailoutbox: list) -> None:
    store = fresh_tenant.tenant
    owner, owner_email = logged_in(store)
    sent = owner.post("/dashboard/team/", {"email": "New.Person@Example.com", "role": "admin"})
    assert sent.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@example.com"]
    link = _link(mailoutbox[0])
    invitation = Invitation.objects.get(tenant=store)
    assert link.split("/")[-2] not in (invitation.token_hash, "")  # the token, not its stored hash

    visitor = Client(HTTP_HOST=host(store))
    form = visitor.get(link)
    assert form.status_code == 200
    assert b"Choose a password" in form.content
    weak = visitor.post(link, {"password1": "123", "password2": "123"})
    assert weak.status_code == 200
    assert b"too short" in weak.content
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()
    joined = visitor.post(link, {"password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"})
    assert joined.status_code == 302
    assert joined["Location"] == "/dashboard/"
    assert visitor.get("/dashboard/").status_code == 200  # logged in as the new member
    membership = Membership.objects.get(tenant=store, user__email="new.person@example.com")
    assert membership.role == Membership.Role.ADMIN
    assert Client(HTTP_HOST=host(store)).get(link).status_code == 410  # used once
    assert AuditLogEntry.objects.filter(tenant=store, action="team.join", actor="user:new.person@example.com").exists()
    assert AuditLogEntry.objects.filter(tenant=store, action="team.invite", actor=f"user:{owner_email}").exists()


def test_an_existing_account_joins_with_its_password_and_tokens_stay_in_their_store(
    fresh_tenant: TenantHandle, tenant_b: TenantHandle, mailoutbox: list
) -> None:
    store = fresh_tenant.tenant
    elsewhere = member(tenant_b.tenant, Membership.Role.VIEWER)  # an account from another store
    owner, _ = logged_in(store)
    owner.post("/dashboard/team/", {"email": elsewhere.email, "role": "viewer"})
    link = _link(mailoutbox[-1])
    # The same token on another store's host is no invitation at all.
    assert Client(HTTP_HOST=host(tenant_b.tenant)).get(link).status_code == 410
    visitor = Client(HTTP_HOST=host(store))
    assert b"already have a Shelfwise account" in visitor.get(link).content
    wrong = visitor.post(link, {"password": "not-the-password"})
    assert wrong.status_code == 200
    assert b"wrong password" in wrong.content
    assert not Membership.objects.filter(tenant=store, user__email=elsewhere.email).exists()
    assert visitor.post(link, {"password": elsewhere.password}).status_code == 302
    assert Membership.objects.filter(tenant=store, user__email=elsewhere.email).exists()
    assert Membership.objects.filter(tenant=tenant_b.tenant, user__email=elsewhere.email).exists()


def test_guessing_an_existing_accounts_password_on_an_invitation_is_throttled(
    fresh_tenant: TenantHandle, tenant_b: TenantHandle, mailoutbox: list
) -> None:
    store = fresh_tenant.tenant
    elsewhere = member(tenant_b.tenant, Membership.Role.VIEWER)
    owner, _ = logged_in(store)
    owner.post("/dashboard/team/", {"email": elsewhere.email, "role": "viewer"})
    link = _link(mailoutbox[-1])
    visitor = Client(HTTP_HOST=host(store), REMOTE_ADDR="192.0.2.77")
    for n in range(10):
        visitor.post(link, {"password": f"guess-{n}"})

    right = visitor.post(link, {"password": elsewhere.password})

    assert right.status_code == 200
    assert b"Too many failed attempts" in right.content
    assert not Membership.objects.filter(tenant=store, user__email=elsewhere.email).exists()


def test_password_reset_mails_are_limited_per_account(fresh_tenant: TenantHandle, mailoutbox: list) -> None:
    login = member(fresh_tenant.tenant)
    browser = Client(HTTP_HOST=host(fresh_tenant.tenant), REMOTE_ADDR="192.0.2.78")

    answers = [browser.post("/dashboard/password-reset/", {"email": login.email}) for _ in range(8)]

    assert {answer.status_code for answer in answers} == {302}  # the page answers the same
    assert len([m for m in mailoutbox if login.email in m.to]) == 5  # SHELFWISE_RESET_MAILS_PER_HOUR


def test_revoked_and_expired_invitations_do_not_work(fresh_tenant: TenantHandle, mailoutbox: list) -> None:
    store = fresh_tenant.tenant
    owner, _ = logged_in(store)
    owner.post("/dashboard/team/", {"email": "late@example.com", "role": "viewer"})
    first = _link(mailoutbox[-1])
    owner.post("/dashboard/team/", {"email": "late@example.com", "role": "admin"})  # replaces the first
    second = _link(mailoutbox[-1])
    visitor = Client(HTTP_HOST=host(store))
    assert visitor.get(first).status_code == 410
    assert visitor.get(second).status_code == 200
    Invitation.objects.filter(tenant=store, revoked_at__isnull=True).update(expires_at=timezone.now())
    assert visitor.get(second).status_code == 410
    owner.post("/dashboard/team/", {"email": "late@example.com", "role": "admin"})
    third = _link(mailoutbox[-1])
    invitation = Invitation.objects.get(
        tenant=store, revoked_at__isnull=True, accepted_at__isnull=True, expires_at__gt=timezone.now()
    )
    assert owner.post(f"/dashboard/team/invitations/{invitation.pk}/revoke/").status_code == 302
    assert visitor.get(third).status_code == 410
    some_member = Membership.objects.filter(tenant=store).select_related("user").first()
    assert some_member is not None
    already = owner.post("/dashboard/team/", {"email": some_member.user.email, "role": "viewer"})
    assert already.status_code == 200
    assert b"already a member" in already.content


def test_only_owners_manage_the_team_and_the_last_owner_stays(fresh_tenant: TenantHandle) -> None:
    store = fresh_tenant.tenant
    admin, _ = logged_in(store, Membership.Role.ADMIN)
    assert admin.get("/dashboard/team/").status_code == 403
    assert admin.post("/dashboard/team/", {"email": "x@example.com", "role": "owner"}).status_code == 403
    assert b"/dashboard/team/" not in admin.get("/dashboard/").content  # no menu entry either
    assert not Invitation.objects.filter(tenant=store).exists()

    Membership.objects.filter(tenant=store, role=Membership.Role.OWNER).delete()  # the creator's, if any
    owner, owner_email = logged_in(store)
    me = Membership.objects.get(tenant=store, user__email=owner_email)
    demoted = owner.post(f"/dashboard/team/members/{me.pk}/role/", {f"m{me.pk}-role": "viewer"}, follow=True)
    assert b"at least one owner" in demoted.content
    assert Membership.objects.get(pk=me.pk).role == Membership.Role.OWNER
    owner.post(f"/dashboard/team/members/{me.pk}/remove/")
    assert Membership.objects.filter(pk=me.pk).exists()

    other = Membership.objects.get(tenant=store, role=Membership.Role.ADMIN)
    owner.post(f"/dashboard/team/members/{other.pk}/role/", {f"m{other.pk}-role": "owner"})
    assert Membership.objects.get(pk=other.pk).role == Membership.Role.OWNER
    owner.post(f"/dashboard/team/members/{me.pk}/role/", {f"m{me.pk}-role": "viewer"})
    assert Membership.objects.get(pk=me.pk).role == Membership.Role.VIEWER  # another owner exists now
    assert owner.get("/dashboard/team/").status_code == 403  # and I am no owner any more


def test_team_pages_of_another_store_are_not_reachable(fresh_tenant: TenantHandle, tenant_b: TenantHandle) -> None:
    owner_of_b, _ = logged_in(tenant_b.tenant)
    b_member = Membership.objects.filter(tenant=tenant_b.tenant).first()
    assert b_member is not None
    mine, _ = logged_in(fresh_tenant.tenant)
    # An owner here cannot touch B's memberships by id.
    assert mine.post(f"/dashboard/team/members/{b_member.pk}/remove/").status_code == 404
    assert Membership.objects.filter(pk=b_member.pk).exists()
    assert owner_of_b.get("/dashboard/team/").status_code == 200


def test_an_invitation_whose_email_fails_says_so(fresh_tenant: TenantHandle, settings) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the SMTP connection is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    owner, _ = logged_in(fresh_tenant.tenant)
    response = owner.post("/dashboard/team/", {"email": "unlucky@example.com", "role": "viewer"}, follow=True)
    assert response.status_code == 200
    assert b"could not be sent" in response.content
    assert b"Invitation sent" not in response.content
