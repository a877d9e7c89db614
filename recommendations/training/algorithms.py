"""The algorithms a store can train, behind one small interface.

- ``als`` — implicit's alternating least squares (Hu, Koren & Volinsky 2008): the default.
- ``bpr`` — implicit's Bayesian personalised ranking.
- ``itemknn_cosine`` / ``itemknn_bm25`` — implicit's item-item nearest neighbours.
- ``ease`` — EASE (Steck 2019), a closed-form item-item model; only for catalogs up to
  ``EASE_MAX_ITEMS`` items (it inverts an items × items matrix).
- ``popularity`` — the most interacted-with items; also the baseline every model must beat.

A fitted model scores customers for evaluation and says how it is served: ``factors``
(customer vector · item factors), ``dense_history`` (history vector · an items × items matrix)
or ``neighbours`` (each history item's top-K neighbours, summed).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommendations.scoring.ann import (
    RECALL_AT,
    RECALL_TARGET,
    AnnCheck,
    SimilarIndex,
    ann_similar,
    ann_wanted,
    similar_index,
)

EASE_MAX_ITEMS = 10_000
NEIGHBOURS_FOR_SIMILAR = 100

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 64, "regularization": 10.0, "alpha": 1.0, "iterations": 20},
    "bpr": {"factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
    "itemknn_cosine": {"K": 50},
    "itemknn_bm25": {"K": 100, "K1": 1.2, "B": 0.75},
    "ease": {"regularization": 500.0},
    "popularity": {},
}
ALGORITHMS = tuple(DEFAULT_PARAMS)
# What a store may set (settings `training.params`): beyond these a training is useless or would
# tie up a worker for hours (factors and iterations multiply its time and memory).
PARAM_BOUNDS: dict[str, tuple[float, float]] = {
    "factors": (1, 1024),
    "iterations": (1, 1000),
    "regularization": (0, 100_000),
    "alpha": (0, 1000),
    "learning_rate": (0, 10),
    "K": (1, 10_000),
    "K1": (0, 100),
    "B": (0, 1),
}

# The small hyper-parameter search (on the validation split only).
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    # Log-spaced; regularization and confidence scale together, so both span two decades.
    "als": {
        "factors": [32, 64, 128],
        "regularization": [1.0, 3.0, 10.0, 30.0, 100.0],
        "alpha": [0.5, 1.0, 2.0, 4.0, 8.0],
    },
    "bpr": {"factors": [64, 128], "learning_rate": [0.01, 0.05, 0.1], "regularization": [0.001, 0.01, 0.1]},
    "itemknn_cosine": {"K": [10, 20, 50, 100, 200]},
    "itemknn_bm25": {"K": [20, 50, 100, 200], "K1": [1.2, 100.0]},
    "ease": {"regularization": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]},
    "popularity": {},
}


def _threads() -> int:
    return int(os.environ.get("SHELFWISE_TRAINING_THREADS", "1"))


def need(value: np.ndarray | None, what: str) -> np.ndarray:
    """A model part that the model's kind guarantees (a clear error if a caller got it wrong)."""
    if value is None:
        raise ValueError(f"this model has no {what}")
    return value


