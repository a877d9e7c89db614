"""Model tasks: training (``training`` queue), scheduling and housekeeping (``default``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from catalog.selectors import customers_most_active
from recommendations.models import erasure_hash
from recommendations.services.erasure import outbox_drain
from recommendations.services.registry import customer_erase_from_models
from recommendations.services.training import (
    TrainingAlreadyRunning,
    TrainingQueueUnavailable,
    TrainingRefused,
    training_due,
    training_job_execute,
    training_job_request,
    training_jobs_reap,
)
from recommendations.training.settings import training_settings_for
from tenants.current import tenant_current
from tenants.models import Tenant

logger = logging.getLogger(__name__)


# Tasks sent from web processes ignore their results: nothing reads them, and subscribing for one
# while Redis blinks breaks Celery's result consumer in that process for good.
@shared_task(
    name="recommendations.tasks.train_model",
    ignore_result=True,
    queue="training",
    soft_time_limit=settings.SHELFWISE_TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.SHELFWISE_TRAINING_TIME_LIMIT,
)
def train_model(job_id: str) -> None:
    """Run one training job in the store's schema (redelivered if the worker dies)."""
    training_job_execute(job_id)


@shared_task(name="recommendations.tasks.trainings_schedule", queue="default")
def trainings_schedule() -> int:
    """Beat: queue a training for every store that is due (schedule or event growth)."""
    queued = 0
    now = timezone.now()
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE):
        with tenant_context(tenant):
            trigger = training_due(now, training_settings_for(tenant.pk))
            if trigger is None:
                continue
            try:
                training_job_request(trigger=trigger, requested_by="system:schedule")
                queued += 1
            except (TrainingAlreadyRunning, TrainingRefused, TrainingQueueUnavailable) as exc:
                logger.info("no training for %s: %s", tenant.slug, exc)
    return queued


@shared_task(name="recommendations.tasks.training_jobs_reap_all", queue="default")
def training_jobs_reap_all() -> int:
    """Beat: re-send or fail training jobs whose worker stopped answering."""
    handled = 0
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            handled += training_jobs_reap(stale_seconds=settings.SHELFWISE_TRAINING_STALE_SECONDS)
    return handled


@shared_task(name="recommendations.tasks.erasure_clean_models", queue="default", ignore_result=True)
def erasure_clean_models(customer_hash: str) -> int:
    """Remove an erased customer (by their erasure hash) from the current store's bundles."""
    return customer_erase_from_models(customer_hash=customer_hash)


@shared_task(name="recommendations.tasks.erase_customer_from_models", queue="default", ignore_result=True)
def erase_customer_from_models(external_id: str) -> int:
    """The same, as queued by earlier releases (with the raw id)."""
    return customer_erase_from_models(customer_hash=erasure_hash(external_id))


@shared_task(name="recommendations.tasks.outbox_drain_all", queue="default", ignore_result=True)
def outbox_drain_all(sweep: bool = False) -> int:
    """Beat, every few seconds: finish what writes owed Redis and the task queue in the stores
    that have work waiting (``services.erasure.outbox_drain``); ``sweep`` visits every store.
    Returns how many stores still have work."""
    stores = Tenant.objects.all() if sweep else Tenant.objects.filter(outbox_since__isnull=False)
    waiting = 0
    for tenant in stores:
        with tenant_context(tenant):
            if not outbox_drain(tenant, sweep=sweep):
                waiting += 1
    return waiting


@shared_task(name="recommendations.tasks.refresh_recommendations", queue="scoring", acks_late=False, ignore_result=True)
def refresh_recommendations(customer_ids: list[str]) -> int:
    """Recompute and cache these customers' default recommendations (after their new events)."""
    from catalog.event_settings import event_settings_for
    from recommendations.serving.engine import CustomerRequest, recommend

    tenant = tenant_current()
    weights = event_settings_for(tenant)
    for customer_id in customer_ids:
        recommend(CustomerRequest(tenant_id=tenant.pk, customer_id=customer_id), weights=weights, warming=True)
    return len(customer_ids)


WARM_CUSTOMERS = 1000
WARM_BATCH = 100


@shared_task(name="recommendations.tasks.warm_recommendations", queue="scoring", ignore_result=True)
def warm_recommendations(version: int) -> int:
    """After a promotion: compute the most active customers' lists with the new version."""
    customers = customers_most_active(limit=WARM_CUSTOMERS)
    for start in range(0, len(customers), WARM_BATCH):
        refresh_recommendations.delay(customers[start : start + WARM_BATCH])
    return len(customers)


@shared_task(name="recommendations.tasks.impressions_flush_all", queue="default")
def impressions_flush_all() -> int:
    """Beat: move impression counters from Redis to PostgreSQL (yesterday's and today's)."""
    from recommendations.services.experiments import impressions_flush

    moved = 0
    today = timezone.now().date()
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE):
        with tenant_context(tenant):
            for day in (today - timedelta(days=1), today):
                moved += impressions_flush(day=day)
    return moved
