"""Test objects: stores, plans, people, catalog rows and API bodies, model versions, experiments,
and generated stores with real structure (factory_boy).

Rows of a store's schema are created in the schema the connection is in (``tenant_context``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from factory.django import DjangoModelFactory

from catalog.models import Customer, Event, Item
from recommendations.models import Experiment, ModelVersion, Scenario, TrainingJob
from recommendations.training.data import EventArrays
from tenants.models import Membership, Plan, Tenant
from tenants.services import tenant_create
from tests.helpers import TenantHandle, train_now

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- stores and plans


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tenant(prefix: str = "t", *, plan: str = "pro", **kwargs: Any) -> TenantHandle:
    """A store (schema migrated, domain, first secret key), committed when the test's database
    access is; ``kwargs`` go to ``tenant_create`` (e.g. ``owner_email``)."""
    connection.set_schema_to_public()
    created = tenant_create(slug=unique_slug(prefix), name=f"Store {prefix}", plan_code=plan, actor="test", **kwargs)
    return TenantHandle(created.tenant, created.raw_key)


class PlanFactory(DjangoModelFactory[Plan]):
    """A plan of its own (unique code); quotas and limits as given, the model's defaults else."""

    class Meta:
        model = Plan

    code = factory.LazyFunction(lambda: f"plan-{uuid.uuid4().hex[:8]}")
    name = factory.LazyAttribute(lambda plan: plan.code.title())


# --------------------------------------------------------------------------- people


@dataclass
class Login:
    email: str
    password: str


class UserFactory(DjangoModelFactory[Any]):
    """A person with a password (``password``; the default is random)."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.LazyFunction(lambda: f"user-{secrets.token_hex(4)}@example.test")
    username = factory.SelfAttribute("email")
    password = factory.django.Password(factory.LazyFunction(lambda: secrets.token_urlsafe(12)))


def member(tenant: Tenant, role: str = Membership.Role.OWNER) -> Login:
    """A user with ``role`` in ``tenant`` (committed when the test's database access is)."""
    password = secrets.token_urlsafe(12)
    user = UserFactory(email=f"{role}-{secrets.token_hex(4)}@{tenant.slug}.example", password=password)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return Login(user.email, password)


# --------------------------------------------------------------------------- catalog rows (in the current schema)


class ItemFactory(DjangoModelFactory[Item]):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"item-{n}")
    created_at = NOW
    updated_at = NOW


class CustomerFactory(DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer-{n}")
    created_at = NOW
    updated_at = NOW


class EventFactory(DjangoModelFactory[Event]):
    class Meta:
        model = Event

    event_id = factory.Sequence(lambda n: f"event-{n}")
    customer = factory.SubFactory(CustomerFactory)
    item = factory.SubFactory(ItemFactory)
    type = "view"
    timestamp = NOW
    received_at = NOW


# --------------------------------------------------------------------------- API bodies


class ItemBodyFactory(factory.DictFactory):
    """The body of PUT /items/{id} (a real shop's item)."""

    title = "White hanging heart T-light holder"
    description = "A heart-shaped holder"
    categories = factory.LazyFunction(lambda: ["home", "candles"])
    price = 2.55
    currency = "GBP"
    in_stock = True
    properties = factory.LazyFunction(lambda: {"colour": "white", "tags": ["gift", "heart"], "weight_g": 300})


def item_body(**overrides: Any) -> dict[str, Any]:
    return dict(ItemBodyFactory(**overrides))


def event(i: int, **overrides: Any) -> dict[str, Any]:
    """Event row ``i`` of a small store: 3 customers, 5 items, all views at one time."""
    return {
        "event_id": f"e-{i}",
        "customer_id": f"c-{i % 3}",
        "item_id": f"sku-{i % 5}",
        "type": "view",
        "timestamp": "2026-01-05T10:00:00Z",
        **overrides,
    }


# --------------------------------------------------------------------------- models and experiments (current schema)


class ModelVersionFactory(DjangoModelFactory[ModelVersion]):
    """A registry row (no bundle behind it unless the test writes one)."""

    class Meta:
        model = ModelVersion

    version = factory.Sequence(lambda n: n + 1)
    algorithm = "als"


class TrainingJobFactory(DjangoModelFactory[TrainingJob]):
    class Meta:
        model = TrainingJob

    trigger = ModelVersion.Trigger.MANUAL


class ScenarioFactory(DjangoModelFactory[Scenario]):
    class Meta:
        model = Scenario

    key = factory.Sequence(lambda n: f"scenario-{n}")
    default_source = factory.LazyFunction(lambda: {"kind": "active"})


class ExperimentFactory(DjangoModelFactory[Experiment]):
    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"Experiment {n}")
    scenario = factory.SubFactory(ScenarioFactory)
    variants = factory.LazyFunction(
        lambda: [
            {"key": "control", "share": 50.0, "source": {"kind": "active"}},
            {"key": "trending", "share": 50.0, "source": {"kind": "trending"}},
        ]
    )


