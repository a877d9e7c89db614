"""Approximate nearest neighbours for catalogs too large to score exhaustively (docs/adr/0009).

A factor model scores ``customer vector · item factors`` over every item; that is a matrix ×
vector product over the whole catalog per request (about 35 ms at a million items, 64 factors,
on one core). From ``SHELFWISE_ANN_MIN_ITEMS`` items a version also gets an inverted-file index
over its item factors (faiss ``IndexIVFFlat``, inner product: the items are split into about
2·√n lists by k-means, and a search scores only the lists nearest the query), built by the
training worker and **verified before the version can be ready**: for sampled customers its
top-100 must hold at least ``RECALL_TARGET`` of the exact top-100. The number of lists searched
(``nprobe``) starts at 1/16 of them and doubles until the target is met; it is recorded in the
manifest, or the version fails.

Serving searches the index for more than it needs, removes what the request excludes (the
customer's items, filters, deleted items) and answers from the rest; if too few remain (a
narrow filter), it scores exactly, as below the threshold.

The similar-items table of a large catalog (cosine between item factors) is built the same way:
an index over the unit vectors, searched for every item, not an items × items product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import faiss
import numpy as np
from django.conf import settings

FILE = "ann.faiss"
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
    """An index over rows of vectors (ids are row numbers); scores are dot products."""

    index: faiss.IndexIVFFlat

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    def search(self, vectors: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, dot products) of the ``count`` best for each query (−1 pads), best first."""
        queries = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        scores, rows = self.index.search(queries, count)
        return rows.astype(np.int64), scores.astype(np.float32)

    def to_bytes(self) -> bytes:
        return bytes(faiss.serialize_index(self.index))


def ann_build(vectors: np.ndarray, *, seed: int = 0) -> AnnIndex:
    """An inverted-file index over ``vectors`` (rows), inner product, with every core."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = data.shape
    lists = lists_for(n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    points = min(n, TRAIN_POINTS_PER_LIST * lists)
    sample = data if points == n else data[np.random.default_rng(seed).choice(n, size=points, replace=False)]
    index.train(sample)
    index.add(data)
    index.nprobe = max(1, lists // 16)
    return AnnIndex(index)


def ann_load(data: bytes, nprobe: int) -> AnnIndex:
    """An index from a bundle's bytes, searching ``nprobe`` lists (what its verification chose)."""
    index = cast(faiss.IndexIVFFlat, faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)))
    index.nprobe = nprobe
    return AnnIndex(index)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The exact top-``k`` rows of ``vectors`` by dot product for each query (unordered)."""
    kk = min(k, len(vectors))
    out = np.zeros((len(queries), kk), dtype=np.int64)
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64] @ vectors.T
        out[start : start + len(block)] = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
    return out


@dataclass(frozen=True)
class AnnCheck:
    queries: int
    recall: float  # mean share of the exact top-100 the index returned
    nprobe: int

    @property
    def ok(self) -> bool:
        return self.recall >= RECALL_TARGET


def ann_verify(index: AnnIndex, vectors: np.ndarray, queries: np.ndarray) -> AnnCheck:
    """Recall@100 of ``index`` against exact search over ``vectors`` for ``queries``, at the
    first ``nprobe`` (doubling) that meets ``RECALL_TARGET``, which the index keeps; at every
    list if none does."""
    data = np.asarray(vectors, dtype=np.float32)
    asked = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(RECALL_AT, len(data))
    exact = exact_top(data, asked, k)
    lists = int(index.index.nlist)
    while True:
        rows, _scores = index.search(asked, k)
        recall = float(np.mean([len(np.intersect1d(rows[row], exact[row])) / k for row in range(len(asked))]))
        if recall >= RECALL_TARGET or index.nprobe >= lists:
            return AnnCheck(queries=len(asked), recall=recall, nprobe=index.nprobe)
        index.index.nprobe = min(lists, index.nprobe * 2)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    data = np.asarray(vectors, dtype=np.float32)
    return np.ascontiguousarray(data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12))


def ann_similar(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, AnnCheck]:
    """Each row's ``k`` most similar other rows by cosine (ids, similarities; −1 pads), from an
    index over the unit vectors searched for every row, verified on a sample first."""
    unit = unit_rows(vectors)
    n = len(unit)
    index = ann_build(unit)
    sample = np.random.default_rng(0).choice(n, size=min(VERIFY_QUERIES, n), replace=False)
    check = ann_verify(index, unit, unit[sample])
    keys = np.empty((n, k + 1), dtype=np.int64)
    similarity = np.empty((n, k + 1), dtype=np.float32)
    for start in range(0, n, 8192):
        keys[start : start + 8192], similarity[start : start + 8192] = index.search(unit[start : start + 8192], k + 1)
    # each row's own key (found first, normally) moves to the end; the first k others are kept
    own = keys == np.arange(n)[:, None]
    order = np.argsort(own, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(keys, order, axis=1)
    scores = np.where(ids >= 0, np.take_along_axis(similarity, order, axis=1), 0.0).astype(np.float32)
    return ids, scores, check
