"""Candidate sources: where the first stage finds items worth ranking (docs/adr/0008).

Each source is a small class with one interface: a ``name`` and ``candidates(context, rows, k)``
returning, for each customer row, up to ``k`` items with the source's scores, best first. This
module holds their offline side — what a training sees at a cut, from the events before it
(``SourceContext``); serving's side reads the same things from the version's bundle and Redis.
``gather`` merges the sources' lists into one bounded candidate table whose columns (each
source's score and rank, NaN/absent where it did not propose the item) are ranker features.

What a customer already had is left out by every source unless the store is repeat-aware
(ADR 0007); then ``buy_again`` proposes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from catalog.online_features import HALF_LIVES
from recommendations.training.algorithms import Fitted, SimilarRows, history_vector
from recommendations.training.baselines import decayed_sums
from recommendations.training.data import EventArrays, Indexer, build_matrix

RECENT_ITEMS = 10  # the customer's latest distinct items that seed neighbours and bought-together


@dataclass
class SourceContext:
    """What the sources know at ``at`` (unix seconds): the events before it, as matrices."""

    events: EventArrays
    indexer: Indexer
    at: float
    repeats: bool  # the store recommends what customers already had (ADR 0007)
    fitted: Fitted | None = None  # the collaborative model trained on these events
    together: sp.csr_matrix | None = None  # items × items co-occurrence (training.baskets)
    matrix: sp.csr_matrix = field(init=False)
    recent: sp.csr_matrix = field(init=False)  # customers × items: 1 for the latest RECENT_ITEMS
    counts: sp.csr_matrix = field(init=False)  # customers × items: how many events
    _decayed: dict[float, np.ndarray] = field(init=False, default_factory=dict, repr=False)
    _similar: SimilarRows | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.matrix = build_matrix(self.events, self.indexer)
        rows, cols = self.indexer.rows(self.events.customers), self.indexer.cols(self.events.items)
        shape = self.matrix.shape
        self.counts = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        self.counts.sum_duplicates()
        # The latest RECENT_ITEMS distinct items of each customer.
        order = np.lexsort((-self.events.times, rows))  # by customer, newest first
        _, first = np.unique(rows[order].astype(np.int64) * shape[1] + cols[order], return_index=True)
        latest_of_pair = order[np.sort(first)]  # each (customer, item) once, at its newest event
        kept_rows, kept_cols = rows[latest_of_pair], cols[latest_of_pair]
        starts = np.r_[0, np.flatnonzero(np.diff(kept_rows)) + 1]
        rank = np.arange(len(kept_rows)) - np.repeat(starts, np.diff(np.r_[starts, len(kept_rows)]))
        latest = rank < RECENT_ITEMS
        self.recent = sp.csr_matrix(
            (np.ones(int(latest.sum()), dtype=np.float32), (kept_rows[latest], kept_cols[latest])), shape=shape
        )

    def similar_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``fitted``'s similar items of ``rows`` (one ANN index per context, however often asked)."""
        fitted = self.fitted
        if fitted is None:
            raise ValueError("no collaborative model in this context")
        if self._similar is None or self._similar.fitted is not fitted:
            self._similar = SimilarRows(fitted)
        return self._similar(rows)

    def decayed_popularity(self, half_life_seconds: float) -> np.ndarray:
        """Decayed sums of the events at ``at`` (reduced once per half-life: a training's scorer
        asks for them batch after batch)."""
        if half_life_seconds not in self._decayed:
            self._decayed[half_life_seconds] = decayed_sums(self.events, self.indexer, self.at, half_life_seconds)
        return self._decayed[half_life_seconds]


@dataclass(frozen=True)
class Proposed:
    """One customer's candidates from one source: item columns and scores, best first."""

    items: np.ndarray
    scores: np.ndarray