@dataclass
class Fitted:
    """A trained model: how to score its customers, and what serving needs to reproduce it."""

    algorithm: str
    params: dict[str, Any]
    kind: str  # factors | dense_history | neighbours
    user_factors: np.ndarray | None = None  # [customers, d]
    item_factors: np.ndarray | None = None  # [items, d]
    weights: np.ndarray | None = None  # dense_history: [items, items]
    neighbour_ids: np.ndarray | None = None  # neighbours: [items, K] (−1 pads)
    neighbour_scores: np.ndarray | None = None  # [items, K]
    extra: dict[str, Any] = field(default_factory=dict)

    def score(self, rows: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores of every item for the customers ``rows`` (whose interactions are ``history``)."""
        if self.kind == "factors":
            user_factors = need(self.user_factors, "customer factors")
            return np.asarray(user_factors[rows] @ need(self.item_factors, "item factors").T)
        user_history = history[rows]
        if self.kind == "dense_history":
            return np.asarray(user_history @ need(self.weights, "weights"))
        return np.asarray((user_history @ self.neighbour_matrix()).todense())

    def neighbour_matrix(self) -> sp.csr_matrix:
        ids, scores = need(self.neighbour_ids, "neighbours"), need(self.neighbour_scores, "neighbour scores")
        n_items, k = ids.shape
        rows = np.repeat(np.arange(n_items), k)
        cols = ids.ravel()
        valid = cols >= 0
        return sp.csr_matrix((scores.ravel()[valid], (rows[valid], cols[valid])), shape=(n_items, n_items))


def params_for(algorithm: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    params = dict(DEFAULT_PARAMS[algorithm])
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ValueError(f"{algorithm} has no parameter {key!r} (parameters: {', '.join(params) or 'none'})")
        params[key] = type(params[key])(value)
    return params


def fit(algorithm: str, matrix: sp.csr_matrix, params: Mapping[str, Any], *, seed: int = 7) -> Fitted:
    """Train ``algorithm`` on a customers × items matrix of confidences."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    with threadpool_limits(limits=_threads()):
        if algorithm == "als":
            return _fit_als(matrix, dict(params), seed)
        if algorithm == "bpr":
            return _fit_bpr(matrix, dict(params), seed)
        if algorithm in {"itemknn_cosine", "itemknn_bm25"}:
            return _fit_knn(algorithm, matrix, dict(params))
        if algorithm == "ease":
            return _fit_ease(matrix, dict(params))
        if algorithm == "popularity":
            return _fit_popularity(matrix)
    raise ValueError(f"unknown algorithm {algorithm!r}")


def _fit_als(matrix: sp.csr_matrix, params: dict[str, Any], seed: int) -> Fitted:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=int(params["factors"]),
        regularization=float(params["regularization"]),
        alpha=float(params["alpha"]),
        iterations=int(params["iterations"]),
        random_state=seed,
        num_threads=_threads(),
    )
    model.fit(matrix, show_progress=False)
    item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    return Fitted(
        "als",
        params,
        "factors",
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        item_factors=item_factors,
        # What fold-in needs (the ALS closed form for a customer's new interactions).
        extra={"gram": (item_factors.T @ item_factors).astype(np.float32)},
    )


