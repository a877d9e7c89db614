"""Candidate sources (issue 21), offline: each proposes what its name says, at the cut, from the
events before it; what a customer had is left out unless the store is repeat-aware; ``gather``
merges them into one bounded table with each source's score and rank."""

from __future__ import annotations

import numpy as np

from recommendations.ranking.sources import (
    BoughtTogetherSource,
    BuyAgainSource,
    CollaborativeSource,
    NeighbourSource,
    PopularSource,
    SourceContext,
    default_sources,
    gather,
)
from recommendations.training import algorithms
from recommendations.training.baskets import co_occurrence
from recommendations.training.data import EventArrays, Indexer

DAY = 86400.0
NOW = 1_800_000_000.0


def events(rows: list[tuple[int, int, float, int]]) -> EventArrays:
    """(customer, item, days before NOW, basket) rows, weight 1 each."""
    data = np.array(rows, dtype=np.float64)
    return EventArrays(
        customers=data[:, 0].astype(np.int64),
        items=data[:, 1].astype(np.int64),
        weights=np.ones(len(rows), dtype=np.float32),
        times=NOW - data[:, 2] * DAY,
        purchases=np.ones(len(rows), dtype=bool),
        baskets=data[:, 3].astype(np.int64),
    )


def context(rows: list[tuple[int, int, float, int]], *, repeats: bool = False, fit: bool = False) -> SourceContext:
    arrays = events(rows)
    indexer = Indexer.of(arrays)
    made = SourceContext(arrays, indexer, NOW, repeats, together=co_occurrence(arrays, indexer))
    if fit:
        made.fitted = algorithms.fit("itemknn_cosine", made.matrix, algorithms.params_for("itemknn_cosine"))
    return made


def ids(made: SourceContext, columns: np.ndarray) -> list[int]:
    return [int(made.indexer.item_ids[column]) for column in columns]


def row_of(made: SourceContext, customer: int) -> np.ndarray:
    return made.indexer.rows(np.array([customer]))


# Customer 1 bought 10 and 11 together, 10 twice; 2..6 bought 10 with 12 in the same baskets; item
# 13 was popular long ago, 14 today.
STORE = [
    (1, 10, 5, 100), (1, 11, 5, 100), (1, 10, 1, 101),
    *[(customer, 10, 10, 200 + customer) for customer in range(2, 7)],
    *[(customer, 12, 10, 200 + customer) for customer in range(2, 7)],
    *[(customer, 13, 200, 300 + customer) for customer in range(2, 9)],
    *[(customer, 14, 0.1, 400 + customer) for customer in range(7, 10)],
]  # fmt: skip


def test_bought_together_proposes_what_shared_baskets_with_the_customers_recent_items() -> None:
    made = context(STORE)
    [proposed] = BoughtTogetherSource().candidates(made, row_of(made, 1), 10)
    assert ids(made, proposed.items) == [12]  # 11 was had: left out


def test_buy_again_proposes_own_items_most_had_first_only_where_repeats_are_welcome() -> None:
    assert BuyAgainSource().candidates(context(STORE), row_of(context(STORE), 1), 10)[0].items.size == 0
    made = context(STORE, repeats=True)
    [proposed] = BuyAgainSource().candidates(made, row_of(made, 1), 10)
    assert ids(made, proposed.items) == [10, 11]
    assert list(proposed.scores) == [2.0, 1.0]


def test_popular_and_trending_weigh_time_differently() -> None:
    made = context(STORE)
    popular = PopularSource("popular", 30 * DAY).candidates(made, row_of(made, 1), 10)[0]
    trending = PopularSource("trending", 1 * DAY).candidates(made, row_of(made, 1), 10)[0]
    assert ids(made, popular.items)[0] == 12  # 5 recent-ish events beat 7 from 200 days ago
    assert ids(made, trending.items)[0] == 14  # today's
    assert 10 not in ids(made, popular.items)  # had


def test_collaborative_and_neighbour_sources_leave_out_what_was_had() -> None:
    made = context(STORE, fit=True)
    [cf] = CollaborativeSource().candidates(made, row_of(made, 1), 10)
    [near] = NeighbourSource().candidates(made, row_of(made, 1), 10)
    assert 12 in ids(made, cf.items)
    assert 12 in ids(made, near.items)
    assert not {10, 11} & set(ids(made, cf.items) + ids(made, near.items))
    assert list(cf.scores) == sorted(cf.scores, reverse=True)


def test_gather_merges_the_sources_per_customer_with_scores_and_ranks() -> None:
    made = context(STORE, repeats=True, fit=True)
    rows = made.indexer.rows(np.array([1, 7]))

    table = gather(made, rows, default_sources(), k={"popular": 2, "trending": 1})

    assert list(table.group_sizes()) == [int((table.rows == rows[0]).sum()), int((table.rows == rows[1]).sum())]
    first = table.rows == rows[0]
    assert set(ids(made, table.items[first])) >= {10, 11, 12, 14}  # own items too: repeats welcome
    together = dict(zip(ids(made, table.items[first]), table.ranks["together"][first], strict=True))
    assert together[12] == 1
    assert np.isnan(table.scores["trending"][first & (table.ranks["trending"] == 0)]).all()
    assert (table.ranks["popular"] <= 2).all()
    # each (customer, item) once
    pairs = set(zip(table.rows.tolist(), table.items.tolist(), strict=True))
    assert len(pairs) == len(table)
