"""What a store serves without a model, as offline scorers: the yardstick of the release gate.

Serving's fallback chain (``recommendations.serving.engine``) answers a customer without a model
with the store's **decayed popularity** — event weights decayed with a 30-day half-life
(``catalog.online_features.HALF_LIVES["pop"]``), the customer's items left out — and, where the
store recommends what a customer already had (repeat-heavy stores), with the customer's own
items first (**buy again**: most interacted-with first), then decayed popularity. With a model,
such a store serves the customer's own items first and the model's after them (``repeat_first``).
The scorers here compute the same lists from a split's training part, at the time of its cut,
so that a candidate model is compared with exactly what the store would otherwise serve, and
is scored as it would be served.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from catalog.online_features import HALF_LIVES
from recommendations.training.data import EventArrays, Indexer
from recommendations.training.split import Split

Scorer = Callable[[np.ndarray], np.ndarray]


def decayed_sums(events: EventArrays, indexer: Indexer, at: float, half_life_seconds: float) -> np.ndarray:
    """Each item's weighted event count decayed to ``at`` (negative sums as 0): what serving's
    online popularity holds at that instant (``catalog.online_features``)."""
    decay = np.exp2(-(at - events.times) / half_life_seconds)
    scores = np.bincount(indexer.cols(events.items), weights=events.weights * decay, minlength=len(indexer.item_ids))
    return np.maximum(scores, 0.0)


def decayed_popularity(split: Split, half_life_seconds: float = HALF_LIVES["pop"]) -> np.ndarray:
    """Each training item's weighted event count, decayed to the end of the training part."""
    events = split.train_events
    if events is None or len(events) == 0:  # a pair split keeps no times: plain counts
        return np.asarray(split.train.sum(axis=0)).ravel().astype(np.float64)
    reference = split.cut_time if split.cut_time is not None else float(events.times.max())
    return decayed_sums(events, split.indexer, reference, half_life_seconds)


def fallback_scorer(split: Split) -> tuple[str, Scorer]:
    """(name, scorer) of the list a customer gets without a model, on ``split``'s protocol."""
    popularity = decayed_popularity(split)
    relative = popularity / popularity.max() if popularity.max() > 0 else popularity
    if not split.repeats:
        return "decayed popularity", lambda rows: np.tile(relative, (len(rows), 1))
    return "buy again, then decayed popularity", buy_again_scorer(split.train, relative)


def buy_again_scorer(train: sp.csr_matrix, relative_popularity: np.ndarray) -> Scorer:
    """The customer's own items first, most interacted-with (summed weights) first, ties and the
    rest in popularity order."""
    return repeat_first(train, lambda rows: np.tile(relative_popularity, (len(rows), 1)))


def repeat_first(train: sp.csr_matrix, scorer: Scorer) -> Scorer:
    """``scorer``'s ranking after the customer's own items (most interacted-with first, ties in
    ``scorer``'s order): what a store that recommends repeats serves."""

    def score(rows: np.ndarray) -> np.ndarray:
        history = np.asarray(train[rows].todense(), dtype=np.float64)
        base = np.asarray(scorer(rows), dtype=np.float64)
        low = base.min(axis=1, keepdims=True)
        spread = base.max(axis=1, keepdims=True) - low
        relative = (base - low) / np.where(spread > 0, spread, 1.0)  # in [0, 1]
        top = history.max(axis=1, keepdims=True)
        own = 2.0 + history / np.where(top > 0, top, 1.0) + 1e-3 * relative  # in [2, 3.001]
        return np.where(history > 0, own, relative)

    return score