def _best(scores: np.ndarray, k: int, excluded: np.ndarray | None = None) -> Proposed:
    """The ``k`` best-scored columns with a positive score (``excluded`` columns left out)."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    if excluded is not None and len(excluded):
        scores[excluded] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return Proposed(np.zeros(0, dtype=np.int64), np.zeros(0))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    keep = np.isfinite(scores[top]) & (scores[top] > 0)
    return Proposed(top[keep].astype(np.int64), scores[top][keep])


class Source:
    name: ClassVar[str]

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        raise NotImplementedError

    @staticmethod
    def _had(context: SourceContext, row: int) -> np.ndarray | None:
        """Columns to leave out for ``row``: what the customer had, unless repeats are welcome."""
        if context.repeats:
            return None
        return context.matrix.indices[context.matrix.indptr[row] : context.matrix.indptr[row + 1]]


class CollaborativeSource(Source):
    """The collaborative model's top-N for the customer (today's scoring graph)."""

    name = "cf"

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        if context.fitted is None or len(rows) == 0:
            return [Proposed(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in rows]
        scores = context.fitted.score(rows, history_vector(context.matrix))
        return [_best(scores[position], k, self._had(context, row)) for position, row in enumerate(rows)]


class NeighbourSource(Source):
    """Items most similar (by the collaborative model) to the customer's recent items."""

    name = "neighbours"

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        if context.fitted is None:
            return [Proposed(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in rows]
        recent = context.recent[rows]
        # Only the seeds' rows of the similar-items table (as the whole table has them): the
        # whole table is an items × items product per training window.
        seeds = np.unique(recent.indices)
        ids, scores = context.similar_rows(seeds)
        n_items = context.matrix.shape[1]
        valid = ids >= 0
        similar = sp.csr_matrix(
            (scores[valid], (seeds[np.nonzero(valid)[0]], ids[valid])), shape=(n_items, n_items), dtype=np.float32
        )
        summed = recent @ similar
        return [
            _best(summed[position].toarray().ravel(), k, self._had(context, row)) for position, row in enumerate(rows)
        ]


class BoughtTogetherSource(Source):
    """Items bought in the same baskets as the customer's recent items (training.baskets)."""

    name = "together"

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        if context.together is None:
            return [Proposed(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in rows]
        summed = context.recent[rows] @ context.together
        return [
            _best(summed[position].toarray().ravel(), k, self._had(context, row)) for position, row in enumerate(rows)
        ]


class BuyAgainSource(Source):
    """The customer's own items, most often had first (only where repeats are welcome)."""

    name = "buy_again"

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        out = []
        for row in rows:
            start, end = context.counts.indptr[row], context.counts.indptr[row + 1]
            if not context.repeats or start == end:
                out.append(Proposed(np.zeros(0, dtype=np.int64), np.zeros(0)))
                continue
            scores = np.zeros(context.counts.shape[1])
            scores[context.counts.indices[start:end]] = context.counts.data[start:end]
            out.append(_best(scores, k))
        return out


class PopularSource(Source):
    """Decayed popularity at the cut: 30-day half-life (``popular``) or 1 day (``trending``)."""

    def __init__(self, name: str, half_life_seconds: float) -> None:
        self.name = name  # type: ignore[misc]
        self.half_life_seconds = half_life_seconds

    def candidates(self, context: SourceContext, rows: np.ndarray, k: int) -> list[Proposed]:
        popularity = context.decayed_popularity(self.half_life_seconds)
        if context.repeats:  # nothing left out: one list for everyone
            shared = _best(popularity, k)
            return [shared for _row in rows]
        return [_best(popularity, k, self._had(context, row)) for row in rows]


def default_sources() -> list[Source]:
    return [
        CollaborativeSource(),
        NeighbourSource(),
        BoughtTogetherSource(),
        BuyAgainSource(),
        PopularSource("popular", HALF_LIVES["pop"]),
        PopularSource("trending", HALF_LIVES["trend"]),
    ]


# Per source, how many candidates it contributes (at most; the union is smaller).
DEFAULT_K: dict[str, int] = {
    "cf": 150,
    "neighbours": 100,
    "together": 100,
    "buy_again": 100,
    "popular": 50,
    "trending": 30,
}


@dataclass
class CandidateTable:
    """The union of the sources' candidates: one row per (customer row, item column), grouped by
    customer in the order asked for; per source its score (NaN: not proposed) and 1-based rank
    (0: not proposed)."""

    rows: np.ndarray
    items: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.rows)

    def group_sizes(self) -> np.ndarray:
        if len(self.rows) == 0:
            return np.zeros(0, dtype=np.int64)
        boundaries = np.flatnonzero(np.diff(self.rows)) + 1
        return np.diff(np.r_[0, boundaries, len(self.rows)])


def gather(
    context: SourceContext, rows: np.ndarray, sources: Sequence[Source], k: dict[str, int] | None = None
) -> CandidateTable:
    """Every source's candidates for ``rows``, merged per customer (sorted by item column)."""
    limits = {**DEFAULT_K, **(k or {})}
    proposed = {source.name: source.candidates(context, rows, limits.get(source.name, 50)) for source in sources}
    return merge(proposed, rows)


def merge(proposed: Mapping[str, Sequence[Proposed]], rows: np.ndarray) -> CandidateTable:
    """Per customer row, the union of the sources' proposals (``proposed[name][position]``),
    sorted by item column — offline (``gather``) and in serving alike."""
    all_rows, all_items = [], []
    scores: dict[str, list[np.ndarray]] = {name: [] for name in proposed}
    ranks: dict[str, list[np.ndarray]] = {name: [] for name in proposed}
    for position, row in enumerate(rows):
        items = np.unique(np.concatenate([p[position].items for p in proposed.values()] + [np.zeros(0, np.int64)]))
        all_rows.append(np.full(len(items), row, dtype=np.int64))
        all_items.append(items)
        for name, lists in proposed.items():
            mine = lists[position]
            score = np.full(len(items), np.nan)
            rank = np.zeros(len(items), dtype=np.int64)
            where = np.searchsorted(items, mine.items)
            score[where] = mine.scores
            rank[where] = np.arange(1, len(mine.items) + 1)
            scores[name].append(score)
            ranks[name].append(rank)
    empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return CandidateTable(
        rows=np.concatenate(all_rows) if all_rows else empty_i,
        items=np.concatenate(all_items) if all_items else empty_i,
        scores={name: np.concatenate(values) if values else empty_f for name, values in scores.items()},
        ranks={name: np.concatenate(values) if values else empty_i for name, values in ranks.items()},
    )
