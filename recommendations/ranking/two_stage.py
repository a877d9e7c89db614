"""Training the second stage: candidates and features as of several cuts, labels from what each
customer did after the cut, one LightGBM ranker over them all (docs/adr/0008).

A single time cut labels too few customers on data where customers come and go (about 100 on
MovieLens), so labels come from WINDOWS stacked cuts, STEP of the events' time apart, each
labelled by the next LABEL_SHARE of the events. Everything a window's candidates and features
see comes from the events before its cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommendations.ranking.features import Aggregates, feature_matrix, feature_names
from recommendations.ranking.ranker import Ranker, ranker_fit
from recommendations.ranking.sources import CandidateTable, Source, SourceContext, default_sources, gather
from recommendations.training.algorithms import Fitted
from recommendations.training.baskets import co_occurrence
from recommendations.training.data import EventArrays, Indexer, ItemAttributes, build_matrix
from recommendations.training.split import _relevance, customer_holdout_mask

WINDOWS = 7
STEP = 0.05
LABEL_SHARE = 0.2
MAX_CUSTOMERS_PER_WINDOW = 3000
NEGATIVES_PER_GROUP = 100

FitCollaborative = Callable[[sp.csr_matrix], Fitted]


@dataclass
class TwoStage:
    ranker: Ranker
    sources: list[str]
    windows: list[dict[str, float]]  # per window: cut quantile, labelled customers, candidate recall
    protocol: str = "time"  # how its labels were cut: time windows, or a per-customer holdout
    sample: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # feature rows, to verify
    attributes: ItemAttributes | None = None  # the catalog's side of its features (the bundle keeps it)

    def summary(self) -> dict[str, Any]:
        """What a version's metrics and the dashboard say about the ranker."""
        return {
            "protocol": self.protocol,
            "sources": list(self.sources),
            "windows": list(self.windows),
            "trees": self.ranker.best_iteration,
            "features": len(self.ranker.feature_names),
            "ranker_validation_ndcg@10": self.ranker.validation_ndcg,
        }


def window_cuts(events: EventArrays) -> list[tuple[float, float, float]]:
    """(quantile, cut time, end time) of each window, latest first."""
    cuts = []
    for k in range(WINDOWS):
        low = 1.0 - LABEL_SHARE - STEP * k
        if low <= 0.2:
            break
        start, end = np.quantile(events.times, [low, low + LABEL_SHARE])
        cuts.append((round(low, 2), float(start), float(end) + 1.0))
    return cuts


def context_at(
    events: EventArrays, indexer: Indexer, at: float, repeats: bool, fit: FitCollaborative | None
) -> SourceContext:
    """What the sources know at ``at``: the events before it, a collaborative model and the
    co-occurrence trained on them."""
    before = events.take(events.times < at)
    context = SourceContext(before, indexer, at, repeats, together=co_occurrence(before, indexer))
    if fit is not None and context.matrix.nnz:
        context.fitted = fit(context.matrix)
    return context


def candidates_and_features(
    context: SourceContext,
    rows: np.ndarray,
    sources: list[Source],
    aggregates: Aggregates | None = None,
    attributes: ItemAttributes | None = None,
) -> tuple[CandidateTable, np.ndarray]:
    """Candidates and their features from exactly what the sources know (never a label);
    ``aggregates``: those of ``context`` when the caller already reduced them."""
    table = gather(context, rows, sources)
    if aggregates is None:
        aggregates = Aggregates.at_cut(context.events, context.indexer, context.at, attributes)
    return table, feature_matrix(table, aggregates, [source.name for source in sources])


def _label_windows(
    events: EventArrays, indexer: Indexer, *, repeats: bool, fit: FitCollaborative | None, protocol: str, seed: int
) -> list[tuple[float, SourceContext, EventArrays]]:
    """(window, what the sources know, the events that label it). ``time``: the stacked cuts;
    ``customer``: one per-customer holdout (a seeded 20 % of each customer's events label the
    rest) — where time cannot separate the data (ADR 0007), the same protocol as the holdout.
    (Both kinds in one ranker measured below either on its own protocol: docs/adr/0008.)"""
    if protocol == "customer":
        held = customer_holdout_mask(events, LABEL_SHARE, seed)
        context = context_at(events.take(~held), indexer, float(events.times.max()) + 1.0, repeats, fit)
        return [(0.0, context, events.take(held))]
    return [
        (
            quantile,
            context_at(events, indexer, cut, repeats, fit),
            events.take((events.times >= cut) & (events.times < end)),
        )
        for quantile, cut, end in window_cuts(events)
    ]


