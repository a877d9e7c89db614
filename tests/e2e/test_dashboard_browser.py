"""The dashboard in a real headless Chromium (Playwright, Debian's Chromium) against gunicorn,
with a real Celery worker for training. Screenshots of failures go to .dev/test-artifacts/."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tenants.models import Membership
from tests.factories import Login, load_taste_store, make_tenant, member
from tests.fixtures.processes import AppServer, WorkerProcess
from tests.helpers import TenantHandle, host

pytestmark = pytest.mark.slow


@pytest.fixture
def store(live_db: None) -> TenantHandle:
    handle = make_tenant("dash")
    load_taste_store(handle)
    return handle


def base(server: AppServer, handle: TenantHandle) -> str:
    return f"http://{host(handle.tenant)}:{server.port}/dashboard/"


def log_in(page: Any, url: str, login: Login) -> None:
    page.goto(url + "login/")
    page.get_by_label("E-mail").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/(\?.*)?$"))


def test_overview_charts_render_with_the_stores_data(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    owner = member(store.tenant, Membership.Role.OWNER)
    log_in(page, base(app_server, store), owner)

    assert page.get_by_role("heading", name="Overview").is_visible()
    for name in ("events", "traffic", "outcomes", "cache"):
        page.wait_for_selector(f"canvas[data-chart={name}][data-rendered=true]")
    # The events chart holds the store's events of the period (its data ends at its latest event).
    plotted = page.evaluate(
        "() => document.getElementById('chart-events').chart.data.datasets"
        ".reduce((sum, d) => sum + d.data.reduce((a, b) => a + b, 0), 0)"
    )
    assert plotted > 0
    assert page.locator(".tile").filter(has_text="events").inner_text().startswith("5760")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.reload()
    page.wait_for_selector("canvas[data-chart=events][data-rendered=true]")
    assert errors == []  # nothing blocked by the Content-Security-Policy


def test_customer_lookup_shows_why_they_see_their_recommendations(
    page: Any, app_server: AppServer, store: TenantHandle
) -> None:
    log_in(page, base(app_server, store), member(store.tenant, Membership.Role.VIEWER))
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search customers").fill("c17")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="c17", exact=True).click()

    page.get_by_role("heading", name="Recommended right now").wait_for()
    why = page.locator(".answer[data-scenario=default] .why").inner_text()
    assert "strategy fallback" in why  # no model trained yet: popular items
    assert "no model" in why
    assert page.locator(".answer[data-scenario=default] ol.recs li").count() == 10
    assert page.locator("table tbody tr").count() > 0  # the history


def test_train_watch_progress_then_roll_back_and_promote(
    page: Any, app_server: AppServer, celery_worker: WorkerProcess, store: TenantHandle
) -> None:
    log_in(page, base(app_server, store), member(store.tenant, Membership.Role.ADMIN))
    page.get_by_role("link", name="Models").click()
    assert "No model yet" in page.content()

    for version in (1, 2):
        page.get_by_role("button", name="Train now").click()
        page.wait_for_selector("#job-bar")
        page.wait_for_selector(".job-state[data-status=succeeded]", timeout=120_000)
        assert page.locator("#job-bar").get_attribute("value") == "100"
        page.get_by_role("link", name="Refresh the list").click()
        page.wait_for_selector(f"#version-{version}")

    assert "active" in page.locator("#version-2").inner_text()  # the release gate promoted it
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    page.get_by_text("Rolled back: version 1 is served again").wait_for()
    assert "active" in page.locator("#version-1").inner_text()
    assert "retired" in page.locator("#version-2").inner_text()

    page.once("dialog", lambda dialog: dialog.dismiss())  # a dismissed confirmation changes nothing
    page.locator("#promote-2").click()
    assert "active" in page.locator("#version-1").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#promote-2").click()
    page.get_by_text("Version 2 is now served.").wait_for()
    assert "active" in page.locator("#version-2").inner_text()


def test_create_a_key_copy_it_and_revoke_it(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    log_in(page, base(app_server, store), member(store.tenant, Membership.Role.OWNER))
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("checkout")
    page.get_by_role("button", name="Create key").click()

    raw = page.get_by_label("The new key").input_value()
    assert raw.startswith("sk_live_")
    assert api_status(app_server, raw) == 200
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()

    key_id = raw.split("_")[2]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#revoke-{key_id}").click()
    page.get_by_text("is revoked").wait_for()
    assert "revoked" in page.locator(f"#key-{key_id}").inner_text()
    assert api_status(app_server, raw) == 401


def test_a_viewer_has_no_controls(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    log_in(page, base(app_server, store), member(store.tenant, Membership.Role.VIEWER))
    page.goto(base(app_server, store) + "models/")
    assert page.get_by_role("button", name="Train now").count() == 0
    page.goto(base(app_server, store) + "keys/")
    assert page.get_by_role("button", name="Create key").count() == 0
    assert page.get_by_role("button", name="Revoke").count() == 0


def test_a_user_of_another_store_is_refused_on_its_host(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    other = make_tenant("dashother")
    outsider = member(other.tenant, Membership.Role.OWNER)
    page.goto(base(app_server, store) + "login/")
    page.get_by_label("E-mail").fill(outsider.email)
    page.get_by_label("Password").fill(outsider.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").wait_for()
    assert "/login/" in page.url
    response = page.goto(base(app_server, store) + "keys/")
    assert response is not None
    assert "/login/" in page.url  # still not in


def test_run_an_experiment_and_read_its_intervals(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    url = base(app_server, store)
    log_in(page, url, member(store.tenant, Membership.Role.ADMIN))
    page.get_by_role("link", name="Experiments").click()
    page.get_by_label("Key").fill("home")
    page.get_by_role("button", name="Save scenario").click()
    page.get_by_text("Scenario “home” added.").wait_for()

    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Name").fill("Model, popular or trending")
    assert page.locator("fieldset[id^=variant-]").count() == 4  # two given, two blank
    page.locator("#id_v-0-share").fill("40")
    page.locator("#id_v-1-share").fill("40")
    page.locator("#id_v-2-key").fill("third")
    page.locator("#id_v-2-share").fill("20")
    page.locator("#id_v-2-kind").select_option("trending")  # the fourth row stays blank
    page.get_by_role("button", name="Create draft").click()
    page.get_by_text("created as a draft").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Started:").wait_for()
    experiment_id = re.search(r"/experiments/(\d+)/", page.url).group(1)  # type: ignore[union-attr]

    api = store.client()
    deadline = time.monotonic() + 10  # other processes pick the change up within seconds
    while (
        not api.get("/api/v1/customers/c0/recommendations", {"scenario": "home"})
        .json()["recommendation_id"]
        .startswith(f"rec_{experiment_id}_")
    ):
        assert time.monotonic() < deadline, "the experiment never started serving"
        time.sleep(0.2)
    for n in range(40):
        body = api.get(f"/api/v1/customers/c{n}/recommendations", {"scenario": "home", "count": "5"}).json()
        if n % 3 == 0:
            event = {"type": "view", "customer_id": f"c{n}", "item_id": body["items"][0]["item_id"],
                     "recommendation_id": body["recommendation_id"]}  # fmt: skip
            assert api.post("/api/v1/events", {"events": [event]}, format="json").status_code in {200, 201}
    page.reload()
    for name in ("experiment_ctr", "experiment_conversion"):
        page.wait_for_selector(f"canvas[data-chart={name}][data-rendered=true]")
    bars = page.evaluate("() => document.getElementById('chart-ctr').chart.data.datasets[0].data")
    keys = ("control", "challenger", "third")
    shown = [int(page.locator(f"#variant-{key} td").nth(3).inner_text()) for key in keys]
    assert sum(shown) == 41  # the 40, and the poll that saw the experiment start
    for key, (low, high) in zip(keys, bars, strict=True):
        interval = page.locator(f"#variant-{key} td").nth(5).inner_text()  # "1.23 % (0.50 % – 3.00 %)"
        assert f"({low:.2f} % – {high:.2f} %)" in interval
        assert low < high  # some shown, so a real interval
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped:").wait_for()


def test_every_page_fits_a_phone(page: Any, app_server: AppServer, store: TenantHandle) -> None:
    url = base(app_server, store)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, url, member(store.tenant, Membership.Role.OWNER))
    for path in ("", "items/", "customers/", "models/", "experiments/", "keys/", "settings/", "team/"):
        page.goto(url + path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"/dashboard/{path} is {width} px wide"  # wide tables scroll inside their card


def api_status(server: AppServer, raw_key: str) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {raw_key}"})
    status = connection.getresponse().status
    connection.close()
    return status
