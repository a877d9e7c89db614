"""Holdout splits for offline evaluation.

Production uses a **global time cut**: the latest ``holdout`` share of events (by time) is the
test period; models learn from everything before it and are asked to rank what each customer
went on to interact with. It mirrors how a model is used (trained on the past, serving the
future), never lets a model see the future of other customers (popularity trends included), and
needs no per-customer minimum history. A per-customer last-k split would leak the test period's
popularity into training.

The benchmark protocol (Recommenders.jl's ML-100K reference) uses a **random** split of the
(customer, item) pairs with a fixed seed; both are implemented here so the benchmark runs the
same pipeline code.

Either way the test set keeps, per customer, only positive interactions with items the customer
had not interacted with in training (training items are excluded from rankings), and only
customers and items present in training can be evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations.training.data import EventArrays, Indexer, build_matrix


@dataclass
class Split:
    train: sp.csr_matrix
    test: sp.csr_matrix  # binary relevance, training pairs removed
    indexer: Indexer
    protocol: str
    cut_time: float | None = None
    train_events: EventArrays | None = None  # for a time split: what a validation split cuts again

    @property
    def test_users(self) -> np.ndarray:
        has_test = np.diff(self.test.indptr) > 0
        has_train = np.diff(self.train.indptr) > 0
        return np.flatnonzero(has_test & has_train)


def _relevance(test: sp.csr_matrix, train: sp.csr_matrix) -> sp.csr_matrix:
    test = test.copy()
    test.data = (test.data > 0).astype(np.float32)
    test.eliminate_zeros()
    seen = train.copy()
    seen.data = np.ones_like(seen.data)
    new = test - test.multiply(seen)  # drop pairs already interacted with in training
    new.eliminate_zeros()
    return new.tocsr()


def time_split(events: EventArrays, holdout: float) -> Split:
    """Train on events before the (1 - holdout) quantile of event times; test on the rest."""
    if len(events) == 0:
        raise ValueError("no events")
    cut = float(np.quantile(events.times, 1.0 - holdout))
    before = events.times < cut
    train_events, test_events = events.take(before), events.take(~before)
    indexer = Indexer.of(train_events)
    known = np.isin(test_events.customers, indexer.customer_ids) & np.isin(test_events.items, indexer.item_ids)
    train = build_matrix(train_events, indexer)
    test = build_matrix(test_events.take(known), indexer)
    return Split(
        train, _relevance(test, train), indexer, f"time cut at the latest {holdout:.0%} of events", cut, train_events
    )


def random_split(matrix: sp.csr_matrix, indexer: Indexer, fraction: float, seed: int) -> Split:
    """Hold out a random ``fraction`` of the (customer, item) pairs (seeded)."""
    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    held = rng.random(coo.nnz) < fraction
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=matrix.shape)
    test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=matrix.shape)
    return Split(train, _relevance(test, train), indexer, f"random {fraction:.0%} of pairs, seed {seed}")


def validation_split(split: Split, holdout: float, seed: int) -> Split:
    """The same protocol applied inside the training part, for tuning: the test part stays unseen."""
    if split.train_events is not None:
        return time_split(split.train_events, holdout)
    return random_split(split.train, split.indexer, holdout, seed + 1)
