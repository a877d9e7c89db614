"""Tenant-schema models: the store's items, customers (shoppers) and their events.

Events are the system of record for everything learned about shoppers; they are append-only
and idempotent by the store's ``event_id``. Foreign keys are enforced by PostgreSQL but deletes
are done by the services in SQL (a shopper's erasure can span millions of events).
"""

from __future__ import annotations

from typing import ClassVar

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.db.models import Q


class Item(models.Model):
    """A product in the store's catalog, identified by the store's own id (e.g. its SKU)."""

    id = models.BigAutoField(primary_key=True)
    external_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    categories = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    price = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    in_stock = models.BooleanField(default=True)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # GET /items?updated_since=… pages by (updated_at, id).
            models.Index(fields=["updated_at", "id"], name="item_updated_id"),
            GinIndex(fields=["categories"], name="item_categories_gin"),
            # Serving reads the deleted items' ids for every version's mask, every 30 s per
            # process: a partial index keeps that off a sequential scan of the catalog.
            models.Index(fields=["external_id"], condition=Q(deleted_at__isnull=False), name="item_deleted"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Customer(models.Model):
    """A shopper, identified by the store's id for them (anonymous session ids allowed)."""

    id = models.BigAutoField(primary_key=True)
    external_id = models.CharField(max_length=255, unique=True)
    anonymous = models.BooleanField(default=False)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["updated_at", "id"], name="customer_updated_id"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """Something a shopper did with an item: view, add_to_cart, purchase, rating, …"""

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=128, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.DO_NOTHING, related_name="+")
    type = models.CharField(max_length=40)
    value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField()
    # NULL (not "") when absent: the partial index below covers attributed events only.
    recommendation_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The visit and the order (basket) the event belongs to, when the store sends them: what
    # was bought together. NULL when absent, as above.
    session_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    order_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # A shopper's history, newest first (GET /customers/{id}/events, fold-in).
            models.Index(fields=["customer", "-timestamp", "-id"], name="event_customer_time"),
            # Per-item counts by type (popularity, dashboard).
            models.Index(fields=["item", "type"], name="event_item_type"),
            # Time ranges over an append-mostly table: a BRIN index is tiny and cheap to maintain.
            BrinIndex(fields=["timestamp"], name="event_time_brin"),
            BrinIndex(fields=["received_at"], name="event_received_brin"),
            # Attribution of events to recommendations (experiments, CTR).
            models.Index(
                fields=["recommendation_id"],
                name="event_recommendation",
                condition=models.Q(recommendation_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.event_id


class UsageCounter(models.Model):
    """Quota counters kept in the same transactions as the writes they count.

    ``period`` is ``all`` for running totals (live items, customers) or ``YYYY-MM`` for monthly
    ones (events)."""

    metric = models.CharField(max_length=32)
    period = models.CharField(max_length=7)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["metric", "period"], name="usage_metric_period_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric}[{self.period}]={self.value}"


class OnlineBacklog(models.Model):
    """Work for Redis (or the task queue) that a write could not finish there: the outbox.

    Written when Redis was unreachable as events were stored or a customer was erased (in the
    erasure's own transaction), drained every few seconds by ``catalog.services.online``:

    - ``events``: fold these stored events into the online features (exactly once: each batch
      carries a marker written with its increments) and invalidate the customers' cached lists;
    - ``forget``: delete everything under an erased customer's Redis prefix (by its key hash:
      the raw id is never stored here);
    - ``rebuild``: recompute the online features from all events (new event weights)."""

    class Kind(models.TextChoices):
        EVENTS = "events", "Events"
        FORGET = "forget", "Forget a customer"
        REBUILD = "rebuild", "Rebuild"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    batch = models.UUIDField(null=True, blank=True)
    event_ids = ArrayField(models.TextField(), default=list, blank=True)
    customer_key = models.CharField(max_length=40, blank=True)  # online_features.customer_key_hash
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
