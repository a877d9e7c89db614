"""What a scenario or an experiment may serve is checked when it is saved (and an experiment's
again when it starts): issue 19.15 found a scenario pointing at version 2^62 and an experiment
at algorithm `zzz`, accepted and started."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from recommendations.models import ModelVersion
from tests.factories import ModelVersionFactory
from tests.helpers import TenantHandle, assert_problem


def experiment(*sources: dict[str, object]) -> dict[str, object]:
    return {
        "name": "check",
        "scenario": "home",
        "variants": [
            {"key": f"v{n}", "share": 100 / len(sources), "source": source} for n, source in enumerate(sources)
        ],
    }


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "version", "version": 2**62},
        {"kind": "version", "version": 7},  # no such version
        {"kind": "algorithm", "algorithm": "zzz"},
    ],
)
def test_a_scenario_cannot_point_at_what_cannot_serve(fresh_tenant: TenantHandle, source: dict[str, object]) -> None:
    api = fresh_tenant.client()

    answer = api.put("/api/v1/scenarios/home", {"default_source": source}, format="json")

    assert_problem(answer, 400, "validation_error")
    assert api.get("/api/v1/scenarios/home").status_code == 404


def test_an_experiment_cannot_be_created_with_a_missing_version_or_algorithm(fresh_tenant: TenantHandle) -> None:
    api = fresh_tenant.client()
    assert api.put("/api/v1/scenarios/home", {}, format="json").status_code == 201

    missing = api.post("/api/v1/experiments", experiment({"kind": "active"}, {"kind": "version", "version": 3}))
    unknown = api.post("/api/v1/experiments", experiment({"kind": "active"}, {"kind": "algorithm", "algorithm": "zzz"}))

    assert_problem(missing, 400, "validation_error")
    assert_problem(unknown, 400, "validation_error")
    assert api.get("/api/v1/experiments").json() == []


def test_a_served_version_is_accepted_and_one_that_lost_its_files_cannot_start(fresh_tenant: TenantHandle) -> None:
    api = fresh_tenant.client()
    with tenant_context(fresh_tenant.tenant):
        version = ModelVersionFactory(version=3, status=ModelVersion.Status.READY, artifact_path="models/x/default/3")
    assert api.put("/api/v1/scenarios/home", {}, format="json").status_code == 201

    created = api.post(
        "/api/v1/experiments",
        experiment({"kind": "active"}, {"kind": "version", "version": 3}, {"kind": "algorithm", "algorithm": "ease"}),
        format="json",
    )
    with tenant_context(fresh_tenant.tenant):
        ModelVersion.objects.filter(pk=version.pk).update(artifacts_purged_at=timezone.now())
    started = api.post(f"/api/v1/experiments/{created.json()['experiment_id']}:start")

    assert created.status_code == 201, created.content
    assert_problem(started, 409, "experiment_conflict")
    assert "cannot serve" in started.json()["detail"]
