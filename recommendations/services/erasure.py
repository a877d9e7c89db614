"""An erased customer, as serving sees it: recorded with the erasure, declined from the next
request in every process, removed from every stored bundle by a task — and the outbox drain
that finishes what an outage interrupted.

The erasure's transaction (``catalog.services.customers.customer_erase``) writes an
``ErasedCustomer`` tombstone (a hash, never the id) and a new serving stamp: each process
re-reads its routing on its next request and, until the clean-up is done, declines the customer
— no cached list, no trained vector, only the non-personal answer. The clean-up task rewrites
the bundles without them (a new revision each, which every process loads instead of the old
one) and deletes their Redis traces once more (a list cached by a request racing the erasure);
then the tombstone is marked clean.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from catalog.online_features import customer_key_hash
from catalog.services.online import online_backlog_drain
from recommendations.models import ErasedCustomer, erasure_hash
from recommendations.serving.config import serving_changed
from shelfwise.celery import BROKER_ERRORS
from shelfwise.celery import app as celery_app
from tenants.models import Tenant
from tenants.services import tenant_outbox_clear, tenant_outbox_mark

logger = logging.getLogger(__name__)

CLEAN_TASK = "recommendations.tasks.erasure_clean_models"
# A clean-up task not finished after this long is sent again (it is idempotent).
RESEND_AFTER = timedelta(seconds=60)
RESEND_PER_RUN = 100


def erasure_record(tenant_id: int, customer_id: str) -> None:
    """In the erasure's transaction: the tombstone, a new serving stamp, and (after commit)
    the bundle clean-up task — or, if the broker cannot take it, a mark for the drain."""
    customer_hash = erasure_hash(customer_id)
    now = timezone.now()
    ErasedCustomer.objects.update_or_create(
        customer_hash=customer_hash,
        defaults={
            "erased_at": now,
            "cleaned_at": None,
            "cleanup_sent_at": now,
            "online_key": customer_key_hash(customer_id),
        },
    )
    serving_changed(tenant_id)

    def send() -> None:
        try:
            _send_clean(customer_hash)
        except BROKER_ERRORS as exc:
            logger.warning("erasure clean-up kept for the outbox drain: %s", exc)
            ErasedCustomer.objects.filter(customer_hash=customer_hash).update(cleanup_sent_at=None)
            tenant_outbox_mark(tenant_id=tenant_id)

    transaction.on_commit(send, robust=True)


def _send_clean(customer_hash: str) -> None:
    # By name, with the hash only: the raw id never travels through the broker.
    celery_app.send_task(CLEAN_TASK, args=(customer_hash,), queue="default", ignore_result=True)


def erasures_resend() -> int:
    """Send again the clean-ups of the current store that did not finish (a lost task, a broker
    outage); returns how many erasures are still not clean."""
    due = timezone.now() - RESEND_AFTER
    pending = ErasedCustomer.objects.filter(cleaned_at__isnull=True)
    for row in pending.filter(cleanup_sent_at__isnull=True)[:RESEND_PER_RUN]:
        _resend(row)
    for row in pending.filter(cleanup_sent_at__lt=due)[:RESEND_PER_RUN]:
        _resend(row)
    return pending.count()


def _resend(row: ErasedCustomer) -> None:
    _send_clean(row.customer_hash)  # raises without a broker: the drain stops and comes back
    ErasedCustomer.objects.filter(pk=row.pk).update(cleanup_sent_at=timezone.now())


def outbox_drain(tenant: Tenant, *, sweep: bool = False) -> bool:
    """Finish what the store's writes owe Redis and the task queue (in its schema); True when
    nothing is left. The store's outbox mark is cleared only if no new work arrived meanwhile.
    ``sweep``: a periodic visit of every store (marks one that has work but lost its mark)."""
    seen = tenant.outbox_since
    try:
        left = online_backlog_drain(tenant_id=tenant.pk)
        pending = erasures_resend()
    except BROKER_ERRORS as exc:
        logger.info("outbox of store %s waits for the broker: %s", tenant.slug, exc)
        return False
    if left or pending:
        if seen is None and sweep:
            tenant_outbox_mark(tenant_id=tenant.pk)
        return False
    if seen is not None:
        tenant_outbox_clear(tenant_id=tenant.pk, seen=seen)
    return True
