"""Training jobs: requesting one (at most one per store at a time) and running it.

A job runs the pipeline, writes and verifies the bundle, applies the release gate and, when it
passes and the store allows it, promotes the new version. A job interrupted by a dying worker is
redelivered by Celery and starts over with the same version number; a version becomes ``ready``
only after every file has been written and verified, so nothing half-made is ever served.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import schema_context

from catalog.event_settings import event_settings_for
from catalog.selectors import events_at_least, events_estimated_count
from recommendations import selectors
from recommendations.models import ErasedCustomer, ModelVersion, TrainingJob
from recommendations.ranking.stage import second_stage
from recommendations.registry.bundles import (
    BundleError,
    bundle_delete,
    bundle_prefix,
    bundle_read_manifest,
    bundle_write,
)
from recommendations.registry.gate import release_gate
from recommendations.services.registry import (
    model_version_drop_customers,
    model_version_promote,
    model_versions_retain,
)
from recommendations.serving.config import serving_changed
from recommendations.training.pipeline import InsufficientData, PipelineOptions, run
from recommendations.training.settings import TrainingSettings, training_settings_for
from shelfwise.celery import BROKER_ERRORS, TRANSIENT_ERRORS
from shelfwise.celery import app as celery_app
from shelfwise.datastores.postgres import current_schema
from shelfwise.observability.metrics import training_observed
from tenants.current import tenant_current
from tenants.models import Plan, Tenant

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15


class TrainingAlreadyRunning(Exception):
    """The store already has a training queued or running."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        super().__init__(f"training job {job.id} is already {job.status}")


class TrainingRefused(ValueError):
    """A training that cannot start (the message says why, e.g. too little data)."""


class TrainingQueueUnavailable(Exception):
    """The broker could not take the training job (nothing was queued)."""


class TrainingQuotaExceeded(TrainingRefused):
    """The plan's trainings per day are used up (a rolling 24 hours)."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def training_due(now: datetime, settings_: TrainingSettings) -> str | None:  # noqa: PLR0911 - a reason each
    """Why the current store should be retrained now (a trigger), or None."""
    if selectors.training_job_running() is not None:
        return None
    latest = selectors.model_version_latest()
    events = events_estimated_count()
    if events < settings_.min_interactions:
        return None
    if latest is None:
        return ModelVersion.Trigger.GROWTH  # enough data for a first model
    if latest.status == ModelVersion.Status.FAILED and latest.created_at > now - timedelta(hours=6):
        return None  # do not hammer a store whose last attempt failed
    if now.hour == settings_.schedule_hour_utc and latest.created_at.date() < now.date():
        return ModelVersion.Trigger.SCHEDULE
    trained_on = int((latest.data_counts or {}).get("events", 0))
    if settings_.retrain_growth > 0 and trained_on and events >= trained_on * (1 + settings_.retrain_growth):
        return ModelVersion.Trigger.GROWTH
    return None


def training_job_request(
    *,
    trigger: str,
    requested_by: str,
    algorithm: str | None = None,
    tune: bool | None = None,
    two_stage: bool | None = None,
    model_name: str = "default",
) -> TrainingJob:
    """Queue a training of the current store's model (sent to the ``training`` queue on commit)."""
    tenant = tenant_current()
    settings = training_settings_for(tenant.pk)
    allowed = Plan.objects.filter(tenants=tenant).values_list("trainings_per_day", flat=True).first()
    if allowed is not None and selectors.trainings_in_window() >= allowed:
        window = TrainingJob.objects.filter(created_at__gte=timezone.now() - selectors.TRAINING_QUOTA_WINDOW)
        oldest = window.order_by("created_at").values_list("created_at", flat=True).first() or timezone.now()
        wait = max(1, int((oldest + selectors.TRAINING_QUOTA_WINDOW - timezone.now()).total_seconds()) + 1)
        raise TrainingQuotaExceeded(
            f"the plan allows {allowed} trainings per 24 hours and they are used up; "
            f"the next is possible in {wait // 3600} h {wait % 3600 // 60} min",
            retry_after_seconds=wait,
        )
    events = events_at_least(settings.min_interactions)
    if events < settings.min_interactions:
        raise TrainingRefused(
            f"not enough data to train: {events} events (need at least {settings.min_interactions}); "
            "recommendations use popularity meanwhile"
        )
    options: dict[str, Any] = {}
    if algorithm:
        options["algorithm"] = algorithm
    if tune is not None:
        options["tune"] = bool(tune)
    if two_stage is not None:
        options["two_stage"] = bool(two_stage)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(
                model_name=model_name, trigger=trigger, requested_by=requested_by[:200], options=options
            )
    except IntegrityError:
        running = selectors.training_job_running()
        if running is None:  # finished in between: try once more
            return training_job_request(
                trigger=trigger, requested_by=requested_by, algorithm=algorithm, tune=tune, two_stage=two_stage,
                model_name=model_name,
            )  # fmt: skip
        raise TrainingAlreadyRunning(running) from None
    if connection.in_atomic_block:
        # The caller's transaction: sent once it commits (a broker outage is then only logged;
        # the reaper sends a job that stayed queued again).
        transaction.on_commit(lambda: _enqueue(job), robust=True)
        return job
    try:
        _enqueue(job)
    except BROKER_ERRORS as exc:
        # Nothing queued it: the job must not hold the store's training slot, nor count against
        # the plan's trainings per day.
        TrainingJob.objects.filter(pk=job.pk).delete()
        raise TrainingQueueUnavailable("the training queue is unavailable; try again in a minute") from exc
    return job


