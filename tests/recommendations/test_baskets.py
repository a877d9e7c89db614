"""What is bought together: baskets as training extracts them (order, else session, else the
customer's instant) and the co-occurrence the frequently-bought-together source reads."""

from __future__ import annotations

import numpy as np
from django_tenants.utils import tenant_context

from catalog.event_settings import event_settings_for
from catalog.models import Event
from recommendations.training.baskets import MAX_BASKET_ITEMS, basket_matrix, co_occurrence
from recommendations.training.data import EventArrays, Indexer, extract_events
from tests.factories import make_tenant


def arrays(baskets: list[list[int]]) -> EventArrays:
    """One event per (basket, item), basket b at time b."""
    pairs = [(b, item) for b, items in enumerate(baskets) for item in items]
    n = len(pairs)
    return EventArrays(
        customers=np.array([b % 7 for b, _ in pairs], dtype=np.int64),
        items=np.array([item for _, item in pairs], dtype=np.int64),
        weights=np.ones(n, dtype=np.float32),
        times=np.array([float(b) for b, _ in pairs]),
        purchases=np.ones(n, dtype=bool),
        baskets=np.array([1000 + b for b, _ in pairs], dtype=np.int64),
    )


def neighbours(matrix, indexer: Indexer, item: int) -> list[int]:
    row = matrix[indexer.cols(np.array([item]))[0]]
    order = np.argsort(-row.data, kind="stable")
    return [int(indexer.item_ids[column]) for column in row.indices[order]]


def test_items_bought_together_are_each_others_nearest_and_a_best_seller_does_not_crowd_them_out() -> None:
    # 1 and 2 go together; 9 is in every basket (a best-seller); 3..8 are bought once each with 9.
    baskets = [[1, 2, 9]] * 6 + [[1, 9], [2, 9]] + [[item, 9] for item in range(3, 9)] * 3
    events = arrays(baskets)
    indexer = Indexer.of(events)

    together = co_occurrence(events, indexer)

    assert neighbours(together, indexer, 1)[0] == 2
    assert neighbours(together, indexer, 2)[0] == 1
    assert 1 not in neighbours(together, indexer, 1)  # never its own neighbour
    assert together.diagonal().sum() == 0


def test_single_item_and_oversized_baskets_say_nothing() -> None:
    events = arrays([[1], [2], list(range(10, 11 + MAX_BASKET_ITEMS)), [3, 4]])
    indexer = Indexer.of(events)

    kept = basket_matrix(events, indexer)
    together = co_occurrence(events, indexer, neighbours=5)

    assert kept.shape[0] == 1  # only [3, 4]
    assert neighbours(together, indexer, 3) == [4]
    assert neighbours(together, indexer, 10) == []
    assert max(np.diff(together.indptr)) <= 5


def test_without_baskets_there_is_no_co_occurrence() -> None:
    events = arrays([[1, 2], [1, 2]])
    events.baskets = None
    indexer = Indexer.of(events)

    assert co_occurrence(events, indexer).nnz == 0


def test_training_reads_an_order_then_a_session_then_the_customers_instant_as_the_basket(live_db: None) -> None:
    store = make_tenant("baskets")
    rows = [
        # one order over two minutes: one basket
        {"event_id": "o1", "customer_id": "a", "item_id": "i1", "type": "purchase", "order_id": "order-1",
         "timestamp": "2026-05-01T10:00:00Z"},
        {"event_id": "o2", "customer_id": "a", "item_id": "i2", "type": "purchase", "order_id": "order-1",
         "timestamp": "2026-05-01T10:02:00Z"},
        # a session without an order: one basket; the order above is not part of it
        {"event_id": "s1", "customer_id": "a", "item_id": "i3", "type": "view", "session_id": "visit-1",
         "timestamp": "2026-05-01T10:00:00Z"},
        {"event_id": "s2", "customer_id": "a", "item_id": "i4", "type": "view", "session_id": "visit-1",
         "timestamp": "2026-05-01T11:00:00Z"},
        # neither: the same customer at the same instant is a basket, another instant is another
        {"event_id": "n1", "customer_id": "b", "item_id": "i1", "type": "purchase",
         "timestamp": "2026-05-02T09:00:00Z"},
        {"event_id": "n2", "customer_id": "b", "item_id": "i5", "type": "purchase",
         "timestamp": "2026-05-02T09:00:00Z"},
        {"event_id": "n3", "customer_id": "b", "item_id": "i6", "type": "purchase",
         "timestamp": "2026-05-03T09:00:00Z"},
        {"event_id": "n4", "customer_id": "c", "item_id": "i6", "type": "purchase",
         "timestamp": "2026-05-02T09:00:00Z"},
    ]  # fmt: skip
    assert store.client().post("/api/v1/events", {"events": rows}, format="json").json()["stored"] == len(rows)

    with tenant_context(store.tenant):
        events = extract_events(event_settings_for(store.tenant).weights)
        # extract_events speaks internal ids: each event back by (customer, item, time)
        event_id_of = {
            (event.customer_id, event.item_id, event.timestamp.timestamp()): event.event_id
            for event in Event.objects.all()
        }

    assert events.baskets is not None
    basket_of = {
        event_id_of[(int(c), int(i), float(t))]: int(b)
        for c, i, t, b in zip(events.customers, events.items, events.times, events.baskets, strict=True)
    }
    assert set(basket_of) == {row["event_id"] for row in rows}
    assert basket_of["o1"] == basket_of["o2"]
    assert basket_of["s1"] == basket_of["s2"] != basket_of["o1"]
    assert basket_of["n1"] == basket_of["n2"]
    assert len({basket_of["n1"], basket_of["n3"], basket_of["n4"], basket_of["o1"], basket_of["s1"]}) == 5
