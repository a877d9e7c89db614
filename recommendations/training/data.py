"""From events in PostgreSQL to a weighted customer × item matrix, without ORM objects.

Events are read through a server-side cursor in chunks straight into numpy arrays; each
event's weight (its type's weight, times the value for ratings) is computed in SQL. Items that
are deleted are left out (they must not be recommended); customers erased are gone already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from django.db import connection, transaction

from catalog.contracts import RATING_VALUE_EPSILON, RATING_VALUE_LIMIT
from catalog.event_settings import PURCHASE
from catalog.models import Customer, Event, Item

CHUNK = 200_000


@dataclass
class EventArrays:
    """Events as parallel arrays (internal ids; weights already applied)."""

    customers: np.ndarray  # int64 internal customer ids
    items: np.ndarray  # int64 internal item ids
    weights: np.ndarray  # float32
    times: np.ndarray  # float64 unix seconds
    purchases: np.ndarray | None = None  # bool: which events are purchases (None: not known)
    # int64: events with the same value happened together — the same order (``order_id``), else
    # the same session (``session_id``), else the same customer at the same instant (None: not known).
    baskets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.customers.shape[0])

    def take(self, mask: np.ndarray) -> EventArrays:
        purchases = self.purchases[mask] if self.purchases is not None else None
        baskets = self.baskets[mask] if self.baskets is not None else None
        return EventArrays(
            self.customers[mask], self.items[mask], self.weights[mask], self.times[mask], purchases, baskets
        )

    def reweighted(self, weights: np.ndarray) -> EventArrays:
        return EventArrays(self.customers, self.items, weights, self.times, self.purchases, self.baskets)


@dataclass
class Interactions:
    """The matrix the models learn from, with the id maps between rows/columns and the store's ids."""

    matrix: sp.csr_matrix  # customers × items, summed weights (clipped at 0)
    customer_ids: np.ndarray  # object array: external id of each row
    item_ids: np.ndarray  # object array: external id of each column
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.matrix.shape
        return int(rows), int(cols)


def _weight_sql(weights: Mapping[str, float]) -> tuple[str, list[object]]:
    cases = " ".join("WHEN %s THEN %s" for _ in weights)
    params: list[object] = []
    for name, weight in weights.items():
        params += [name, float(weight)]
    # The rating as catalog.event_settings.rating_value weighs it (bounded, tiny as 0: no float8
    # overflow or underflow, whatever was stored).
    rating = (
        f"CASE WHEN e.value IS NULL OR abs(e.value) < {RATING_VALUE_EPSILON!r} THEN 0 "
        f"ELSE LEAST(GREATEST(e.value, {-RATING_VALUE_LIMIT!r}), {RATING_VALUE_LIMIT!r}) END"
    )
    sql = f"(CASE e.type {cases} ELSE 0 END) * (CASE WHEN e.type = 'rating' THEN {rating} ELSE 1 END)"
    return sql, params


# An event's basket as a number: a 52-bit hash (exact in the float64 rows fetched below) of its
# order, else its session, else its customer and instant. Two baskets share a number with a
# probability of about n² / 2⁵³ — for a million baskets, 1 in 10,000 that any two do.
BASKET_SQL = (
    "(hashtextextended(COALESCE('o' || e.order_id, 's' || e.session_id, "
    "'c' || e.customer_id::text || '@' || EXTRACT(EPOCH FROM e.timestamp)::text), 0) & 4503599627370495)"
)


def extract_events(weights: Mapping[str, float]) -> EventArrays:
    """All events of the current tenant with a non-zero weight, on items that are not deleted."""
    weight_sql, params = _weight_sql(weights)
    query = (
        f"SELECT e.customer_id, e.item_id, {weight_sql} AS w, EXTRACT(EPOCH FROM e.timestamp)::float8, "  # noqa: S608
        f"(e.type = '{PURCHASE}')::int, {BASKET_SQL} "
        f"FROM {Event._meta.db_table} e JOIN {Item._meta.db_table} i ON i.id = e.item_id "
        f"WHERE i.deleted_at IS NULL"
    )
    chunks: list[np.ndarray] = []
    # A server-side cursor lives in a transaction; the Django cursor applies the search_path.
    with transaction.atomic(), connection.cursor():
        raw = connection.connection
        if raw is None:  # pragma: no cover - the cursor above connected
            raise RuntimeError("no database connection")
        with raw.cursor(name="shelfwise_extract") as cursor:  # constant memory per chunk
            cursor.itersize = CHUNK
            cursor.execute(query, params)
            while rows := cursor.fetchmany(CHUNK):
                chunks.append(np.array(rows, dtype=np.float64))
    if not chunks:
        empty = np.zeros(0)
        return EventArrays(
            empty.astype(np.int64),
            empty.astype(np.int64),
            empty.astype(np.float32),
            empty,
            empty.astype(bool),
            empty.astype(np.int64),
        )
    data = np.concatenate(chunks)
    keep = data[:, 2] != 0
    data = data[keep]
    return EventArrays(
        data[:, 0].astype(np.int64),
        data[:, 1].astype(np.int64),
        data[:, 2].astype(np.float32),
        data[:, 3],
        data[:, 4] > 0,
        data[:, 5].astype(np.int64),
    )