def two_stage_fit(
    events: EventArrays,
    indexer: Indexer,
    *,
    repeats: bool,
    fit: FitCollaborative | None,
    protocol: str = "time",
    seed: int = 7,
    attributes: ItemAttributes | None = None,
) -> TwoStage:
    """The ranker, trained on labelled windows of ``events`` (the training part only);
    ``attributes``: the catalog's prices and categories of ``indexer``'s items."""
    sources = default_sources()
    names = [source.name for source in sources]
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    report = []
    rng = np.random.default_rng(seed)
    for quantile, context, later in _label_windows(
        events, indexer, repeats=repeats, fit=fit, protocol=protocol, seed=seed
    ):
        relevant = _relevance(build_matrix(later, indexer), context.matrix, repeats=repeats)
        rows = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(context.matrix.indptr) > 0))
        if len(rows) > MAX_CUSTOMERS_PER_WINDOW:
            rows = np.sort(rng.choice(rows, size=MAX_CUSTOMERS_PER_WINDOW, replace=False))
        if len(rows) == 0:
            continue
        table, features = candidates_and_features(context, rows, sources, attributes=attributes)
        labels = np.asarray(relevant[table.rows, table.items]).ravel() > 0
        sizes = table.group_sizes()
        positive = np.add.reduceat(labels, np.r_[0, np.cumsum(sizes)[:-1]]) > 0 if len(sizes) else np.zeros(0, bool)
        keep = np.repeat(positive, sizes) & _some_negatives(labels, sizes, rng)
        kept_sizes = np.add.reduceat(keep, np.r_[0, np.cumsum(sizes)[:-1]])[positive] if len(sizes) else sizes
        blocks.append((features[keep], labels[keep].astype(np.float64), kept_sizes))
        report.append(
            {
                "quantile": quantile,
                "customers": int(positive.sum()),
                "candidate_recall": round(float(labels.sum()) / max(int(relevant[rows].nnz), 1), 4),
            }
        )
    if not blocks or sum(len(block[2]) for block in blocks) < 10:
        raise ValueError("too few customers with later events to learn a ranker from")
    features = np.vstack([block[0] for block in blocks])
    labels = np.concatenate([block[1] for block in blocks])
    groups = np.concatenate([block[2] for block in blocks])
    ranker = ranker_fit(features, labels, groups, feature_names=feature_names(names), seed=seed)
    sample = features[np.sort(rng.choice(len(features), size=min(len(features), 2000), replace=False))]
    return TwoStage(ranker, names, report, protocol, sample, attributes)


def _some_negatives(labels: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every positive row, and at most NEGATIVES_PER_GROUP of each group's negatives (seeded):
    boosting time grows with rows, and the ranking is learnt from the pairs around the positives."""
    keep = labels.astype(bool).copy()
    start = 0
    for size in sizes.tolist():
        negatives = np.flatnonzero(~labels[start : start + size]) + start
        if len(negatives) > NEGATIVES_PER_GROUP:
            negatives = rng.choice(negatives, size=NEGATIVES_PER_GROUP, replace=False)
        keep[negatives] = True
        start += size
    return keep


def two_stage_scorer(
    model: TwoStage,
    events: EventArrays,
    indexer: Indexer,
    *,
    repeats: bool,
    fit: FitCollaborative | None,
    at: float,
) -> Callable[[np.ndarray], np.ndarray]:
    """Rows → scores over every item as of ``at``: the ranker's scores for the candidates, the
    rest far below (what offline evaluation ranks)."""
    context = context_at(events, indexer, at, repeats, fit)
    sources = [source for source in default_sources() if source.name in model.sources]
    aggregates = Aggregates.at_cut(context.events, indexer, at, model.attributes)

    def score(rows: np.ndarray) -> np.ndarray:
        out = np.full((len(rows), len(indexer.item_ids)), -1e9, dtype=np.float64)
        table, features = candidates_and_features(context, np.asarray(rows), sources, aggregates)
        if len(table):
            position = np.searchsorted(np.asarray(rows), table.rows) if _sorted(rows) else _positions(rows, table.rows)
            out[position, table.items] = model.ranker.predict(features)
        return out

    return score


def _sorted(rows: np.ndarray) -> bool:
    return bool(np.all(np.diff(rows) > 0))


def _positions(rows: np.ndarray, asked: np.ndarray) -> np.ndarray:
    where = {int(row): position for position, row in enumerate(np.asarray(rows).tolist())}
    return np.array([where[int(row)] for row in asked.tolist()], dtype=np.int64)