TRAIN_TASK = "recommendations.tasks.train_model"


def _enqueue(job: TrainingJob) -> None:
    # Sent by name: the task module imports this one (the schema travels in the headers).
    celery_app.send_task(TRAIN_TASK, args=(str(job.id),), queue="training", ignore_result=True)


class _Heartbeat:
    """Touches the job row every few seconds from a thread while a long stage runs."""

    def __init__(self, job_id: str, schema: str) -> None:
        self.job_id, self.schema = job_id, schema
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        try:
            with schema_context(self.schema):
                while not self.stop.wait(HEARTBEAT_SECONDS):
                    TrainingJob.objects.filter(pk=self.job_id).update(heartbeat_at=timezone.now())
        except Exception:
            logger.exception("training heartbeat stopped")
        finally:
            connection.close()


def _lock_key(schema: str) -> int:
    return zlib.crc32(f"shelfwise-training:{schema}".encode())


def training_job_execute(job_id: str) -> None:
    """Run a training job (the Celery task's body). Safe to call again for the same job."""
    schema = current_schema()
    with connection.cursor() as cursor:
        # One execution per store at a time, even if a job is delivered twice: a session lock
        # that PostgreSQL releases by itself if this process dies.
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(schema)])
        if not cursor.fetchone()[0]:
            logger.info("training of %s already running elsewhere; job %s left to it", schema, job_id)
            return
    started = time.monotonic()
    try:
        _execute(job_id)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(schema)])
        status = TrainingJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status in {TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED}:
            training_observed(tenant_id=tenant_current().pk, outcome=str(status), seconds=time.monotonic() - started)


def _execute(job_id: str) -> None:
    tenant = tenant_current()
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    settings = training_settings_for(tenant.pk)
    version = _version_for(job, settings, tenant)
    job.status = TrainingJob.Status.RUNNING
    job.attempts += 1
    job.started_at = job.started_at or timezone.now()
    job.heartbeat_at = timezone.now()
    job.version = version
    job.save(update_fields=["status", "attempts", "started_at", "heartbeat_at", "version"])

    last_percent = [-1]

    def progress(stage: str, percent: int) -> None:
        if percent != last_percent[0]:
            last_percent[0] = percent
            TrainingJob.objects.filter(pk=job.pk).update(
                stage=stage[:64], progress=percent, heartbeat_at=timezone.now()
            )

    try:
        with _Heartbeat(str(job.pk), tenant.schema_name):
            result = run(
                _options(job, version, settings, tenant),
                progress,
                second_stage=second_stage if job.options.get("two_stage", settings.two_stage) else None,
            )
            progress("exporting and verifying", 85)
            started = time.perf_counter()
            manifest = bundle_write(
                prefix=version.artifact_path,
                result=result,
                meta={"tenant": tenant.slug, "model": version.name, "version": version.version},
            )
            result.timings["export"] = round(time.perf_counter() - started, 4)
            # Customers erased while this training read and fitted their data leave the bundle
            # before it can be served (the tombstones outlive every model read before them).
            erased = set(ErasedCustomer.objects.values_list("customer_hash", flat=True))
            if erased and model_version_drop_customers(version_id=version.pk, hashes=erased):
                version.refresh_from_db(fields=["artifact_path"])
                manifest = bundle_read_manifest(version.artifact_path)
    except InsufficientData as exc:
        _fail(job, version, str(exc))
        return
    except BundleError as exc:
        _fail(job, version, f"the model could not be exported: {exc}")
        return
    except TRANSIENT_ERRORS:
        raise  # the database or Redis blinked: Celery retries the task, the job carries on
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        _fail(job, version, f"training failed: {exc.__class__.__name__}: {exc}")
        return

    passed, reason = release_gate(algorithm=result.algorithm, metrics=result.metrics, tolerance=settings.gate_tolerance)
    promote = passed and settings.auto_promote
    if passed and not settings.auto_promote:
        reason += "; not promoted: automatic promotion is off (promote it by hand)"
    metrics = dict(result.metrics)
    metrics["tuning"] = result.tuning
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.READY,
        algorithm=result.algorithm,
        params=result.params,
        metrics=metrics,
        timings=result.timings,
        data_counts=result.data_counts,
        manifest=manifest,
        gate={"passed": passed, "promoted": promote, "reason": reason},
        finished_at=timezone.now(),
    )
    version.refresh_from_db()
    serving_changed(tenant_current().pk)  # a new usable version (experiments may name it)
    if promote:
        model_version_promote(version=version, actor="system:release-gate", reason=reason, automatic=True)
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.SUCCEEDED, stage="done", progress=100, finished_at=timezone.now(), active_slot=None
    )
    model_versions_retain(name=version.name, keep=settings.keep_versions)


