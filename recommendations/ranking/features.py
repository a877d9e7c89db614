"""The ranker's features, as code versioned with the ranker (docs/adr/0008).

Every feature is computed from *aggregates* as of an instant — per item, per customer and per
(customer, item): counts, first and last times, decayed sums — by ``feature_matrix``. Offline,
``Aggregates.at_cut`` reduces the events before a cut (point-in-time: nothing at or after the
cut is seen); serving reads the same aggregates from Redis, kept as events arrive
(``catalog.online_features``; ``recommendations.ranking.online`` builds them for one request).
Times become days or shares here, never epoch seconds: ONNX Runtime compares tree thresholds in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from catalog.online_features import HALF_LIVES
from recommendations.ranking.sources import CandidateTable
from recommendations.training.baselines import decayed_sums
from recommendations.training.data import EventArrays, Indexer, ItemAttributes

FEATURES_VERSION = 2
DAY = 86400.0
ITEM_FEATURES = ("popular", "trending", "item_events_log", "item_age_days", "item_idle_days", "price_log")
CUSTOMER_FEATURES = (
    "customer_events_log",
    "customer_items_log",
    "customer_idle_days",
    "customer_tenure_days",
    "customer_price_log",
    "customer_value_log",
)
PAIR_FEATURES = ("had_times", "had_days", "days_since_had", "repeat_interval_days", "repeat_due")
# Customer × item, from the catalog's prices and categories: the candidate's price against the
# customer's usual one, and the share of the customer's events in the candidate's categories.
AFFINITY_FEATURES = ("price_vs_usual", "category_affinity")


def feature_names(sources: list[str]) -> list[str]:
    """Each source's score and rank, then item, customer and customer × item features."""
    return [
        *(f"{name}_score" for name in sources),
        *(f"{name}_rank" for name in sources),
        *ITEM_FEATURES,
        *CUSTOMER_FEATURES,
        *PAIR_FEATURES,
        *AFFINITY_FEATURES,
    ]


def select_features(features: np.ndarray, sources: list[str], wanted: list[str]) -> np.ndarray:
    """The columns of ``feature_matrix(…, sources)`` a ranker was trained on, in its order (a
    ranker of an earlier FEATURES_VERSION knows fewer); a name this code no longer computes is
    missing (NaN)."""
    names = feature_names(sources)
    if names == wanted:
        return features
    where = {name: column for column, name in enumerate(names)}
    out = np.full((features.shape[0], len(wanted)), np.nan, dtype=np.float32)
    for column, name in enumerate(wanted):
        if name in where:
            out[:, column] = features[:, where[name]]
    return out


