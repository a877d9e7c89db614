"""Approximate nearest neighbours for catalogs too large to score exhaustively (docs/adr/0009).

A factor model scores ``customer vector · item factors`` over every item; that is a matrix ×
vector product over the whole catalog per request (21 ms median, 27 ms p99 through the ONNX
graph at a million items, 64 factors, one core: bench/ann.py). From ``SHELFWISE_ANN_MIN_ITEMS``
items a version also gets an inverted-file index over its item factors (faiss ``IndexIVFFlat``:
the items are split into about 2·√n lists by k-means, and a search scores only the lists nearest
the query). Inner product is turned into
Euclidean distance first — each item becomes ``[x, √(M² − |x|²)]``, the query ``[q, 0]`` — because
ALS item norms are long-tailed (popular items are long vectors): measured on ALS factors of a
generated 200k-item store, clustering by inner product directly found 0.69 of the exact top-100
searching half the lists, the augmented Euclidean index 0.99 in 0.3 ms (docs/adr/0009). What the
lists return is scored exactly against the item factors. The index is built by the training
worker and **verified before the version can be ready**: for sampled customers its top-100 must
hold at least ``RECALL_TARGET`` of the exact top-100; the number of lists searched (``nprobe``)
starts at 1/64 of them and grows by half until it does, and is recorded in the manifest — or the
version fails.

Serving searches the index for more than it needs, removes what the request excludes (the
customer's items, filters, deleted items) and answers from the rest; if too few remain (a
narrow filter), it scores exactly, as below the threshold.

Similar items of a large catalog (cosine between item factors) come from the same kind of index
over the unit vectors (``similar.faiss``), verified the same way and searched at request time:
a table of every item's neighbours would be an items × items product, or a search for every
item at training time — 100 neighbours per item written into ``similar.onnx`` took most of an
hour and 1.2 GB at a million items (docs/adr/0009).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    import faiss

FILE = "ann.faiss"
SIMILAR_FILE = "similar.faiss"
RECALL_TARGET = 0.95
RECALL_AT = 100
VERIFY_QUERIES = 500
TRAIN_POINTS_PER_LIST = 64  # k-means sees at most this many items per list


def ann_wanted(n_items: int) -> bool:
    """Whether a catalog of ``n_items`` gets an index (below: exact scoring is cheap enough)."""
    return n_items >= settings.SHELFWISE_ANN_MIN_ITEMS


def lists_for(n_items: int) -> int:
    """How many lists the items are split into: about 2·√n (2,000 for a million items)."""
    return max(1, min(n_items // 39, int(2 * math.sqrt(n_items))))


@dataclass
class AnnIndex:
    """An index over rows of ``vectors`` (ids are row numbers), searched by dot product."""

    index: faiss.IndexIVFFlat  # imported when first used: web processes load it only with a large model
    vectors: np.ndarray  # float32 rows: found items are scored exactly against them

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, dot products) of about the ``count`` best for each query, best first (−1 and
        −∞ pad when the lists searched held fewer)."""
        asked = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        _distances, rows = self.index.search(_augmented_queries(asked), count)
        rows = rows.astype(np.int64)
        valid = rows >= 0
        scores = np.einsum("qkd,qd->qk", self.vectors[np.where(valid, rows, 0)], asked)
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def to_bytes(self) -> bytes:
        return bytes(_faiss().serialize_index(self.index))


def _faiss() -> Any:
    import faiss  # heavy (OpenMP, BLAS): only processes that build or load an index pay for it

    return faiss


def _augmented_items(vectors: np.ndarray) -> np.ndarray:
    """Items as points of a sphere one dimension up, ``[x, √(M² − |x|²)]`` (M: the largest
    norm): their Euclidean distance to ``[q, 0]`` is ``|q|² + M² − 2 q·x``, so the nearest are
    the best by dot product (Bachrach et al., RecSys 2014)."""
    norms = np.linalg.norm(vectors, axis=1)
    top = float(norms.max(initial=0.0))
    extra = np.sqrt(np.maximum(top * top - norms * norms, 0.0))
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]), dtype=np.float32)


def _augmented_queries(queries: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)]))


def ann_build(vectors: np.ndarray, *, seed: int = 0) -> AnnIndex:
    """An inverted-file index (Euclidean, on the augmented items) over ``vectors``' rows, with
    every core."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    points = _augmented_items(data)
    n, d = points.shape
    lists = lists_for(n)
    faiss = _faiss()
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists, faiss.METRIC_L2)
    index.cp.seed = seed
    size = min(n, TRAIN_POINTS_PER_LIST * lists)
    index.train(points if size == n else points[np.random.default_rng(seed).choice(n, size=size, replace=False)])
    index.add(points)
    index.nprobe = max(1, lists // 64)
    return AnnIndex(index, data)


def ann_load(data: bytes, nprobe: int, vectors: np.ndarray) -> AnnIndex:
    """An index from a bundle's bytes over ``vectors`` (the version's item factors), searching
    ``nprobe`` lists (what its verification chose)."""
    index = _faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))
    index.nprobe = nprobe
    return AnnIndex(index, np.ascontiguousarray(vectors, dtype=np.float32))


def exact_kth(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each query, the ``k``-th best dot product over ``vectors`` (what a top-k must reach)."""
    kk = min(k, len(vectors))
    out = np.zeros(len(queries), dtype=np.float32)
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64] @ vectors.T
        out[start : start + len(block)] = -np.partition(-block, kk - 1, axis=1)[:, kk - 1]
    return out


