"""/metrics on a real gunicorn with two workers and a real Celery worker sharing one Prometheus
multi-process directory: the series are there, and they add up across processes."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from catalog.tasks import usage_refresh
from recommendations.models import ModelVersion
from tests.factories import ModelVersionFactory
from tests.fixtures.processes import METRICS_TOKEN, AppServer, WorkerProcess, call, process_total, scrape, total
from tests.helpers import TenantHandle

pytestmark = pytest.mark.slow


def whoami_count(pid: str, tenant: str) -> float:
    """What one process's own metrics file says about this store's whoami requests."""
    return process_total(pid, "shelfwise_http_requests_total", route="api/v1/whoami", tenant=tenant)


def test_metrics_are_not_public(app_server: AppServer) -> None:
    assert call(app_server, "GET", "/metrics")[0] == 404
    assert call(app_server, "GET", "/metrics", token="not-the-token")[0] == 404
    assert call(app_server, "GET", "/metrics", token=METRICS_TOKEN)[0] == 200


def test_requests_events_and_recommendations_add_up_across_workers(
    app_server: AppServer, fresh_tenant: TenantHandle
) -> None:
    tenant = str(fresh_tenant.tenant.pk)
    workers = subprocess.run(["pgrep", "-P", str(app_server.process.pid)], capture_output=True, text=True, check=True)
    worker_pids = set(workers.stdout.split())
    assert len(worker_pids) == 2
    # Parallel requests until each gunicorn worker has answered some of this store's (an idle
    # worker may otherwise take them all): /metrics must then add up both workers' files.
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while sent < 24 or not all(whoami_count(pid, tenant) for pid in worker_pids):
            assert sent < 400, "one gunicorn worker never answered"
            statuses = list(pool.map(lambda _: call(app_server, "GET", "/api/v1/whoami", key=fresh_tenant.key)[0],
                                     range(8)))  # fmt: skip
            assert statuses == [200] * 8
            sent += 8
    events = [{"type": "view", "customer_id": f"c{n % 4}", "item_id": f"i{n % 7}"} for n in range(25)]
    assert call(app_server, "POST", "/api/v1/events", key=fresh_tenant.key, body={"events": events})[0] == 200
    for _ in range(2):  # a miss, then a hit
        assert call(app_server, "GET", "/api/v1/customers/c1/recommendations", key=fresh_tenant.key)[0] == 200

    samples = scrape(app_server)

    whoami = {"route": "api/v1/whoami", "method": "GET", "tenant": tenant}
    assert total(samples, "shelfwise_http_requests_total", status="200", **whoami) == sent
    assert total(samples, "shelfwise_http_request_duration_seconds_count", **whoami) == sent
    assert total(samples, "shelfwise_events_ingested_total", tenant=tenant) == 25
    assert total(samples, "shelfwise_recommendations_total", tenant=tenant, endpoint="customer") == 2
    assert total(samples, "shelfwise_recommendation_cache_total", tenant=tenant, result="miss") == 1
    assert total(samples, "shelfwise_recommendation_cache_total", tenant=tenant, result="hit") == 1
    assert {labels["queue"] for labels, _ in samples["shelfwise_celery_queue_length"]} == {
        "default",
        "training",
        "scoring",
    }


def test_task_runs_and_the_served_model_show(
    app_server: AppServer, celery_worker: WorkerProcess, fresh_tenant: TenantHandle
) -> None:
    with tenant_context(fresh_tenant.tenant):
        usage_refresh.delay().get(timeout=60)
        ModelVersionFactory(
            version=3,
            algorithm="als",
            status=ModelVersion.Status.ACTIVE,
            metrics={"model": {"ndcg@10": 0.25}},
            finished_at=timezone.now() - timedelta(hours=1),
        )
    samples = scrape(app_server)
    task = {"task": "catalog.tasks.usage_refresh", "outcome": "success"}
    assert total(samples, "shelfwise_celery_task_duration_seconds_count", **task) >= 1
    tenant = str(fresh_tenant.tenant.pk)
    assert total(samples, "shelfwise_model_active_version", tenant=tenant) == 3
    assert total(samples, "shelfwise_model_active_ndcg_at_10", tenant=tenant) == 0.25
    assert 3500 < total(samples, "shelfwise_model_active_age_seconds", tenant=tenant) < 3700