def apply_time_decay(events: EventArrays, half_life_days: float | None, now: float | None = None) -> EventArrays:
    """Weigh events down by age: ``w * 2^(-(now - t) / half_life)``."""
    if not half_life_days or len(events) == 0:
        return events
    reference = now if now is not None else float(events.times.max())
    factor = np.exp2(-(reference - events.times) / (half_life_days * 86400.0)).astype(np.float32)
    return events.reweighted(events.weights * factor)


@dataclass
class Indexer:
    """Dense row/column indices for internal ids."""

    customer_ids: np.ndarray  # sorted unique internal ids
    item_ids: np.ndarray

    @classmethod
    def of(cls, events: EventArrays) -> Indexer:
        return cls(np.unique(events.customers), np.unique(events.items))

    def rows(self, customers: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.customer_ids, customers)

    def cols(self, items: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.item_ids, items)


def build_matrix(events: EventArrays, indexer: Indexer) -> sp.csr_matrix:
    """Sum of weights per (customer, item); negative sums (e.g. removed from cart) become 0."""
    shape = (len(indexer.customer_ids), len(indexer.item_ids))
    if len(events) == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    matrix = sp.csr_matrix(
        (events.weights, (indexer.rows(events.customers), indexer.cols(events.items))), shape=shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    np.maximum(matrix.data, 0, out=matrix.data)
    matrix.eliminate_zeros()
    return matrix


def external_ids(indexer: Indexer) -> tuple[np.ndarray, np.ndarray]:
    """The store's ids for the indexer's customers and items (two queries)."""
    customer_map = dict(Customer.objects.filter(id__in=indexer.customer_ids.tolist()).values_list("id", "external_id"))
    item_map = dict(Item.objects.filter(id__in=indexer.item_ids.tolist()).values_list("id", "external_id"))
    customers = np.array([customer_map[int(i)] for i in indexer.customer_ids], dtype=object)
    items = np.array([item_map[int(i)] for i in indexer.item_ids], dtype=object)
    return customers, items


@dataclass
class ItemAttributes:
    """What the catalog says about the indexer's items (the ranker's price and category features):
    as the catalog holds them when a training reads it, for every cut of that training alike —
    prices and categories are not kept as history."""

    price: np.ndarray  # float64 per item; NaN: no price
    categories: sp.csr_matrix  # items × categories, 1 where the item is in the category

    @classmethod
    def of(cls, prices: list[float | None], categories: list[list[str]]) -> ItemAttributes:
        """From each item's price (None: none) and category names, in the indexer's order."""
        names = sorted({name for listed in categories for name in listed})
        where = {name: position for position, name in enumerate(names)}
        rows = [row for row, listed in enumerate(categories) for _name in dict.fromkeys(listed)]
        cols = [where[name] for listed in categories for name in dict.fromkeys(listed)]
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(categories), len(names))
        )
        price = np.array([np.nan if value is None else float(value) for value in prices], dtype=np.float64)
        price[~(price >= 0)] = np.nan  # negative (or NaN): unknown
        return cls(price, matrix)

    def take(self, positions: np.ndarray) -> ItemAttributes:
        """The attributes of the items at ``positions`` (−1: an item they do not know)."""
        positions = np.asarray(positions, dtype=np.int64)
        known = positions >= 0
        safe = np.where(known, positions, 0)
        price = np.where(known, self.price[safe] if len(self.price) else np.nan, np.nan)
        selector = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (np.flatnonzero(known), positions[known])),
            shape=(len(positions), self.categories.shape[0]),
        )
        return ItemAttributes(price, sp.csr_matrix(selector @ self.categories))

    def subset(self, ids: np.ndarray, wanted: np.ndarray) -> ItemAttributes:
        """The attributes of the items ``wanted`` (internal ids), these being those of ``ids``
        (sorted, as an indexer's); an id not among them gets none."""
        if not len(ids):
            return self.take(np.full(len(wanted), -1))
        positions = np.searchsorted(ids, wanted)
        clipped = np.minimum(positions, len(ids) - 1)
        return self.take(np.where(ids[clipped] == wanted, clipped, -1))


def item_attributes(indexer: Indexer) -> ItemAttributes:
    """The current tenant's price and categories of the indexer's items (one query)."""
    found = {
        item_id: (price, categories)
        for item_id, price, categories in Item.objects.filter(id__in=indexer.item_ids.tolist()).values_list(
            "id", "price", "categories"
        )
    }
    listed = [found.get(int(item_id), (None, [])) for item_id in indexer.item_ids]
    return ItemAttributes.of(
        [None if price is None else float(price) for price, _categories in listed],
        [list(categories or []) for _price, categories in listed],
    )


# Repeats are "common" from this share on (one interaction in five a return): evaluation then
# counts them and the default scenario recommends items a customer already had (ADR 0007).
REPEAT_AWARE_RATE = 0.2


def repeat_rate(events: EventArrays) -> float:
    """How often customers buy again what they bought before: of the distinct (customer, item,
    day) purchases, the share on a day after the customer's first purchase of that item. 0 where
    every pair is one event (ratings); high for groceries bought every week. Stores that send no
    purchases are measured on all their events with a positive weight."""
    keep = events.weights > 0
    if events.purchases is not None and events.purchases.any():
        keep &= events.purchases
    positive = events.take(keep)
    if len(positive) == 0:
        return 0.0
    days = np.floor(positive.times / 86400.0).astype(np.int64)
    triples = np.unique(np.stack([positive.customers, positive.items, days]), axis=1).shape[1]
    pairs = np.unique(np.stack([positive.customers, positive.items]), axis=1).shape[1]
    return float((triples - pairs) / triples)
