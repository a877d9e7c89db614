"""Reads of the model registry, training jobs, scenarios and experiments (the current store's)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from recommendations.models import Experiment, ModelVersion, Scenario, TrainingJob

DEFAULT_MODEL = "default"
MAX_VERSION_NUMBER = 2**31 - 1  # the column's range: a larger number cannot exist
# What a plan's `trainings_per_day` counts: trainings requested in a rolling window.
TRAINING_QUOTA_WINDOW = timedelta(hours=24)


def model_version_get(*, version: int, name: str = DEFAULT_MODEL) -> ModelVersion | None:
    """One version by its number."""
    if not 0 <= version <= MAX_VERSION_NUMBER:
        return None
    return ModelVersion.objects.filter(name=name, version=version).first()


def model_version_list(*, name: str | None = None, status: str | None = None) -> QuerySet[ModelVersion]:
    """Versions, newest first (a queryset: the caller slices it)."""
    versions = ModelVersion.objects.order_by("-version")
    if name is not None:
        versions = versions.filter(name=name)
    if status is not None:
        versions = versions.filter(status=status)
    return versions


def model_version_active(*, name: str = DEFAULT_MODEL) -> ModelVersion | None:
    """The version served by default, if any."""
    return ModelVersion.objects.filter(name=name, status=ModelVersion.Status.ACTIVE).first()


def model_version_latest() -> ModelVersion | None:
    """The newest version, whatever its state."""
    return ModelVersion.objects.order_by("-version").first()


def model_version_last_searched(*, name: str, searched: str, excluding: int | None = None) -> ModelVersion | None:
    """The newest trained version whose recipe a search for ``searched`` (an algorithm or
    ``auto``) chose, with its parameters tuned (retrainings reuse it)."""
    versions = ModelVersion.objects.filter(
        name=name,
        metrics__tuning__searched=searched,
        metrics__tuning__tuned=True,
        status__in=[ModelVersion.Status.READY, ModelVersion.Status.ACTIVE, ModelVersion.Status.RETIRED],
    )
    if excluding is not None:
        versions = versions.exclude(pk=excluding)
    return versions.order_by("-version").first()


def model_version_repeat_profile(*, name: str = DEFAULT_MODEL) -> dict[str, object] | None:
    """The repeat rate the latest training measured (``repeat_rate``, ``repeat_aware``), or None
    before any training measured one."""
    counts = (
        ModelVersion.objects.filter(name=name, data_counts__has_key="repeat_aware")
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("-version")
        .values_list("data_counts", flat=True)
        .first()
    )
    if counts is None:
        return None
    return {"repeat_rate": counts.get("repeat_rate"), "repeat_aware": bool(counts.get("repeat_aware"))}


def model_version_rollback_exists(*, name: str = DEFAULT_MODEL) -> bool:
    """Whether an earlier served version still has its files (a rollback is possible)."""
    return ModelVersion.objects.filter(
        name=name, status=ModelVersion.Status.RETIRED, artifacts_purged_at__isnull=True
    ).exists()


def training_job_get(*, job_id: uuid.UUID) -> TrainingJob | None:
    """One job, with its version (one query)."""
    return TrainingJob.objects.select_related("version").filter(pk=job_id).first()


def training_job_list(*, limit: int = 50) -> list[TrainingJob]:
    """The newest jobs, with their versions (one query)."""
    return list(TrainingJob.objects.select_related("version").order_by("-created_at")[:limit])


def training_job_running() -> TrainingJob | None:
    """The job holding the store's training slot (queued or running), if any."""
    return TrainingJob.objects.filter(active_slot=True).first()


def trainings_in_window() -> int:
    """Trainings requested in the last 24 hours (what the plan's ``trainings_per_day`` counts)."""
    return TrainingJob.objects.filter(created_at__gte=timezone.now() - TRAINING_QUOTA_WINDOW).count()


def scenario_get(*, key: str) -> Scenario | None:
    return Scenario.objects.filter(key=key).first()


def scenario_list() -> QuerySet[Scenario]:
    return Scenario.objects.order_by("key")


def experiment_get(*, experiment_id: int) -> Experiment | None:
    """One experiment, with its scenario (one query)."""
    return Experiment.objects.select_related("scenario").filter(pk=experiment_id).first()


def experiment_list(*, limit: int = 200) -> list[Experiment]:
    """The newest experiments, with their scenarios (one query)."""
    return list(Experiment.objects.select_related("scenario").order_by("-created_at")[:limit])
