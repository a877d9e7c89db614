"""Tasks run on a real Celery worker process in the schema of the tenant that enqueued them."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django_tenants.utils import tenant_context

from catalog.online_features import popular_items
from catalog.tasks import usage_refresh
from tenants.models import Tenant
from tests.factories import event, make_tenant
from tests.fixtures.processes import WorkerProcess
from tests.helpers import TenantHandle


def test_task_runs_in_the_enqueuing_tenants_schema(live_db: None, celery_worker: WorkerProcess) -> None:
    a = make_tenant("celery-a")
    b = make_tenant("celery-b")
    a.client().post("/api/v1/events", {"events": [event(i) for i in range(7)]}, format="json")
    b.client().post("/api/v1/events", {"events": [event(i, item_id=f"b{i}") for i in range(2)]}, format="json")

    with tenant_context(a.tenant):
        result_a = usage_refresh.delay().get(timeout=60)
    with tenant_context(b.tenant):
        result_b = usage_refresh.delay().get(timeout=60)

    assert result_a["schema"] == a.tenant.schema_name
    assert (result_a["items"], result_a["customers"], result_a["events_this_month"]) == (5, 3, 7)
    assert result_b["schema"] == b.tenant.schema_name
    assert (result_b["items"], result_b["customers"]) == (2, 2)
    assert Tenant.objects.get(pk=a.tenant.pk).usage["items"] == 5


def test_request_that_changes_weights_rebuilds_popularity_on_the_worker(
    live_db: None, celery_worker: WorkerProcess
) -> None:
    a: TenantHandle = make_tenant("weights-a")
    b: TenantHandle = make_tenant("weights-b")
    rows = [event(1, item_id="viewed", type="view"), event(2, item_id="carted", type="add_to_cart")]
    a.client().post("/api/v1/events", {"events": rows}, format="json")
    b.client().post("/api/v1/events", {"events": rows}, format="json")
    assert [item for item, _ in popular_items(a.tenant.pk, "pop", 2)] == ["carted", "viewed"]
    redis.Redis.from_url(settings.REDIS_URL).set(f"sw:{b.tenant.pk}:marker", "untouched")

    # Views now count far more than add-to-carts: A's popularity must be recomputed, B's not.
    response = a.client().patch("/api/v1/settings", {"events": {"weights": {"view": 50}}}, format="json")
    assert response.status_code == 200

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if [item for item, _ in popular_items(a.tenant.pk, "pop", 2)] == ["viewed", "carted"]:
            break
        time.sleep(0.2)
    assert [item for item, _ in popular_items(a.tenant.pk, "pop", 2)] == ["viewed", "carted"]
    assert [item for item, _ in popular_items(b.tenant.pk, "pop", 2)] == ["carted", "viewed"]
    assert "features_rebuild" in celery_worker.log_text()