# --------------------------------------------------------------------------- generated stores


def taste_events(
    *,
    customers: int = 240,
    items: int = 96,
    groups: int = 6,
    events_per_customer: int = 24,
    seed: int = 3,
    prefix: str = "",
) -> list[dict[str, object]]:
    """Each customer mostly views and buys items of one or two groups, over 60 days."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    group_of = np.arange(items) % groups
    rows = []
    for customer in range(customers):
        liked = rng.choice(groups, size=rng.integers(1, 3), replace=False)
        for n in range(events_per_customer):
            pool = np.flatnonzero(np.isin(group_of, liked)) if rng.random() < 0.85 else np.arange(items)
            item = int(rng.choice(pool))
            kind = "purchase" if rng.random() < 0.2 else "view"
            when = start + timedelta(minutes=int(rng.integers(0, 60 * 24 * 60)))
            rows.append(
                {
                    "event_id": f"{prefix}e{customer}-{n}",
                    "customer_id": f"{prefix}c{customer}",
                    "item_id": f"{prefix}i{item}",
                    "type": kind,
                    "timestamp": when.isoformat(),
                }
            )
    return rows


def load_taste_store(handle: TenantHandle, **kwargs: Any) -> int:
    """Send a generated store's events through the API; returns how many were stored."""
    rows = taste_events(**kwargs)
    stored = 0
    for start in range(0, len(rows), 5000):
        response = handle.client().post("/api/v1/events", {"events": rows[start : start + 5000]}, format="json")
        assert response.status_code == 200, response.content
        stored += response.json()["stored"]
    return stored


def arrays_from_rows(rows: list[dict[str, object]]) -> EventArrays:
    """Generated event rows as the training pipeline's arrays (purchases weigh 10, views 1)."""
    customers = np.array([int(str(r["customer_id"]).lstrip("c")) for r in rows])
    items = np.array([int(str(r["item_id"]).lstrip("i")) for r in rows])
    weights = np.array([10.0 if r["type"] == "purchase" else 1.0 for r in rows], dtype=np.float32)
    times = np.array([datetime.fromisoformat(str(r["timestamp"])).timestamp() for r in rows])
    purchases = np.array([r["type"] == "purchase" for r in rows], dtype=bool)
    return EventArrays(customers, items, weights, times, purchases)


def make_trained_store(prefix: str) -> TenantHandle:
    """A taste store with an active single-stage model (the connection left in the public schema)."""
    handle = make_tenant(prefix)
    load_taste_store(handle)
    assert train_now(handle, two_stage=False).status == "active"
    connection.set_schema_to_public()
    return handle


def staples_and_hits(
    *, customers: int = 300, items: int = 60, weeks: int = 16, seed: int = 11, start: datetime | None = None
) -> list[dict[str, object]]:
    """A store where no single signal suffices: each customer buys some of their own 3-5 staples
    most weeks (buy again), and half of them the week's new hit, item ``i<items + week>`` (trending),
    in its week and the next. The two-stage ranker beats ALS and buy-again here (issue 21).
    ``start``: when the first week begins (a live store's events end about now)."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 6, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for customer in range(customers):
        staples = rng.choice(items, size=int(rng.integers(3, 6)), replace=False)
        for week in range(weeks):
            when = start + timedelta(weeks=week, minutes=int(rng.integers(0, 7 * 1440)))
            bought = [int(item) for item in staples if rng.random() < 0.35]
            bought += [items + hit for hit in (week, week - 1) if hit >= 0 and rng.random() < 0.5]
            for n, item in enumerate(bought):
                rows.append(
                    {
                        "event_id": f"h{customer}-{week}-{n}",
                        "customer_id": f"c{customer}",
                        "item_id": f"i{item}",
                        "type": "purchase",
                        "timestamp": (when + timedelta(minutes=n)).isoformat(),
                    }
                )
    return rows