@dataclass
class Aggregates:
    """What the features are made of, as of ``at`` (unix seconds), in the indexer's rows/columns."""

    at: float
    item_popular: np.ndarray  # decayed sums at ``at`` (30-day half-life)
    item_trending: np.ndarray  # (1-day half-life)
    item_events: np.ndarray
    item_first: np.ndarray  # unix seconds; NaN: never
    item_last: np.ndarray
    customer_events: np.ndarray
    customer_items: np.ndarray
    customer_first: np.ndarray
    customer_last: np.ndarray
    # customers × items, sparse (serving's one customer: dense rows, the same numbers)
    pair_events: sp.csr_matrix | np.ndarray
    pair_days: sp.csr_matrix | np.ndarray  # distinct days with an event
    pair_first_day: sp.csr_matrix | np.ndarray  # day number (unix days) + 1; 0: never
    pair_last_day: sp.csr_matrix | np.ndarray
    # The best decayed sums of the catalog (popularity features are shares of them); None: the
    # best of ``item_popular`` / ``item_trending``.
    popular_top: float | None = None
    trending_top: float | None = None
    # The catalog's side (``ItemAttributes``) in the same columns, and what it makes of each
    # customer's counted events: None where the catalog was not read (every such feature NaN).
    item_price: np.ndarray | None = None
    item_categories: sp.csr_matrix | None = None  # items × categories
    customer_categories: sp.csr_matrix | None = None  # customers × categories: events in each
    customer_price: np.ndarray | None = None  # events-weighted mean price of their priced items
    customer_value: np.ndarray | None = None  # Σ events × price (NaN: no priced item)

    def with_attributes(
        self, items: ItemAttributes, customers: tuple[sp.csr_matrix, ItemAttributes] | None = None
    ) -> Aggregates:
        """These aggregates with the catalog's side: ``items``, the attributes of the columns, and
        what the customers' counted events make of prices and categories. ``customers``: those
        events per item (rows × items) with the items' attributes; by default ``pair_events``
        over the columns (offline, where the columns are every item)."""
        events, theirs = customers if customers is not None else (self.pair_events, items)
        priced = np.isfinite(theirs.price)
        value = np.asarray(events @ np.where(priced, theirs.price, 0.0)).ravel()
        counted = np.asarray(events @ priced.astype(np.float64)).ravel()
        self.item_price = items.price
        self.item_categories = items.categories
        self.customer_categories = sp.csr_matrix(events @ theirs.categories)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.customer_price = np.where(counted > 0, value / counted, np.nan)
        self.customer_value = np.where(counted > 0, value, np.nan)
        return self

    @classmethod
    def at_cut(
        cls, events: EventArrays, indexer: Indexer, at: float, attributes: ItemAttributes | None = None
    ) -> Aggregates:
        """Point-in-time: only the events strictly before ``at`` (the catalog's attributes as
        given: they are not kept as history)."""
        before = events.take(events.times < at)
        rows, cols = indexer.rows(before.customers), indexer.cols(before.items)
        n_customers, n_items = len(indexer.customer_ids), len(indexer.item_ids)

        def extreme(index: np.ndarray, size: int, values: np.ndarray, pick: np.ufunc) -> np.ndarray:
            out = np.full(size, np.nan)
            if len(index):
                start = np.full(size, np.inf if pick is np.minimum else -np.inf)
                pick.at(start, index, values)
                out = np.where(np.isfinite(start), start, np.nan)
            return out

        days = np.floor(before.times / DAY).astype(np.int64)
        shape = (n_customers, n_items)
        unique = np.unique(np.stack([rows, cols, days], axis=1), axis=0) if len(rows) else np.zeros((0, 3), np.int64)
        ones = np.ones(len(unique))
        pair_days = sp.csr_matrix((ones, (unique[:, 0], unique[:, 1])), shape=shape)
        pair_days.sum_duplicates()
        first_day, last_day = _pair_extremes(unique, shape)
        pair_events = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        pair_events.sum_duplicates()
        aggregates = cls(
            at=at,
            item_popular=decayed_sums(before, indexer, at, HALF_LIVES["pop"]),
            item_trending=decayed_sums(before, indexer, at, HALF_LIVES["trend"]),
            item_events=np.bincount(cols, minlength=n_items).astype(np.float64),
            item_first=extreme(cols, n_items, before.times, np.minimum),
            item_last=extreme(cols, n_items, before.times, np.maximum),
            customer_events=np.bincount(rows, minlength=n_customers).astype(np.float64),
            customer_items=np.diff(pair_events.indptr).astype(np.float64),
            customer_first=extreme(rows, n_customers, before.times, np.minimum),
            customer_last=extreme(rows, n_customers, before.times, np.maximum),
            pair_events=pair_events,
            pair_days=pair_days,
            pair_first_day=first_day,
            pair_last_day=last_day,
        )
        return aggregates.with_attributes(attributes) if attributes is not None else aggregates


