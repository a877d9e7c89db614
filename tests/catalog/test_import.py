"""Bulk import commands and the demo store, through the same services as the API."""

from __future__ import annotations

import io
import json
import lzma
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from catalog.importers import retail_categories
from catalog.models import Customer, Event, Item
from tenants.models import Tenant
from tests.helpers import ROOT, TenantHandle

pytestmark = pytest.mark.django_db

RETAIL = ROOT / "data" / "online-retail" / "online_retail.csv.xz"


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, "--no-progress", stdout=out)
    return out.getvalue()


def count(handle: TenantHandle, model) -> int:
    connection.set_tenant(handle.tenant)
    try:
        return model.objects.count()
    finally:
        connection.set_schema_to_public()


@pytest.fixture
def retail_sample(tmp_path: Path) -> Path:
    """The first 3,000 lines of the shipped Online Retail file (real data, small)."""
    with lzma.open(RETAIL, "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(3001)]
    path = tmp_path / "retail.csv"
    path.write_text("".join(lines))
    return path


def test_online_retail_events_import_counts_and_is_idempotent(tenant_a: TenantHandle, retail_sample: Path) -> None:
    first = run("import_events", str(retail_sample), "--tenant", tenant_a.slug, "--format", "online-retail")
    stored = count(tenant_a, Event)
    second = run("import_events", str(retail_sample), "--tenant", tenant_a.slug, "--format", "online-retail")

    assert "rows read:   3000" in first
    assert stored > 1500
    assert f"stored:      {stored}" in first
    assert "no customer id" in first
    assert f"duplicates:  {stored}" in second  # re-importing stores nothing twice
    assert count(tenant_a, Event) == stored
    connection.set_tenant(tenant_a.tenant)
    event = Event.objects.select_related("customer", "item").get(event_id="or-536365-85123A-1")
    assert (event.customer.external_id, event.item.external_id, event.type, event.value) == (
        "17850",
        "85123A",
        "purchase",
        6.0,
    )
    assert event.timestamp.isoformat() == "2010-12-01T08:26:00+00:00"  # 08:26 in London in winter is UTC
    assert event.properties == {"unit_price": 2.55, "country": "United Kingdom"}
    assert event.order_id == "536365"  # the invoice: the basket it was bought in
    assert Event.objects.filter(order_id="536365").count() == 7


def test_online_retail_items_import(tenant_a: TenantHandle, retail_sample: Path) -> None:
    out = run("import_items", str(retail_sample), "--tenant", tenant_a.slug, "--format", "online-retail")

    connection.set_tenant(tenant_a.tenant)
    item = Item.objects.get(external_id="85123A")
    assert "created:" in out
    assert item.title == "White Hanging Heart T-Light Holder"
    assert str(item.price) == "2.5500"
    assert item.currency == "GBP"
    assert "candles and lights" in item.categories
    assert "home decor" in item.categories
    assert not Item.objects.filter(external_id="POST").exists()


def test_csv_import_reports_bad_rows_with_line_numbers(tenant_a: TenantHandle, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,customer_id,item_id,type,value,timestamp,properties\n"
        'a1,c1,i1,view,,2026-01-01T10:00:00Z,"{""page"": ""home""}"\n'
        "a2,c1,i2,teleport,,2026-01-01T10:00:00Z,\n"
        "a3,c2,i1,rating,4,2026-01-01T10:00:00Z,\n"
        "a4,c2,,purchase,,2026-01-01T10:00:00Z,\n"
    )

    out = run("import_events", str(path), "--tenant", tenant_a.slug, "--format", "csv")

    assert "stored:      2" in out
    assert "rejected:    2" in out
    assert "line 3: type:" in out
    assert "line 5: item_id:" in out


def test_jsonl_import(tenant_a: TenantHandle, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = [{"event_id": f"j{i}", "customer_id": "c", "item_id": f"i{i}", "type": "view"} for i in range(5)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\nnot json\n")

    out = run("import_events", str(path), "--tenant", tenant_a.slug, "--format", "jsonl")

    assert "stored:      5" in out
    assert "not valid JSON" in out


def test_movielens_import_reads_ratings_and_items(tenant_a: TenantHandle, tmp_path: Path) -> None:
    data = tmp_path / "u.data"
    data.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    items = tmp_path / "u.item"
    items.write_text("242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")

    run("import_items", str(items), "--tenant", tenant_a.slug, "--format", "movielens")
    run("import_events", str(data), "--tenant", tenant_a.slug, "--format", "movielens")

    connection.set_tenant(tenant_a.tenant)
    assert Item.objects.get(external_id="242").categories == ["Comedy"]
    assert sorted(Event.objects.values_list("value", flat=True)) == [3.0, 3.0]
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"196", "186"}


def test_import_command_validates_arguments(tenant_a: TenantHandle, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        run("import_events", str(tmp_path / "missing.csv"), "--tenant", tenant_a.slug, "--format", "csv")
    with pytest.raises(CommandError, match="no tenant"):
        run("import_events", str(RETAIL), "--tenant", "nobody-here", "--format", "csv")


def test_retail_categories_are_derived_from_words() -> None:
    assert retail_categories("SET OF 3 CAKE TINS PANTRY DESIGN") == ["kitchen", "storage"]
    assert retail_categories("PAPER CHAIN KIT 50'S CHRISTMAS") == ["christmas", "stationery"]
    assert retail_categories("ZZZ") == []


def test_demo_setup_provisions_imports_and_is_idempotent(retail_sample: Path, tmp_path: Path) -> None:
    demo_file = tmp_path / "demo.json"

    call_command("demo_setup", "--file", str(demo_file), "--data", str(retail_sample), stdout=io.StringIO())
    saved = json.loads(demo_file.read_text())
    tenant = Tenant.objects.get(slug="demo")
    events_once = count(TenantHandle(tenant, ""), Event)
    call_command("demo_setup", "--file", str(demo_file), "--data", str(retail_sample), stdout=io.StringIO())

    assert json.loads(demo_file.read_text())["api_key"] == saved["api_key"]  # reused, not rotated
    assert events_once > 1500
    assert count(TenantHandle(tenant, ""), Event) == events_once
    assert TenantHandle(tenant, saved["api_key"]).client().get("/api/v1/whoami").json()["tenant"] == "demo"
    assert oct(demo_file.stat().st_mode & 0o777) == "0o600"
    again = json.loads(demo_file.read_text())
    assert again["support_password"] == saved["support_password"]  # reused too
    agent = get_user_model().objects.get(email=again["support_email"])
    assert agent.check_password(again["support_password"])
    assert agent.is_staff
    assert not agent.is_superuser
    assert list(agent.groups.values_list("name", flat=True)) == ["support"]
    assert Tenant.objects.get(slug="demo").usage["items"] > 0  # usage shown in the admin at once
