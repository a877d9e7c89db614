"""Generated stores with real structure (customers prefer some item groups), for training tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from tests.conftest import TenantHandle


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


def load_taste_store(handle: TenantHandle, **kwargs: object) -> int:
    """Send a generated store's events through the API; returns how many were stored."""
    rows = taste_events(**kwargs)  # type: ignore[arg-type]
    stored = 0
    for start in range(0, len(rows), 5000):
        response = handle.client().post("/api/v1/events", {"events": rows[start : start + 5000]}, format="json")
        assert response.status_code == 200, response.content
        stored += response.json()["stored"]
    return stored