def recall_at(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """Per query, the share of ``rows`` (an ANN top-k) that belongs in the exact top-k: scores at
    least the exact k-th best (ties count as found, whichever of them a search returned)."""
    k = rows.shape[1]
    valid = rows >= 0
    scores = np.einsum("qkd,qd->qk", vectors[np.where(valid, rows, 0)], queries)
    tolerance = 1e-5 * np.maximum(np.abs(kth), 1.0)
    return ((scores >= (kth - tolerance)[:, None]) & valid).sum(axis=1) / k


@dataclass(frozen=True)
class AnnCheck:
    queries: int
    recall: float  # mean share of the index's top-100 that belongs in the exact top-100
    nprobe: int

    @property
    def ok(self) -> bool:
        return self.recall >= RECALL_TARGET


def ann_verify(index: AnnIndex, vectors: np.ndarray, queries: np.ndarray) -> AnnCheck:
    """Recall@100 of ``index`` against exact search over ``vectors`` for ``queries`` (ties with
    the exact 100th count as found), at the first ``nprobe`` (growing by half) that meets
    ``RECALL_TARGET``, which the index keeps; at every list if none does."""
    data = np.asarray(vectors, dtype=np.float32)
    asked = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(RECALL_AT, len(data))
    kth = exact_kth(data, asked, k)
    lists = int(index.index.nlist)
    while True:
        rows, _scores = index.search(asked, k)
        recall = float(np.mean(recall_at(data, asked, rows, kth)))
        if recall >= RECALL_TARGET or index.nprobe >= lists:
            return AnnCheck(queries=len(asked), recall=recall, nprobe=index.nprobe)
        index.index.nprobe = min(lists, math.ceil(index.nprobe * 1.5))


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    data = np.asarray(vectors, dtype=np.float32)
    return np.ascontiguousarray(data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12))


@dataclass(frozen=True)
class SimilarIndex:
    """An index over unit item vectors for item-to-item similarity, verified when built."""

    index: AnnIndex
    unit: np.ndarray
    check: AnnCheck

    def search(self, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's ``k`` most similar other rows by cosine (ids, similarities; −1 pads)
        (``rows``: for these only, in that order)."""
        asked = np.arange(len(self.unit)) if rows is None else np.asarray(rows, dtype=np.int64)
        keys = np.empty((len(asked), k + 1), dtype=np.int64)
        similarity = np.empty((len(asked), k + 1), dtype=np.float32)
        for start in range(0, len(asked), 8192):
            these = asked[start : start + 8192]
            keys[start : start + len(these)], similarity[start : start + len(these)] = self.index.search(
                self.unit[these], k + 1
            )
        # each row's own key (found first, normally) moves to the end; the first k others are kept
        own = keys == asked[:, None]
        order = np.argsort(own, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(keys, order, axis=1)
        scores = np.where(ids >= 0, np.take_along_axis(similarity, order, axis=1), 0.0).astype(np.float32)
        return ids, scores

    def to_bytes(self) -> bytes:
        return self.index.to_bytes()


def similar_load(data: bytes, check: AnnCheck, vectors: np.ndarray) -> SimilarIndex:
    """A similar-items index from a bundle's bytes over the unit rows of ``vectors`` (the
    version's item factors), searching the lists its verification chose (``check.nprobe``)."""
    unit = unit_rows(vectors)
    return SimilarIndex(ann_load(data, check.nprobe, unit), unit, check)


def similar_index(vectors: np.ndarray) -> SimilarIndex:
    """An index over ``vectors``' unit rows, verified on a sample of them (its ``check``)."""
    unit = unit_rows(vectors)
    n = len(unit)
    index = ann_build(unit)
    sample = np.random.default_rng(0).choice(n, size=min(VERIFY_QUERIES, n), replace=False)
    return SimilarIndex(index, unit, ann_verify(index, unit, unit[sample]))


def ann_similar(vectors: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, AnnCheck]:
    """Each row's ``k`` most similar other rows by cosine (ids, similarities; −1 pads), from an
    index over the unit vectors searched for every row (``rows``: for these only, in that
    order), verified on a sample first."""
    built = similar_index(vectors)
    ids, scores = built.search(k, rows)
    return ids, scores, built.check