def _version_for(job: TrainingJob, settings: TrainingSettings, tenant: Tenant) -> ModelVersion:
    """The job's version: created on the first attempt, reused (files cleared) on a retry."""
    if job.version_id is not None:
        version = ModelVersion.objects.get(pk=job.version_id)
        if version.artifact_path:
            bundle_delete(version.artifact_path)
        version.status = ModelVersion.Status.TRAINING
        version.failure_reason = ""
        version.save(update_fields=["status", "failure_reason"])
        return version
    with transaction.atomic():
        number = (ModelVersion.objects.filter(name=job.model_name).aggregate(m=Max("version"))["m"] or 0) + 1
        return ModelVersion.objects.create(
            name=job.model_name,
            version=number,
            algorithm=job.options.get("algorithm", settings.algorithm),
            status=ModelVersion.Status.TRAINING,
            trigger=job.trigger,
            started_at=timezone.now(),
            artifact_path=bundle_prefix(tenant.slug, job.model_name, number),
        )


def _options(job: TrainingJob, version: ModelVersion, settings: TrainingSettings, tenant: Tenant) -> PipelineOptions:
    algorithm = job.options.get("algorithm", settings.algorithm)
    tune = bool(job.options.get("tune", settings.tune))
    params = dict(settings.params.get(algorithm, {}))
    if "tune" not in job.options and not params:
        # A retraining reuses the recipe the last search for the same request chose, until the
        # search is old or the data has grown a lot: tuning is not repeated every night.
        searched = _recent_search(version, algorithm, settings)
        if searched is not None:
            algorithm, params, tune = searched.algorithm, dict(searched.params), False
    active = selectors.model_version_active(name=version.name)
    return PipelineOptions(
        weights=event_settings_for(tenant).weights,
        algorithm=algorithm,
        params=params,
        tune=tune,
        tuning_budget_seconds=settings.tuning_budget_seconds,
        holdout=settings.holdout_fraction,
        half_life_days=settings.time_decay_half_life_days,
        min_interactions=settings.min_interactions,
        min_customers=settings.min_customers,
        min_items=settings.min_items,
        max_evaluation_customers=settings.max_evaluation_customers,
        repeat_aware=None if settings.exclude_seen == "auto" else not settings.exclude_seen,
        compare_with=(active.algorithm, active.params) if active is not None else None,
    )


def _recent_search(version: ModelVersion, algorithm: str, settings: TrainingSettings) -> ModelVersion | None:
    """The last version whose recipe a search for ``algorithm`` chose, if still fresh: searched
    less than ``retune_days`` ago, on at least 1 / (1 + retune_growth) of today's events."""
    searched = selectors.model_version_last_searched(name=version.name, searched=algorithm, excluding=version.pk)
    if searched is None or searched.created_at < timezone.now() - timedelta(days=settings.retune_days):
        return None
    events_then = int((searched.data_counts or {}).get("events", 0))
    grown = int(events_then * (1 + settings.retune_growth)) + 1
    if not events_then or events_at_least(grown) >= grown:  # (a bounded count: once per training)
        return None
    return searched


def _fail(job: TrainingJob, version: ModelVersion, reason: str) -> None:
    if version.artifact_path:
        bundle_delete(version.artifact_path)
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.FAILED, failure_reason=reason, finished_at=timezone.now()
    )
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.FAILED, error=reason, stage="failed", finished_at=timezone.now(), active_slot=None
    )


def training_jobs_reap(*, stale_seconds: int, max_attempts: int = 3) -> int:
    """Jobs whose worker stopped answering: send them again, or fail them after max_attempts."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    handled = 0
    for job in TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff):
        if job.attempts >= max_attempts:
            version = job.version or ModelVersion(pk=None)
            if version.pk:
                _fail(job, version, "the training worker stopped responding")
            else:
                TrainingJob.objects.filter(pk=job.pk).update(
                    status=TrainingJob.Status.FAILED, error="the training worker stopped responding",
                    finished_at=timezone.now(), active_slot=None,
                )  # fmt: skip
        else:
            TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
            _enqueue(job)
        handled += 1
    stale_queue = timezone.now() - timedelta(seconds=stale_seconds * 4)
    for job in TrainingJob.objects.filter(status=TrainingJob.Status.QUEUED, created_at__lt=stale_queue):
        _enqueue(job)  # the message was lost (e.g. the broker's data): send it again
        TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now())
        handled += 1
    return handled
