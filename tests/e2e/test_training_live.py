"""Training on a real Celery worker against real PostgreSQL/Redis: the whole cycle through the
API, refusals, promotion and rollback, and a worker killed in the middle of a training."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from recommendations.models import ModelVersion, TrainingJob
from recommendations.registry.bundles import bundle_verify, model_storage
from tenants.models import AuditLogEntry
from tests.factories import load_taste_store, make_tenant
from tests.fixtures.processes import WorkerProcess
from tests.helpers import TenantHandle, assert_problem

pytestmark = pytest.mark.slow


def wait_for_job(handle: TenantHandle, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = handle.client().get(f"/api/v1/jobs/{job_id}").json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def versions(handle: TenantHandle) -> dict[int, ModelVersion]:
    connection.set_tenant(handle.tenant)
    try:
        return {v.version: v for v in ModelVersion.objects.all()}
    finally:
        connection.set_schema_to_public()


def test_train_evaluate_export_verify_promote_rollback(live_db: None, celery_worker: WorkerProcess) -> None:
    store = make_tenant("train")
    load_taste_store(store)
    api = store.client()

    queued = api.post("/api/v1/models:train", {}, format="json")
    assert queued.status_code == 202, queued.content
    assert queued["Location"] == f"/api/v1/jobs/{queued.json()['job_id']}"
    busy = api.post("/api/v1/models:train", {}, format="json")
    job = wait_for_job(store, queued.json()["job_id"])

    assert_problem(busy, 409, "training_in_progress")
    assert busy.json()["job_id"] == queued.json()["job_id"]
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["version"], job["promoted"]) == (100, 1, True), job
    assert "beats" in job["promotion_reason"]
    first = api.get("/api/v1/models/1").json()
    assert first["status"] == "active"
    assert first["algorithm"] == first["metrics"]["tuning"]["chosen"]  # `auto` chose it among the candidates
    assert first["metrics"]["model"]["ndcg@10"] > first["metrics"]["fallback"]["ndcg@10"]
    assert {"ndcg@10", "precision@10", "recall@10", "recall@20", "map@10", "coverage@10"} <= set(
        first["metrics"]["model"]
    )
    assert first["gate"]["passed"] is True
    assert first["data_counts"]["items"] == 96
    stored = versions(store)[1]
    assert bundle_verify(stored.artifact_path) == []
    assert set(stored.manifest["files"]) >= {
        "scoring.onnx",
        "similar.onnx",
        "items.json",
        "customers.json",
        "history.npz",
        "customer_factors.npy",
        "item_factors.npy",
    } | ({"gram.npy"} if first["algorithm"] == "als" else set())  # ALS's fold-in needs its Gram matrix
    assert all(len(entry["sha256"]) == 64 for entry in stored.manifest["files"].values())
    assert stored.manifest["libraries"]["implicit"]
    assert AuditLogEntry.objects.filter(
        tenant_slug=store.slug, action="model.promote", target="model:default:v1"
    ).exists()

    # A popularity model is trained but not promoted: it cannot beat itself.
    second_job = api.post("/api/v1/models:train", {"algorithm": "popularity"}, format="json").json()
    assert wait_for_job(store, second_job["job_id"])["status"] == "succeeded"
    second = api.get("/api/v1/models/2").json()
    assert second["status"] == "ready"
    assert "baseline" in second["gate"]["reason"]

    promoted = api.post("/api/v1/models/2:promote", {"reason": "try the baseline"}, format="json")
    listed = {v["version"]: v["status"] for v in api.get("/api/v1/models").json()}
    rolled_back = api.post("/api/v1/models:rollback", {}, format="json")

    assert promoted.json()["status"] == "active"
    assert listed == {1: "retired", 2: "active"}
    assert rolled_back.json()["version"] == 1
    assert {v: m.status for v, m in versions(store).items()} == {1: "active", 2: "retired"}
    audit = AuditLogEntry.objects.filter(tenant_slug=store.slug, action="model.promote").order_by("created_at")
    assert [entry.metadata["previous"] for entry in audit] == [None, 1, 2]


def test_training_with_too_little_data_is_refused_and_nothing_is_created(live_db: None) -> None:
    store = make_tenant("tiny")
    store.client().post(
        "/api/v1/events",
        {"events": [{"customer_id": "c", "item_id": f"i{n}", "type": "view"} for n in range(5)]},
        format="json",
    )

    response = store.client().post("/api/v1/models:train", {}, format="json")

    body = assert_problem(response, 422, "insufficient_data")
    assert "5 events (need at least 100)" in body["detail"]
    assert versions(store) == {}


def test_promotion_of_a_missing_version_or_bad_request(live_db: None) -> None:
    store = make_tenant("promo")
    api = store.client()

    assert_problem(api.post("/api/v1/models/7:promote", {}, format="json"), 404, "not_found")
    assert_problem(api.post("/api/v1/models:rollback", {}, format="json"), 409, "promotion_refused")
    assert_problem(api.post("/api/v1/models:train", {"algorithm": "magic"}, format="json"), 400, "validation_error")
    assert_problem(api.get("/api/v1/jobs/not-a-uuid"), 404, "not_found")


def test_worker_killed_mid_training_is_retried_and_no_half_model_is_served(
    live_db: None, celery_worker: WorkerProcess
) -> None:
    from shelfwise.celery import app

    store = make_tenant("kill")
    load_taste_store(store, customers=400, items=200, events_per_customer=30)
    api = store.client()
    # Slow enough to be caught in the middle of ALS.
    api.patch("/api/v1/settings", {"training": {"params": {"als": {"factors": 128, "iterations": 400}}}}, format="json")
    job_id = api.post("/api/v1/models:train", {"algorithm": "als", "tune": False}, format="json").json()["job_id"]

    deadline = time.monotonic() + 120
    worker_pid = None
    while time.monotonic() < deadline and worker_pid is None:
        job = api.get(f"/api/v1/jobs/{job_id}").json()
        if job["stage"].startswith("training"):
            for tasks in (app.control.inspect(timeout=1).active() or {}).values():
                worker_pid = next((t["worker_pid"] for t in tasks if job_id in str(t["args"])), worker_pid)
        time.sleep(0.1)
    assert worker_pid is not None, "the training never reached its training stage"
    during = versions(store)[1]
    os.kill(worker_pid, signal.SIGKILL)

    finished = wait_for_job(store, job_id, timeout=300)

    assert during.status == "training"  # never ready while files were being made
    assert finished["status"] == "succeeded", finished
    assert finished["attempts"] >= 2
    final = versions(store)
    assert list(final) == [1]  # the retry reused the version, no stray ones
    assert final[1].status == "active"
    assert bundle_verify(final[1].artifact_path) == []
    connection.set_tenant(store.tenant)
    assert TrainingJob.objects.get(pk=job_id).active_slot is None


def test_deleting_a_tenant_removes_its_model_files(live_db: None, celery_worker: WorkerProcess) -> None:
    from tenants.services import tenant_delete

    store = make_tenant("gone")
    load_taste_store(store)
    job_id = store.client().post("/api/v1/models:train", {}, format="json").json()["job_id"]
    assert wait_for_job(store, job_id)["status"] == "succeeded"
    storage = model_storage()
    assert storage.listdir(f"models/{store.slug}")[0]

    tenant_delete(tenant=store.tenant, actor="test")

    assert not storage.exists(f"models/{store.slug}/default/1/manifest.json")
