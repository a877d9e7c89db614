"""Holdout splits for offline evaluation.

Production uses a **global time cut**: the latest ``holdout`` share of events (by time) is the
test period; models learn from everything before it and are asked to rank what each customer
went on to interact with. It mirrors how a model is used (trained on the past, serving the
future), never lets a model see the future of other customers (popularity trends included), and
needs no per-customer minimum history.

Time cannot always separate a store's data: events imported without timestamps share one, and
in some stores few customers are active on both sides of the cut (the evaluation would then
describe a handful of customers, within noise of any difference between recipes). Then the
split falls back to a **per-customer holdout**: a seeded random ``holdout`` share of each
customer's events (at least one, for customers with two or more) is the test part
(``holdout_split`` decides, and the protocol says which was used).

The benchmark protocol (Recommenders.jl's ML-100K reference) uses a **random** split of the
(customer, item) pairs with a fixed seed; it is implemented here so the benchmark runs the same
pipeline code.

The test set keeps, per customer, the positive interactions of the test part with items known
in training. With ``repeats=False`` it keeps only items the customer had not interacted with in
training (and rankings leave training items out); with ``repeats=True`` a repeat counts like a
new item (stores where customers buy the same things again: see ``data.repeat_rate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations.training.data import EventArrays, Indexer, build_matrix

# A time cut that leaves fewer customers than this with events on both sides is not used: the
# standard error of NDCG@10 over n customers is about 0.3 / sqrt(n) (per-customer NDCG spreads
# 0.25-0.35 on the data measured in docs/adr/0007), 0.02 at 200: as large as the differences
# between recipes the gate must tell apart.
MIN_TIME_HOLDOUT_CUSTOMERS = 200


@dataclass
class Split:
    train: sp.csr_matrix
    test: sp.csr_matrix  # binary relevance (training pairs removed unless repeats count)
    indexer: Indexer
    protocol: str
    cut_time: float | None = None
    train_events: EventArrays | None = None  # what a validation split cuts again, and baselines read
    repeats: bool = False  # whether a repeat of a training pair counts as relevant (and is ranked)
    kind: str = "time"  # time | customer | random

    @property
    def test_users(self) -> np.ndarray:
        has_test = np.diff(self.test.indptr) > 0
        has_train = np.diff(self.train.indptr) > 0
        return np.flatnonzero(has_test & has_train)

    @property
    def exclude(self) -> sp.csr_matrix:
        """What rankings leave out for each customer: their training items, unless repeats count."""
        if self.repeats:
            return sp.csr_matrix(self.train.shape, dtype=np.float32)
        return self.train


def _relevance(test: sp.csr_matrix, train: sp.csr_matrix, *, repeats: bool = False) -> sp.csr_matrix:
    test = test.copy()
    test.data = (test.data > 0).astype(np.float32)
    test.eliminate_zeros()
    if repeats:
        return test.tocsr()
    seen = train.copy()
    seen.data = np.ones_like(seen.data)
    new = test - test.multiply(seen)  # drop pairs already interacted with in training
    new.eliminate_zeros()
    return new.tocsr()


def _from_events(
    train_events: EventArrays, test_events: EventArrays, *, repeats: bool
) -> tuple[sp.csr_matrix, sp.csr_matrix, Indexer]:
    indexer = Indexer.of(train_events)
    known = np.isin(test_events.customers, indexer.customer_ids) & np.isin(test_events.items, indexer.item_ids)
    train = build_matrix(train_events, indexer)
    test = build_matrix(test_events.take(known), indexer)
    return train, _relevance(test, train, repeats=repeats), indexer


def time_split(events: EventArrays, holdout: float, *, repeats: bool = False) -> Split:
    """Train on events before the (1 - holdout) quantile of event times; test on the rest."""
    if len(events) == 0:
        raise ValueError("no events")
    cut = float(np.quantile(events.times, 1.0 - holdout))
    before = events.times < cut
    train_events, test_events = events.take(before), events.take(~before)
    train, test, indexer = _from_events(train_events, test_events, repeats=repeats)
    protocol = f"time cut at the latest {holdout:.0%} of events"
    return Split(train, test, indexer, protocol, cut, train_events, repeats, "time")


def customer_holdout_mask(events: EventArrays, holdout: float, seed: int) -> np.ndarray:
    """Which events a per-customer holdout holds out: a seeded ``holdout`` share of each
    customer's events (at least one of every customer with two or more; none of the others)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(events)), events.customers))  # customers, shuffled within
    customers = events.customers[order]
    starts = np.flatnonzero(np.r_[True, customers[1:] != customers[:-1]])
    sizes = np.diff(np.r_[starts, len(customers)])
    position = np.arange(len(customers)) - np.repeat(starts, sizes)
    held_per_customer = np.where(sizes >= 2, np.maximum(1, np.floor(sizes * holdout)), 0).astype(np.int64)
    held = np.zeros(len(events), dtype=bool)
    held[order] = position < np.repeat(held_per_customer, sizes)
    return held


def customer_split(events: EventArrays, holdout: float, seed: int, *, repeats: bool = False, reason: str = "") -> Split:
    """Hold out a seeded random ``holdout`` share of each customer's events (at least one of
    every customer with two or more events; customers with one event only train)."""
    if len(events) == 0:
        raise ValueError("no events")
    held = customer_holdout_mask(events, holdout, seed)
    train_events, test_events = events.take(~held), events.take(held)
    train, test, indexer = _from_events(train_events, test_events, repeats=repeats)
    protocol = f"per-customer holdout of {holdout:.0%} of each customer's events (seed {seed})"
    if reason:
        protocol += f"; {reason}"
    return Split(train, test, indexer, protocol, None, train_events, repeats, "customer")


def holdout_split(events: EventArrays, holdout: float, seed: int, *, repeats: bool = False) -> Split:
    """The time cut, unless time cannot separate the data: then the per-customer holdout."""
    if len(events) == 0:
        raise ValueError("no events")
    if float(events.times.min()) == float(events.times.max()):
        return customer_split(events, holdout, seed, repeats=repeats, reason="every event has the same time")
    split = time_split(events, holdout, repeats=repeats)
    evaluable = len(split.test_users)
    if evaluable >= MIN_TIME_HOLDOUT_CUSTOMERS:
        return split
    fallback = customer_split(
        events,
        holdout,
        seed,
        repeats=repeats,
        reason=(
            f"a time cut left {evaluable} customers with events on both sides (fewer than {MIN_TIME_HOLDOUT_CUSTOMERS})"
        ),
    )
    return fallback if len(fallback.test_users) > evaluable else split


def random_split(matrix: sp.csr_matrix, indexer: Indexer, fraction: float, seed: int) -> Split:
    """Hold out a random ``fraction`` of the (customer, item) pairs (seeded)."""
    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    held = rng.random(coo.nnz) < fraction
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=matrix.shape)
    test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=matrix.shape)
    return Split(train, _relevance(test, train), indexer, f"random {fraction:.0%} of pairs, seed {seed}", kind="random")


def validation_split(split: Split, holdout: float, seed: int) -> Split:
    """The same protocol applied inside the training part, for tuning: the test part stays unseen."""
    if split.train_events is None:
        return random_split(split.train, split.indexer, holdout, seed + 1)
    if split.kind == "time":
        return holdout_split(split.train_events, holdout, seed + 1, repeats=split.repeats)
    return customer_split(split.train_events, holdout, seed + 1, repeats=split.repeats)
