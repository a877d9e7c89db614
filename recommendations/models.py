"""Tenant-schema models: the versioned model registry and training jobs."""

from __future__ import annotations

import hashlib
import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone


class ModelVersion(models.Model):
    """One trained model of a store: immutable once ready; served when active."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual (API or dashboard)"
        SCHEDULE = "schedule", "Schedule"
        GROWTH = "growth", "Event growth"
        CLI = "cli", "Command line"

    name = models.CharField(max_length=64, default="default")
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Seconds per stage: extract, split, train, evaluate, refit, export, verify, total.
    timings = models.JSONField(default=dict, blank=True)
    # events, interactions, customers, items (of the data the served model was fitted on)
    data_counts = models.JSONField(default=dict, blank=True)
    # {"protocol": ..., "model": {...}, "popularity": {...}, "active": {...} | null}
    metrics = models.JSONField(default=dict, blank=True)
    # {"passed": bool, "reason": str} from the release gate
    gate = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    failure_reason = models.TextField(blank=True)
    artifacts_purged_at = models.DateTimeField(null=True, blank=True)
    # Why serving cannot load this version's bundle (e.g. a file fails its checksum), as a serving
    # process last found it; empty while it loads. Serving falls back to an earlier version meanwhile.
    serving_problem = models.TextField(blank=True)
    serving_problem_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-version"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            # At most one served version per model name.
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(status="active"), name="model_version_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.algorithm}, {self.status})"

    @property
    def promotable(self) -> bool:
        return self.status in {self.Status.READY, self.Status.RETIRED} and self.artifacts_purged_at is None


class TrainingJob(models.Model):
    """A request to train a model version, with its progress; at most one runs per store."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_name = models.CharField(max_length=64, default="default")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    trigger = models.CharField(max_length=16, choices=ModelVersion.Trigger.choices)
    requested_by = models.CharField(max_length=200, blank=True)
    # Per-run choices: {"algorithm": ..., "tune": bool}
    options = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # True while queued or running, NULL afterwards: the unique constraint makes "one training
    # at a time per store" a database guarantee rather than a race.
    active_slot = models.BooleanField(null=True, default=True, editable=False)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["active_slot"], name="training_job_one_at_a_time"),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status}, {self.progress}%)"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class ErasedCustomer(models.Model):
    """A customer erased since models were trained: their stored vectors must not be used.

    Holds a hash, never the id itself; removed once no stored model contains the customer."""

    customer_hash = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField(default=timezone.now)
    # Serving declines the customer (even a cached list) until every stored bundle is rewritten
    # without them and their Redis traces are gone; then this is set.
    cleaned_at = models.DateTimeField(null=True, blank=True)
    cleanup_sent_at = models.DateTimeField(null=True, blank=True)  # the last clean-up task queued
    online_key = models.CharField(max_length=40, blank=True)  # catalog.online_features.customer_key_hash

    def __str__(self) -> str:
        return self.customer_hash[:12]


def erasure_hash(external_id: str) -> str:
    """How an erased customer is recorded (ErasedCustomer): a hash, never the id itself."""
    return hashlib.sha256(external_id.encode()).hexdigest()


class Scenario(models.Model):
    """A place in the store that shows recommendations (home, product page, cart, …) and what
    serves it: a default variant, or a running experiment between variants.

    A variant's ``source`` is ``{"kind": "active"}`` (the active model version),
    ``{"kind": "version", "version": 7}``, ``{"kind": "algorithm", "algorithm": "ease"}`` (the
    newest usable version of it), ``{"kind": "popularity"}`` or ``{"kind": "trending"}``."""

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100, blank=True)
    default_source = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["key"]

    def __str__(self) -> str:
        return self.key


class Experiment(models.Model):
    """Traffic of a scenario split between variants by a stable hash of (experiment, customer)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=100)
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="experiments")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    # [{"key": "control", "share": 90, "source": {...}}, {"key": "canary", "share": 10, ...}]
    variants = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # One running experiment per scenario.
            models.UniqueConstraint(
                fields=["scenario"], condition=models.Q(status="running"), name="experiment_one_running_per_scenario"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ImpressionCount(models.Model):
    """How many recommendation lists were shown, per day, scenario and variant (flushed from Redis
    counters by a periodic task): the denominator of click-through rates."""

    day = models.DateField()
    scenario = models.CharField(max_length=40)
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=40)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["day", "scenario", "experiment", "variant"],
                name="impression_count_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.scenario}/{self.variant}: {self.count}"
