"""What a write owes Redis (online features, cache invalidation, an erased customer's traces),
and the outbox that keeps it when Redis cannot take it right then.

PostgreSQL is the system of record; Redis holds what is derived from it. When a write cannot
reach Redis (an outage, a fail-over, the circuit breaker open), what it owed is recorded as an
``OnlineBacklog`` row — in the write's own transaction when the outage is already known (the
circuit is open, or always for an erasure), else right after it — and the store is marked
(``Tenant.outbox_since``). A beat task drains marked stores every few seconds
(``online_backlog_drain``): once Redis is back, invalidation and popularity catch up within
seconds, each batch applied exactly once (see ``online_features.features_apply_once``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from django.db import DatabaseError, connection, transaction
from django.db.models import F

from catalog.event_settings import event_settings_for
from catalog.hooks import events_ingested_notify
from catalog.models import Customer, Event, Item, OnlineBacklog
from catalog.online_features import (
    EventFeature,
    features_apply_once,
    features_forget_customer,
    features_record_events,
)
from shelfwise.celery import BROKER_ERRORS
from shelfwise.celery import app as celery_app
from shelfwise.datastores.redis_client import REDIS_ERRORS, circuit_open
from tenants.current import tenant_current
from tenants.services import tenant_outbox_mark

logger = logging.getLogger(__name__)

DRAIN_ROWS_PER_TRANSACTION = 20
DRAIN_ROWS_PER_RUN = 500


# --------------------------------------------------------------------------- events


def online_events_stored(*, tenant_id: int, features: Sequence[EventFeature], customers: Sequence[str]) -> None:
    """Register, in the transaction that stores the events, what Redis must learn of them:
    applied right after commit, or kept in the outbox (with the events' ids) if Redis cannot
    take it. ``features`` must be the stored (not duplicate) events."""
    if not features:
        return
    batch = uuid.uuid4().hex
    event_ids = [feature.event_id for feature in features]
    if circuit_open():
        # Redis is known to be away: the outbox row commits with the events (nothing to lose
        # if this process dies before it could have told Redis).
        _backlog_events(batch, event_ids)
        transaction.on_commit(lambda: tenant_outbox_mark(tenant_id=tenant_id), robust=True)
        return

    def apply() -> None:
        if features_record_events(tenant_id, features, batch=batch):
            events_ingested_notify(tenant_id, list(customers))
            return
        try:
            with transaction.atomic():
                _backlog_events(batch, event_ids)
            tenant_outbox_mark(tenant_id=tenant_id)
        except DatabaseError:
            logger.exception("events stored but neither Redis nor the outbox took their online update")

    transaction.on_commit(apply, robust=True)


def _backlog_events(batch: str, event_ids: list[str]) -> None:
    OnlineBacklog.objects.create(kind=OnlineBacklog.Kind.EVENTS, batch=batch, event_ids=event_ids)


_FEATURES_SQL = f"""
SELECT e.event_id, c.external_id, i.external_id, e.type, e.value, e.timestamp
FROM {Event._meta.db_table} e
JOIN {Customer._meta.db_table} c ON c.id = e.customer_id
JOIN {Item._meta.db_table} i ON i.id = e.item_id
WHERE e.event_id = ANY(%s)
"""  # noqa: S608 - our tables


def _stored_features(event_ids: Sequence[str]) -> list[EventFeature]:
    """The online features of stored events (events erased since are gone, and skipped)."""
    settings = event_settings_for(tenant_current())
    with connection.cursor() as cursor:
        cursor.execute(_FEATURES_SQL, [list(event_ids)])
        rows = cursor.fetchall()
    return [
        EventFeature(customer_id, item_id, timestamp.timestamp(), settings.weight(kind, value), event_id)
        for event_id, customer_id, item_id, kind, value, timestamp in rows
    ]


# --------------------------------------------------------------------------- erasure


def online_forget_record(*, key_hash: str) -> OnlineBacklog:
    """In an erasure's transaction: the customer's Redis traces are to be deleted (durably,
    whatever Redis does next)."""
    return OnlineBacklog.objects.create(kind=OnlineBacklog.Kind.FORGET, customer_key=key_hash)


def online_forget_now(*, tenant_id: int, row: OnlineBacklog) -> bool:
    """After the erasure committed: delete the traces at once; True if done. If Redis cannot
    be reached the row stays and the store is marked for the drain."""
    try:
        features_forget_customer(tenant_id, row.customer_key)
    except REDIS_ERRORS as exc:
        logger.warning("erased customer's Redis traces kept for the outbox drain: %s", exc)
        _mark_quietly(tenant_id)
        return False
    try:
        OnlineBacklog.objects.filter(pk=row.pk).delete()
    except DatabaseError:  # the drain forgets again (idempotent) and deletes it
        _mark_quietly(tenant_id)
    return True


def _mark_quietly(tenant_id: int) -> None:
    try:
        tenant_outbox_mark(tenant_id=tenant_id)
    except DatabaseError:
        logger.exception("could not mark store %s for the outbox drain", tenant_id)


# --------------------------------------------------------------------------- rebuild


def online_rebuild_request() -> None:
    """Recompute the online features from every event (after new event weights), in a task;
    kept in the outbox if the broker cannot take it."""
    try:
        _send_rebuild()
    except BROKER_ERRORS as exc:
        logger.warning("features rebuild kept for the outbox drain: %s", exc)
        OnlineBacklog.objects.create(kind=OnlineBacklog.Kind.REBUILD)
        tenant_outbox_mark(tenant_id=tenant_current().pk)


# --------------------------------------------------------------------------- the drain


def online_backlog_drain(*, tenant_id: int, limit: int = DRAIN_ROWS_PER_RUN) -> int:
    """Do what the current store's outbox holds, oldest first; returns how many rows are left
    (0: empty). Stops at the first Redis or broker failure (the rows stay for the next run).
    Rows are locked while done, so concurrent drains never take the same row."""
    done = 0
    while done < limit:
        with transaction.atomic():
            locked = OnlineBacklog.objects.select_for_update(skip_locked=True).order_by("id")
            rows = list(locked[:DRAIN_ROWS_PER_TRANSACTION])
            if not rows:
                break
            for row in rows:
                try:
                    _drain_row(tenant_id, row)
                except (*REDIS_ERRORS, *BROKER_ERRORS) as exc:
                    OnlineBacklog.objects.filter(pk=row.pk).update(
                        attempts=F("attempts") + 1, last_error=f"{exc.__class__.__name__}: {exc}"[:500]
                    )
                    logger.info("outbox of store %s waits for Redis: %s", tenant_id, exc)
                    return OnlineBacklog.objects.count()
                row.delete()
                done += 1
    return OnlineBacklog.objects.count()


def _drain_row(tenant_id: int, row: OnlineBacklog) -> None:
    if row.kind == OnlineBacklog.Kind.EVENTS:
        features = _stored_features(row.event_ids)
        features_apply_once(tenant_id, features, batch=row.batch.hex if row.batch else str(row.pk))
        events_ingested_notify(tenant_id, sorted({feature.customer_id for feature in features}))
    elif row.kind == OnlineBacklog.Kind.FORGET:
        features_forget_customer(tenant_id, row.customer_key)
    elif row.kind == OnlineBacklog.Kind.REBUILD:
        _send_rebuild()


REBUILD_TASK = "catalog.tasks.features_rebuild"


def _send_rebuild() -> None:
    # Sent by name: the task module imports this package (the schema travels in the headers).
    celery_app.send_task(REBUILD_TASK, queue="default", ignore_result=True)
