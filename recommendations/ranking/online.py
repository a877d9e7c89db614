"""The second stage in serving: one customer's candidates from the sources, their features from
the aggregates Redis keeps (``catalog.online_features``), both in the shapes training uses, so
that ``features.feature_matrix`` computes the same numbers online and offline (docs/adr/0008).

Candidates are identified by the store's item ids here (new items, absent from the model, can be
proposed by popularity or buy-again); ``OnlineCandidates`` numbers them locally 0..C-1, and the
aggregates are built over those columns for one customer row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from catalog.online_features import ItemStats, RankingState
from recommendations.ranking.features import Aggregates
from recommendations.ranking.sources import DEFAULT_K, RECENT_ITEMS, CandidateTable, Proposed, merge
from recommendations.training.data import ItemAttributes

DAY = 86400.0


@dataclass
class OnlineCandidates:
    """One customer's candidates: the store's item ids and the table the features are built on."""

    item_ids: list[str]
    table: CandidateTable

    def sources_of(self, position: int) -> list[str]:
        """The sources that proposed the candidate at ``position`` (what the dashboard shows)."""
        return [name for name, ranks in self.table.ranks.items() if ranks[position] > 0]


def best(
    scores: Mapping[str, float], k: int, excluded: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str, float]]:
    """The ``k`` best positive scores, best first (ties: by id), as the offline sources keep them."""
    kept = [
        (item, score) for item, score in scores.items() if score > 0 and math.isfinite(score) and item not in excluded
    ]
    kept.sort(key=lambda pair: (-pair[1], pair[0]))
    return kept[:k]


def summed_neighbours(
    recent: Sequence[int], ids: np.ndarray, scores: np.ndarray, item_ids: Sequence[str]
) -> dict[str, float]:
    """Σ similarity over the recent items' neighbour lists (``ids``/``scores``: [len(recent), K],
    model indices, −1 or a non-finite score for padding)."""
    summed: dict[int, float] = {}
    for row in range(len(recent)):
        for index, score in zip(ids[row].tolist(), scores[row].tolist(), strict=True):
            if index >= 0 and math.isfinite(score):
                summed[index] = summed.get(index, 0.0) + score
    return {item_ids[index]: value for index, value in summed.items()}


def summed_rows(matrix: sp.csr_matrix, rows: Sequence[int], item_ids: Sequence[str]) -> dict[str, float]:
    """Σ of ``matrix``'s rows (items × items, model indices), by item id."""
    if not len(rows):
        return {}
    summed = np.asarray(matrix[list(rows)].sum(axis=0)).ravel()
    nonzero = np.flatnonzero(summed)
    return {item_ids[int(index)]: float(summed[index]) for index in nonzero}


def recent_seeds(state: RankingState | None, limit: int = RECENT_ITEMS) -> list[str]:
    """The customer's latest distinct items that seed neighbours and bought-together: those of
    their counted events (``pairs``: training reads no zero-weight event), newest first."""
    if state is None:
        return []
    return [item for item in state.recent if item in state.pairs][:limit]


def candidates(proposed: Mapping[str, list[tuple[str, float]]]) -> OnlineCandidates:
    """Every source's list (best first) merged into one candidate table for one customer."""
    item_ids = sorted({item for pairs in proposed.values() for item, _score in pairs})
    where = {item: position for position, item in enumerate(item_ids)}
    lists: dict[str, list[Proposed]] = {}
    for name, pairs in proposed.items():
        items = np.array([where[item] for item, _score in pairs], dtype=np.int64)
        lists[name] = [Proposed(items, np.array([score for _item, score in pairs], dtype=np.float64))]
    return OnlineCandidates(item_ids, merge(lists, np.zeros(1, dtype=np.int64)))


def limits() -> dict[str, int]:
    return dict(DEFAULT_K)


def online_aggregates(
    state: RankingState | None,
    item_ids: Sequence[str],
    stats: ItemStats | None,
    at: float,
    catalog: tuple[ItemAttributes, Mapping[str, int]] | None = None,
) -> Aggregates:
    """The aggregates of one customer (row 0) and the candidates (columns) as of ``at``, from
    what Redis returned; what it could not return is missing (NaN), as the ranker was told.
    ``catalog``: the version's item attributes and its item ids' positions in them (an item the
    version does not know has no price or category)."""
    n = len(item_ids)
    nan = np.full(n, np.nan)
    if stats is not None:
        item_events = np.asarray(stats.events, dtype=np.float64)
        first, last = np.asarray(stats.first, dtype=np.float64), np.asarray(stats.last, dtype=np.float64)
        popular, trending = np.asarray(stats.popular, dtype=np.float64), np.asarray(stats.trending, dtype=np.float64)
    else:
        item_events, first, last, popular, trending = nan, nan, nan, nan, nan
    # One customer: the customer × candidate aggregates as dense rows (0: never, as the sparse
    # matrices of training leave it), (events, distinct days, first day + 1, last day + 1).
    pairs = np.zeros((4, 1, n), dtype=np.float64)
    if state is not None:
        columns = [position for position, item in enumerate(item_ids) if item in state.pairs]
        if columns:
            pairs[:, 0, columns] = np.array([state.pairs[item_ids[column]] for column in columns]).T
            pairs[2:, 0, columns] += 1.0

    missing_customer = state is None
    aggregates = Aggregates(
        at=at,
        item_popular=popular,
        item_trending=trending,
        item_events=item_events,
        item_first=first,
        item_last=last,
        customer_events=np.array([np.nan if missing_customer else state.events]),  # type: ignore[union-attr]
        customer_items=np.array([np.nan if missing_customer else float(len(state.pairs))]),  # type: ignore[union-attr]
        customer_first=np.array([np.nan if missing_customer else state.first]),  # type: ignore[union-attr]
        customer_last=np.array([np.nan if missing_customer else state.last]),  # type: ignore[union-attr]
        pair_events=pairs[0],
        pair_days=pairs[1],
        pair_first_day=pairs[2],
        pair_last_day=pairs[3],
        popular_top=state.popular[0][1] if state is not None and state.popular else None,
        trending_top=state.trending[0][1] if state is not None and state.trending else None,
    )
    if catalog is None:
        return aggregates
    attributes, index = catalog
    mine = attributes.take(np.array([index.get(item, -1) for item in item_ids], dtype=np.int64))
    known = [(index[item], pair[0]) for item, pair in state.pairs.items() if item in index] if state else []
    events = sp.csr_matrix(
        (np.array([count for _, count in known], dtype=np.float64), ([0] * len(known), list(range(len(known))))),
        shape=(1, len(known)),
    )
    theirs = attributes.take(np.array([position for position, _ in known], dtype=np.int64))
    return aggregates.with_attributes(mine, (events, theirs))