def _fit_bpr(matrix: sp.csr_matrix, params: dict[str, Any], seed: int) -> Fitted:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(
        factors=int(params["factors"]),
        learning_rate=float(params["learning_rate"]),
        regularization=float(params["regularization"]),
        iterations=int(params["iterations"]),
        random_state=seed,
        num_threads=_threads(),
    )
    binary = matrix.copy()
    binary.data = np.ones_like(binary.data)
    model.fit(binary, show_progress=False)
    # BPR's item factors carry a bias column and its user factors a matching 1: the dot
    # product includes the item bias, so serving is the same MatMul.
    return Fitted(
        "bpr",
        params,
        "factors",
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


def _fit_knn(algorithm: str, matrix: sp.csr_matrix, params: dict[str, Any]) -> Fitted:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    k = int(params["K"])
    model = (
        CosineRecommender(K=k, num_threads=_threads())
        if algorithm == "itemknn_cosine"
        else BM25Recommender(K=k, K1=float(params["K1"]), B=float(params["B"]), num_threads=_threads())
    )
    with warnings.catch_warnings():  # implicit converts its own intermediate COO matrix and says so
        warnings.simplefilter("ignore")
        model.fit(matrix, show_progress=False)
    similarity = sp.csr_matrix(model.similarity)
    similarity.setdiag(0)
    similarity.eliminate_zeros()
    ids, scores = _rows_top_k(similarity, k)
    return Fitted(algorithm, params, "neighbours", neighbour_ids=ids, neighbour_scores=scores)


def _rows_top_k(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest entries as (column ids, values), padded with −1 / 0."""
    n = matrix.shape[0]
    ids = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    for row in range(n):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        cols, vals = matrix.indices[start:end], matrix.data[start:end]
        if len(cols) > k:
            best = np.argpartition(-vals, k - 1)[:k]
            cols, vals = cols[best], vals[best]
        order = np.argsort(-vals, kind="stable")
        ids[row, : len(cols)] = cols[order]
        scores[row, : len(cols)] = vals[order]
    return ids, scores


def _fit_ease(matrix: sp.csr_matrix, params: dict[str, Any]) -> Fitted:
    n_items = matrix.shape[1]
    if n_items > EASE_MAX_ITEMS:
        raise ValueError(f"ease handles catalogs of up to {EASE_MAX_ITEMS} items (this one has {n_items})")
    binary = matrix.copy()
    binary.data = np.ones_like(binary.data)
    gram = np.asarray((binary.T @ binary).todense(), dtype=np.float64)
    gram[np.diag_indices(n_items)] += float(params["regularization"])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices(n_items)] = 0.0
    return Fitted("ease", params, "dense_history", weights=weights.astype(np.float32))


def _fit_popularity(matrix: sp.csr_matrix) -> Fitted:
    counts = np.diff(sp.csc_matrix(matrix).indptr).astype(np.float32)  # customers per item
    n_users = matrix.shape[0]
    # A factor model of rank 1: every customer's vector is [1], the items' factor their count.
    return Fitted(
        "popularity",
        {},
        "factors",
        user_factors=np.ones((n_users, 1), dtype=np.float32),
        item_factors=counts.reshape(-1, 1),
    )


def history_vector(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The input of history-based models: binary interactions."""
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    binary.data = np.ones_like(binary.data)
    return binary


def _verified(check: AnnCheck) -> None:
    if not check.ok:
        raise ValueError(
            f"the similar-items index found {check.recall:.3f} of the exact top-{RECALL_AT} "
            f"(needs {RECALL_TARGET}), searching {check.nprobe} lists"
        )


class SimilarRows:
    """``similar_items`` of one fitted model, asked for some rows again and again (a training's
    windows and batches). Where the catalog takes an ANN index (docs/adr/0009), one index is
    built and verified for all the calls, not one per call."""

    def __init__(self, fitted: Fitted, k: int = NEIGHBOURS_FOR_SIMILAR) -> None:
        self.fitted = fitted
        self.k = k
        self._index: SimilarIndex | None = None

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fitted = self.fitted
        if fitted.kind == "factors" and fitted.algorithm != "popularity":
            factors = need(fitted.item_factors, "item factors")
            if ann_wanted(factors.shape[0]):
                if self._index is None:
                    self._index = similar_index(factors)
                    _verified(self._index.check)
                return self._index.search(self.k, rows)
        return similar_items(fitted, self.k, rows)


def similar_items(
    fitted: Fitted, k: int = NEIGHBOURS_FOR_SIMILAR, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's most similar items (ids, scores), for the similar-items endpoint; ``rows``:
    only these items' (in that order), each row as the whole table has it (to float rounding:
    a smaller product rounds differently)."""
    if fitted.kind == "neighbours":
        ids, scores = need(fitted.neighbour_ids, "neighbours")[:, :k], need(fitted.neighbour_scores, "scores")[:, :k]
        return (ids, scores) if rows is None else (ids[rows], scores[rows])
    if fitted.kind == "dense_history":
        weights = sp.csr_matrix(need(fitted.weights, "weights").T)
        return _rows_top_k(weights if rows is None else weights[rows], k)
    factors = need(fitted.item_factors, "item factors")
    if fitted.algorithm == "popularity":  # no notion of similarity: everyone's popular items
        order = np.argsort(-factors[:, 0], kind="stable")[: k + 1]
        asked = np.arange(factors.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        ids = np.tile(order, (len(asked), 1))
        scores = np.tile(factors[order, 0], (len(asked), 1))
        return _drop_self(ids, scores, k, asked)
    if ann_wanted(factors.shape[0]):  # an items × items product would take hours (docs/adr/0009)
        ids, scores, check = ann_similar(factors, k, rows)
        _verified(check)
        return ids, scores
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.maximum(norms, 1e-12)
    asked = np.arange(unit.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    ids = np.zeros((len(asked), k), dtype=np.int64)
    scores = np.zeros((len(asked), k), dtype=np.float32)
    kk = min(k, unit.shape[0] - 1)
    for start in range(0, len(asked), 1024):
        these = asked[start : start + 1024]
        block = unit[these] @ unit.T
        block[np.arange(len(these)), these] = -np.inf  # never the item itself
        part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        ids[start : start + len(these), :kk] = best
        scores[start : start + len(these), :kk] = np.take_along_axis(block, best, axis=1)
        if kk < k:
            ids[start : start + len(these), kk:] = -1
    return ids, scores


def _drop_self(ids: np.ndarray, scores: np.ndarray, k: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ids and scores without ``items[row]`` itself, the first ``k`` kept."""
    out_ids = np.full((ids.shape[0], k), -1, dtype=np.int64)
    out_scores = np.zeros((ids.shape[0], k), dtype=np.float32)
    for row in range(ids.shape[0]):
        keep = ids[row] != items[row]
        picked = ids[row][keep][:k]
        out_ids[row, : len(picked)] = picked
        out_scores[row, : len(picked)] = scores[row][keep][:k]
    return out_ids, out_scores