def _pair_extremes(unique: np.ndarray, shape: tuple[int, int]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per (customer, item): first and last day (+1, so that 0 means never), from the distinct
    (customer, item, day) rows sorted by customer, item, day (as np.unique returns them)."""
    if len(unique) == 0:
        return sp.csr_matrix(shape), sp.csr_matrix(shape)
    starts = np.r_[0, np.flatnonzero(np.any(np.diff(unique[:, :2], axis=0) != 0, axis=1)) + 1]
    ends = np.r_[starts[1:], len(unique)] - 1
    first = sp.csr_matrix((unique[starts, 2] + 1.0, (unique[starts, 0], unique[starts, 1])), shape=shape)
    last = sp.csr_matrix((unique[ends, 2] + 1.0, (unique[ends, 0], unique[ends, 1])), shape=shape)
    return first, last


def feature_matrix(table: CandidateTable, aggregates: Aggregates, sources: list[str]) -> np.ndarray:
    """One float32 row of ``feature_names(sources)`` per candidate (NaN where unknown)."""
    rows, items, at = table.rows, table.items, aggregates.at
    top_popular = aggregates.popular_top
    if top_popular is None:
        top_popular = float(aggregates.item_popular.max(initial=0.0))
    top_trending = aggregates.trending_top
    if top_trending is None:
        top_trending = float(aggregates.item_trending.max(initial=0.0))
    top_popular, top_trending = max(top_popular, 1e-12), max(top_trending, 1e-12)

    def pair(matrix: sp.csr_matrix | np.ndarray) -> np.ndarray:
        return np.asarray(matrix[rows, items]).ravel().astype(np.float64) if len(rows) else np.zeros(0)

    price, usual = _or_nan(aggregates.item_price, items), _or_nan(aggregates.customer_price, rows)
    had_times, had_days = pair(aggregates.pair_events), pair(aggregates.pair_days)
    first_day, last_day = pair(aggregates.pair_first_day) - 1, pair(aggregates.pair_last_day) - 1
    today = at / DAY
    had = had_times > 0
    interval = np.where(had_days >= 2, (last_day - first_day) / np.maximum(had_days - 1, 1), np.nan)
    since = np.where(had, today - last_day, np.nan)
    columns = [
        *(table.scores[name] for name in sources),
        *(table.ranks[name].astype(np.float64) for name in sources),
        aggregates.item_popular[items] / top_popular,
        aggregates.item_trending[items] / top_trending,
        np.log1p(aggregates.item_events[items]),
        (at - aggregates.item_first[items]) / DAY,
        (at - aggregates.item_last[items]) / DAY,
        np.log1p(price),
        np.log1p(aggregates.customer_events[rows]),
        np.log1p(aggregates.customer_items[rows]),
        (at - aggregates.customer_last[rows]) / DAY,
        (at - aggregates.customer_first[rows]) / DAY,
        np.log1p(usual),
        np.log1p(_or_nan(aggregates.customer_value, rows)),
        had_times,
        had_days,
        since,
        interval,
        np.where(interval > 0, since / np.where(interval > 0, interval, 1.0), np.nan),
        *_affinities(aggregates, rows, items, price, usual),
    ]
    return np.column_stack(columns).astype(np.float32) if len(rows) else np.zeros((0, len(columns)), np.float32)


def _or_nan(values: np.ndarray | None, at: np.ndarray) -> np.ndarray:
    return values[at].astype(np.float64) if values is not None else np.full(len(at), np.nan)


def _affinities(
    aggregates: Aggregates, rows: np.ndarray, items: np.ndarray, price: np.ndarray, usual: np.ndarray
) -> list[np.ndarray]:
    """``price_vs_usual`` (``price``/``usual``: the candidates' and their customers') and
    ``category_affinity`` (the mean, over the candidate's categories, of the share of the
    customer's counted events in each): NaN where a side is unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(usual > 0, price / np.where(usual > 0, usual, 1.0), np.nan)
    item_categories, customer_categories = aggregates.item_categories, aggregates.customer_categories
    if item_categories is None or customer_categories is None or not len(rows):
        return [ratio, np.full(len(rows), np.nan)]
    mine, theirs = item_categories[items], customer_categories[rows]
    shared = np.asarray(mine.multiply(theirs).sum(axis=1)).ravel().astype(np.float64)
    listed = np.diff(mine.indptr).astype(np.float64)
    events = aggregates.customer_events[rows].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        affinity = np.where((listed > 0) & (events > 0), shared / (listed * events), np.nan)
    return [ratio, affinity]
