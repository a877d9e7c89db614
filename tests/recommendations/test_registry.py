"""The model registry without a worker: retention, damaged bundles, erasure, scheduling.
(Single-stage trainings: the registry's rules are the same for a two-stage version, and the
second stage would only add training time here.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from recommendations.models import ErasedCustomer, ModelVersion, erasure_hash
from recommendations.registry.bundles import bundle_load, bundle_verify, model_storage
from recommendations.services.registry import PromotionRefused, model_version_promote
from recommendations.services.training import training_due
from recommendations.training.settings import TrainingSettings
from tests.factories import ModelVersionFactory, load_taste_store, make_tenant
from tests.helpers import TenantHandle, train_now


@pytest.fixture
def trained_store(live_db: None) -> TenantHandle:
    store = make_tenant("registry")
    load_taste_store(store)
    return store


def test_retention_keeps_the_newest_versions_files(trained_store: TenantHandle) -> None:
    trained_store.client().patch("/api/v1/settings", {"training": {"keep_versions": 2}}, format="json")
    made = [train_now(trained_store, algorithm="popularity", two_stage=False) for _ in range(3)]
    active = train_now(trained_store, two_stage=False)  # als: beats popularity, promoted

    with tenant_context(trained_store.tenant):
        states = {v.version: (v.status, v.artifacts_purged_at is not None) for v in ModelVersion.objects.all()}
        assert states == {1: ("ready", True), 2: ("ready", True), 3: ("ready", False), 4: ("active", False)}
        assert bundle_verify(made[0].artifact_path)  # files gone
        assert bundle_verify(active.artifact_path) == []
        with pytest.raises(PromotionRefused, match="removed by retention"):
            model_version_promote(version=ModelVersion.objects.get(version=1), actor="test")


def test_a_damaged_bundle_is_detected_and_never_promoted(trained_store: TenantHandle) -> None:
    first = train_now(trained_store, two_stage=False)
    second = train_now(trained_store, algorithm="popularity", two_stage=False)
    storage = model_storage()
    path = f"{second.artifact_path}/scoring.onnx"
    with storage.open(path, "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) // 2] ^= 0xFF
    storage.delete(path)
    storage.save(path, __import__("django.core.files.base", fromlist=["ContentFile"]).ContentFile(bytes(data)))

    problems = bundle_verify(second.artifact_path)

    assert problems == [f"{path} does not match its checksum"]
    with tenant_context(trained_store.tenant), pytest.raises(PromotionRefused, match="checksum"):
        model_version_promote(version=ModelVersion.objects.get(pk=second.pk), actor="test")
    with tenant_context(trained_store.tenant):
        assert ModelVersion.objects.get(pk=first.pk).status == "active"


def test_erased_customer_leaves_every_stored_model(trained_store: TenantHandle, celery_worker) -> None:
    version = train_now(trained_store, two_stage=False)
    customers_before = bundle_load(version.artifact_path).ids("customers.json")
    assert "c7" in customers_before

    assert trained_store.client().delete("/api/v1/customers/c7").status_code == 204

    import time

    def tombstone() -> ErasedCustomer:
        with tenant_context(trained_store.tenant):
            return ErasedCustomer.objects.get(customer_hash=erasure_hash("c7"))

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and tombstone().cleaned_at is None:
        time.sleep(0.2)
    assert tombstone().cleaned_at is not None  # every bundle rewritten, the Redis traces gone
    with tenant_context(trained_store.tenant):
        rewritten = ModelVersion.objects.get(pk=version.pk)
    # A new revision of the bundle (serving switches to it), the old one's files deleted.
    assert rewritten.artifact_path == f"{version.artifact_path}/r2"
    assert not model_storage().exists(f"{version.artifact_path}/customers.json")
    bundle = bundle_load(rewritten.artifact_path)  # checksums verified on load
    assert "c7" not in bundle.ids("customers.json")
    assert len(bundle.ids("customers.json")) == len(customers_before) - 1
    assert bundle.array("customer_factors.npy").shape[0] == len(customers_before) - 1
    assert bundle.history().shape[0] == len(customers_before) - 1
    assert bundle.manifest["scoring"]["customers"] == len(customers_before) - 1


def test_a_customer_erased_while_a_model_trained_is_not_in_its_bundle(trained_store: TenantHandle) -> None:
    """A training reads the events, then fits for a while: a customer erased meanwhile is in
    what it read. The tombstone (written here as the erasure would, the events left as the
    training saw them) makes the training drop them before the version can be served."""
    with tenant_context(trained_store.tenant):
        ErasedCustomer.objects.create(customer_hash=erasure_hash("c9"))

    version = train_now(trained_store, two_stage=False)

    assert version.artifact_path.endswith("/r2")  # rewritten before it was ready
    bundle = bundle_load(version.artifact_path)
    assert "c9" not in bundle.ids("customers.json")
    assert "c8" in bundle.ids("customers.json")
    assert version.manifest["scoring"]["customers"] == len(bundle.ids("customers.json"))


def test_tombstones_stay_while_a_model_read_before_them_or_their_clean_up_is_pending(
    trained_store: TenantHandle,
) -> None:
    old = train_now(trained_store, algorithm="popularity", two_stage=False)
    with tenant_context(trained_store.tenant):
        pending = ErasedCustomer.objects.create(customer_hash="a" * 64)
        ErasedCustomer.objects.create(customer_hash="b" * 64, cleaned_at=pending.erased_at)
        ErasedCustomer.objects.create(customer_hash="c" * 64, erased_at=old.created_at, cleaned_at=old.created_at)
    train_now(trained_store, two_stage=False)  # retention runs after it: the popularity version is still stored
    with tenant_context(trained_store.tenant):
        assert set(ErasedCustomer.objects.values_list("customer_hash", flat=True)) == {"a" * 64, "b" * 64, "c" * 64}
        ModelVersion.objects.filter(pk=old.pk).update(artifacts_purged_at=old.created_at)
    train_now(trained_store, two_stage=False)
    with tenant_context(trained_store.tenant):
        # Every stored model was created after them: the cleaned ones go, the pending one stays.
        assert set(ErasedCustomer.objects.values_list("customer_hash", flat=True)) == {"a" * 64}


def test_cli_trains_lists_promotes_and_rolls_back(trained_store: TenantHandle, capsys) -> None:
    call_command("model_train", "--tenant", trained_store.slug, "--now")
    call_command("model_train", "--tenant", trained_store.slug, "--now", "--algorithm", "itemknn_cosine")
    call_command("model_promote", "2", "--tenant", trained_store.slug)
    call_command("model_promote", "--tenant", trained_store.slug, "--rollback")
    call_command("model_list", "--tenant", trained_store.slug)

    out = capsys.readouterr().out
    with tenant_context(trained_store.tenant):
        first = ModelVersion.objects.get(version=1)
    assert first.trigger == "cli"
    assert first.algorithm == first.metrics["tuning"]["chosen"]  # the default `auto` chose it
    assert f"version 1 ({first.algorithm}): active" in out
    assert "version 2 (itemknn_cosine) is active" in out
    assert f"version 1 ({first.algorithm}) is active" in out


@pytest.mark.django_db
def test_schedule_trains_first_models_daily_and_on_growth(tenant_a: TenantHandle) -> None:
    settings = TrainingSettings(schedule_hour_utc=3, retrain_growth=0.5, min_interactions=1)
    at_three = datetime(2026, 11, 24, 3, 5, tzinfo=UTC)
    with tenant_context(tenant_a.tenant):
        assert training_due(at_three, settings) is None  # no events yet
    load_taste_store(tenant_a, customers=20)
    with tenant_context(tenant_a.tenant):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_event")  # the schedule reads the planner's row estimate
        assert training_due(at_three, settings) == "growth"  # first model as soon as there is data
        version = ModelVersionFactory(
            version=1, algorithm="als", status="active", data_counts={"events": 480}, trigger="cli"
        )
        ModelVersion.objects.filter(pk=version.pk).update(created_at=at_three - timedelta(days=1))
        assert training_due(at_three, settings) == "schedule"
        assert training_due(at_three.replace(hour=9), settings) is None
        ModelVersion.objects.filter(pk=version.pk).update(data_counts={"events": 100})
        assert training_due(at_three.replace(hour=9), settings) == "growth"
