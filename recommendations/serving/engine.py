"""Recommendation serving: for a customer, similar items, popular/trending, a session.

For a customer: route (scenario → variant → model version) → cache → on a miss, score with ONNX
Runtime: known customers with their trained vector, or — when they sent events since the
model was trained, or are new — a vector folded in from their interactions (ALS closed form) or
their history (item-based models). Seen and excluded items are left out, filters applied as
masks. Anything short (unknown customer, no model, a damaged bundle, a narrow filter) is topped
up from the fallback chain: live popularity in Redis → the model's own popularity → event counts
in PostgreSQL. The answer says which strategy produced it.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from cachetools import TTLCache

from catalog import selectors as catalog_selectors
from catalog.event_settings import EventSettings
from catalog.online_features import ItemStats, RankingState, item_stats, popular_items, ranking_state
from recommendations.ranking import online
from recommendations.ranking.features import PAIR_FEATURES, feature_matrix, select_features
from recommendations.ranking.ranker import INPUT_NAME
from recommendations.scoring.fold_in import als_fold_in
from recommendations.serving import cache
from recommendations.serving.config import (
    Route,
    ServingConfig,
    VersionRef,
    recent_events_unless_erased,
    serving_config,
    serving_config_forget,
)
from recommendations.serving.filters import Filters
from recommendations.serving.loader import LoadedModel, model_cache, version_problem_record
from recommendations.serving.metrics import recommendation_served, scoring_observed
from shelfwise.observability.tracing import span

logger = logging.getLogger(__name__)

CANDIDATES = 100  # the length of a cached list; `count` is at most this
MAX_COUNT = 100
TOP_UP_STEP = 1e-6  # between the scores of items topped up from popularity (see _top_up)
CACHE_FORMAT = "f2"  # part of cache keys: a new layout of cached values never reads an old one
POPULAR_CACHE_SECONDS = 60.0
RECENT_FOR_BUY_AGAIN = 200  # the customer's latest events a buy-again list is made of


def recommendation_id(experiment_id: int, variant_index: int) -> str:
    """``rec_<experiment>_<variant>_<random>``: events that carry it are attributed to the
    variant without any lookup."""
    token = secrets.token_hex(8)
    return f"rec_{experiment_id}_{variant_index}_{token}"


@dataclass
class Served:
    items: list[tuple[str, float]]
    strategy: str  # model | fallback
    route: Route
    version: int | None
    cache: str = "none"  # hit | miss | none
    recommendation_id: str = ""
    # A two-stage list: the candidate sources that proposed each item (the dashboard shows them).
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.recommendation_id:
            self.recommendation_id = recommendation_id(self.route.experiment_id, self.route.variant_index)


@dataclass
class CustomerRequest:
    tenant_id: int
    customer_id: str
    scenario: str = "default"
    count: int = 10
    filters: Filters = field(default_factory=Filters)
    exclude: frozenset[str] = frozenset()
    exclude_seen: bool | None = None  # None: the store's default (ServingConfig.exclude_seen)
    # False: only the non-personal answer (a public key without the customer's token).
    personal: bool = True


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class CustomerPlan:
    """Where a customer's request goes (route, version) and its cache lookup."""

    config: ServingConfig
    route: Route
    version: VersionRef | None
    lookup: cache.LookupPlan
    # The non-personal answer only, never cached: an erased customer, or a public key without
    # the customer's token.
    declined: bool = False


def plan(request: CustomerRequest, *, warming: bool = False) -> CustomerPlan:
    """Route the request (scenario → variant → model version) and name its cache entry; no I/O
    beyond the routing table (kept in process for a few seconds)."""
    config = serving_config(request.tenant_id)
    route = config.route(request.scenario, request.customer_id)
    version = config.resolve(route.source)
    source_key = str(version.version) if version is not None else str(route.source.get("kind", "popularity"))
    parts = (
        CACHE_FORMAT, route.scenario, route.variant, source_key, request.filters.key(),
        "s" if _excludes_seen(request, config) else "a",
    )  # fmt: skip
    field_name = "" if warming else cache.impression_field(route.scenario, route.experiment_id, route.variant)
    lookup = cache.lookup_plan(
        tenant_id=request.tenant_id,
        customer_id=request.customer_id,
        parts=parts,
        impression=field_name,
        serving_stamp=config.stamp,
        count_stats=not warming,
    )
    declined = not request.personal or config.declines(request.customer_id)
    return CustomerPlan(config, route, version, lookup, declined)


def _excludes_seen(request: CustomerRequest, config: ServingConfig) -> bool:
    return config.exclude_seen if request.exclude_seen is None else request.exclude_seen


def _replan(request: CustomerRequest, *, warming: bool) -> tuple[CustomerPlan, cache.Lookup]:
    """The lookup said the routing changed since this process read it: read it again, route
    again. A change landing in between once more (rare) is not chased: the lookup then takes
    any stamp, as before stamps existed (the routing read here is seconds old at most)."""
    serving_config_forget(request.tenant_id)
    planned = plan(request, warming=warming)
    found = cache.lookup(planned.lookup)
    if found.stale:
        found = cache.lookup(planned.lookup.any_stamp())
    return planned, found


# The store's event weights, or how to read them: a cached answer needs none (nor the database).
Weights = EventSettings | Callable[[], EventSettings]


def _weights_of(weights: Weights) -> EventSettings:
    return weights() if callable(weights) else weights


def recommend(
    request: CustomerRequest,
    *,
    weights: Weights,
    warming: bool = False,
    planned: CustomerPlan | None = None,
    found: cache.Lookup | None = None,
) -> Served:
    """Recommendations for one customer (cached per customer, scenario variant, version, filter).
    ``warming``: computed ahead of a request (by a worker): no impression, no hit/miss count.
    ``planned``/``found``: the plan and its lookup when the caller already did them (the API
    does the lookup in its rate-limit round trip)."""
    planned = planned or plan(request, warming=warming)
    if found is None:
        found = cache.lookup(planned.lookup)
    if found.stale:
        planned, found = _replan(request, warming=warming)
    config, route, version = planned.config, planned.route, planned.version
    if not warming:
        served = served_from_cache(request, planned, found)
        if served is not None:
            return served
    if planned.declined:
        if found.claimed and found.key is not None:
            cache.release(found.key)
        value, state = _compute_for_customer(config, route, version, request, weights, declined=True), "none"
    elif found.value is not None:
        value, state = found.value, "hit"
    elif found.key is None:  # Redis unavailable: count the impression when it is back; compute
        value, state = _compute_for_customer(config, route, version, request, weights), "none"
    else:
        with span("recommendations.compute", **{"shelfwise.cache": "miss"}):
            value, _computed = cache.single_flight(
                found.key,
                lambda: _compute_for_customer(config, route, version, request, weights),
                claimed=found.claimed,
            )
        state = "miss"
    items = _first(value, request.count, request.exclude)
    if len(items) < request.count and len(value["ids"]) >= CANDIDATES:
        # The explicit exclusions ate into a full cached list: compute a longer one for this
        # request only (a short cached list means there is nothing more to recommend).
        value = _compute_for_customer(
            config, route, version, request, weights, candidates=CANDIDATES + len(request.exclude),
            declined=planned.declined,
        )  # fmt: skip
        items = _first(value, request.count, request.exclude)
    served = Served(items, value["strategy"], route, value.get("version"), state, sources=_sources(value, items))
    if not warming:
        recommendation_served(tenant_id=request.tenant_id, endpoint="customer", strategy=served.strategy, cache=state)
    return served


def served_from_cache(request: CustomerRequest, planned: CustomerPlan, found: cache.Lookup) -> Served | None:
    """The answer to a request from its cached list alone, counted as a hit; None if the cache
    had none or the request's exclusions need a longer list (``recommend`` computes then)."""
    value = found.value
    if value is None or planned.declined:
        return None
    items = _first(value, request.count, request.exclude)
    if len(items) < request.count and len(value["ids"]) >= CANDIDATES:
        return None
    served = Served(
        items, value["strategy"], planned.route, value.get("version"), "hit", sources=_sources(value, items)
    )
    recommendation_served(tenant_id=request.tenant_id, endpoint="customer", strategy=served.strategy, cache="hit")
    return served


def _sources(value: dict[str, Any], items: list[tuple[str, float]]) -> dict[str, str]:
    """Which sources proposed the served items (two-stage lists only)."""
    proposed = value.get("sources")
    if not proposed:
        return {}
    by_item = dict(zip(value["ids"], proposed, strict=False))
    return {item: by_item[item] for item, _score in items if by_item.get(item)}


def _first(value: dict[str, Any], count: int, exclude: frozenset[str]) -> list[tuple[str, float]]:
    """The first ``count`` of a computed list that are not excluded."""
    out: list[tuple[str, float]] = []
    for item, score in zip(value["ids"], value["scores"], strict=True):
        if item not in exclude:
            out.append((item, score))
            if len(out) == count:
                break
    return out


def _compute_for_customer(
    config: ServingConfig,
    route: Route,
    version: VersionRef | None,
    request: CustomerRequest,
    weights: Weights,
    *,
    candidates: int = CANDIDATES,
    declined: bool = False,
) -> dict[str, Any]:
    """The list for one customer (top ``candidates``), to cache; ``declined``: the erased
    customer's non-personal list (nothing of theirs read)."""
    model = _load(config, version)
    items: list[tuple[str, float]] = []
    seen: set[str] = set()
    proposed_by: dict[str, str] = {}
    kind = route.source.get("kind")
    exclude_seen = _excludes_seen(request, config)
    # Where the store recommends what customers already had: their own items first (buy again),
    # then the model's or popularity's (docs/adr/0007).
    own: list[tuple[str, float]] = []
    ranked = model is not None and model.ranker is not None and not declined and kind not in {"popularity", "trending"}
    if not exclude_seen and not declined and kind not in {"popularity", "trending"} and not ranked:
        own = _buy_again(request.customer_id, request.filters, _weights_of(weights), candidates)
    if kind == "trending":
        items = _trending(request.tenant_id, candidates, request.filters, set())
    elif ranked:
        assert model is not None  # noqa: S101 - `ranked` says so
        items, seen, proposed_by = _two_stage(
            model, request, _weights_of(weights), exclude_seen=exclude_seen, k=candidates
        )
    elif model is not None and not declined:
        vector, history, seen = _customer_inputs(model, request.tenant_id, request.customer_id, _weights_of(weights))
        if vector is not None or history is not None:
            items = _score(model, vector=vector, history=history,
                           exclude=seen if exclude_seen else {item for item, _s in own},
                           filters=request.filters, k=candidates)  # fmt: skip
    # A popularity or trending source is what the scenario or variant asks for: not a fallback.
    strategy = "popularity" if kind in {"popularity", "trending"} else "model" if items else "fallback"
    if own:
        items = _ahead(own, items)[:candidates]
    if not exclude_seen or declined:
        seen = set()
    elif not seen:
        seen = _seen_without_model(request.tenant_id, request.customer_id)
    if len(items) < candidates:
        items = _top_up(request.tenant_id, items, candidates, request.filters, seen | {i for i, _ in items}, model)
    # Two flat lists (not 100 pairs): a cache hit decodes them with few allocations.
    value = {"ids": [item for item, _score in items], "scores": [round(float(score), 6) for _item, score in items],
             "strategy": strategy,
             "version": model.version if model is not None and strategy == "model" else None}  # fmt: skip
    if proposed_by:
        value["sources"] = [proposed_by.get(item, "") for item, _score in items]
    return value


def _load(config: ServingConfig, version: VersionRef | None) -> LoadedModel | None:
    """The loaded version; if its bundle is damaged, the newest earlier usable version."""
    if version is None:
        return None
    earlier = sorted((v for v in config.versions.values() if v.version < version.version), key=lambda v: -v.version)
    candidates = [version, *earlier]
    for candidate in candidates[:3]:
        model = model_cache().get(
            tenant_id=config.tenant_id,
            version_id=candidate.id,
            version=candidate.version,
            artifact_path=candidate.artifact_path,
            on_loaded=functools.partial(version_problem_record, candidate.id),
        )
        if model is not None:
            return model
    return None


def _customer_inputs(
    model: LoadedModel, tenant_id: int, customer_id: str, weights: EventSettings
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None, set[str]]:
    """(vector for factor models, (indices, weights) history for item-based ones, seen items).

    What the customer did since the model was trained (or at all, if it never saw them) is read
    from PostgreSQL: an indexed read, and right even if Redis lost its data. A customer the model
    knows is also told apart there if they were erased after this process read its routing (a
    request racing the erasure, or one without Redis): in the same round trip; then nothing of
    theirs is used, and this process's loaded copy forgets them."""
    known = customer_id in model.customer_index
    since = datetime.fromtimestamp(model.last_event_time, tz=UTC) if known else None
    if known:
        events = recent_events_unless_erased(customer_id, since=since)
        if events is None:
            model.forget_customer(customer_id)
            return None, None, set()
    else:
        events = catalog_selectors.customer_recent_events(external_id=customer_id)
    return _inputs(model, customer_id, weights, events)


def _inputs(
    model: LoadedModel,
    customer_id: str,
    weights: EventSettings,
    events: list[tuple[str, str, float | None, datetime]],
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None, set[str]]:
    history_index, history_weight = model.history_of(customer_id)
    seen = {model.item_ids[i] for i in history_index}
    new_events = [(item, weights.weight(kind, value)) for item, kind, value, _ts in events]
    seen |= {item for item, _w in new_events}
    new_index = [(model.item_index[item], w) for item, w in new_events if item in model.item_index and w > 0]

    if model.kind == "factors":
        if model.algorithm == "popularity":
            return np.ones(1, dtype=np.float32), None, seen
        if new_index and model.fold_in and model.item_factors is not None and model.gram is not None:
            combined: dict[int, float] = {}
            for index, weight in zip(history_index.tolist(), history_weight.tolist(), strict=True):
                combined[index] = combined.get(index, 0.0) + float(weight)
            for index, weight in new_index:
                combined[index] = combined.get(index, 0.0) + weight
            vector = als_fold_in(
                model.item_factors,
                model.gram,
                regularization=model.fold_in["regularization"],
                alpha=model.fold_in["alpha"],
                items=np.array(list(combined)),
                values=np.array(list(combined.values()), dtype=np.float32),
            )
            return vector, None, seen
        if customer_id in model.customer_index and model.customer_factors is not None:
            return model.customer_factors[model.customer_index[customer_id]], None, seen
        return None, None, seen
    indices = sorted(set(history_index.tolist()) | {index for index, _w in new_index})
    if not indices:
        return None, None, seen
    return None, (np.array(indices, dtype=np.int64), np.ones(len(indices), dtype=np.float32)), seen


def _penalty(model: LoadedModel, filters: Filters) -> np.ndarray | None:
    """−∞ for the model's items a filter rules out (deleted items always); None if none are.

    Built from the ids the database returns (deleted, or matching), looked up in the version's
    index: a million-item catalog is not walked in Python, nor scanned per request."""

    def compute() -> np.ndarray:
        index = model.item_index
        if filters.empty:
            deleted = [index[item] for item in catalog_selectors.item_deleted_ids() if item in index]
            if not deleted:
                return np.zeros((1, 0), dtype=np.float32)  # kept as "nothing ruled out"
            penalty = np.zeros((1, model.n_items), dtype=np.float32)
            penalty[0, deleted] = -np.inf
            return penalty
        allowed = [index[item] for item in filters.matching() if item in index]
        penalty = np.full((1, model.n_items), -np.inf, dtype=np.float32)
        penalty[0, allowed] = 0.0
        return penalty

    penalty = model.mask(filters.key(), compute)
    return penalty if penalty.shape[1] else None  # none ruled out: the graph's default (zeros) is cheaper


def _score(
    model: LoadedModel,
    *,
    vector: np.ndarray | None,
    history: tuple[np.ndarray, np.ndarray] | None,
    exclude: set[str],
    filters: Filters,
    k: int,
) -> list[tuple[str, float]]:
    excluded = [model.item_index[item] for item in exclude if item in model.item_index]
    k = min(k, model.n_items)
    penalty = _penalty(model, filters)
    if model.ann is not None and vector is not None and model.kind == "factors" and model.algorithm != "popularity":
        found = _ann_score(model, vector, excluded, penalty, k)
        if found is not None:
            return found
    if penalty is not None and not model.takes_penalty:
        excluded += np.flatnonzero(np.isinf(penalty[0])).tolist()
    inputs: dict[str, np.ndarray] = {
        "exclude": np.array([excluded or [-1]], dtype=np.int64),
        "k": np.array([k], dtype=np.int64),
    }
    if penalty is not None and model.takes_penalty:
        inputs["penalty"] = penalty
    if model.kind == "factors":
        inputs["vector"] = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    elif model.kind == "dense_history":
        dense = np.zeros((1, model.n_items), dtype=np.float32)
        if history is not None:
            dense[0, history[0]] = 1.0
        inputs["vector"] = dense
    else:
        assert history is not None  # noqa: S101 - _customer_inputs returns a history for item-based models
        inputs["history"] = history[0].reshape(1, -1)
        inputs["history_weight"] = history[1].reshape(1, -1)
    started = time.perf_counter()
    with span("recommendations.score", **{"shelfwise.model_kind": model.kind, "shelfwise.items": model.n_items}):
        scores, _index, ids = model.scoring.run(None, inputs)
    scoring_observed(seconds=time.perf_counter() - started, batch=1)
    return [(str(item), float(score)) for item, score in zip(ids[0], scores[0], strict=True) if np.isfinite(score)]


# The ANN index is asked for this many more items than a request needs beyond its exclusions
# (filters rule out an unknown share of what it finds).
ANN_MARGIN = 100


def _ann_score(
    model: LoadedModel, vector: np.ndarray, excluded: list[int], penalty: np.ndarray | None, k: int
) -> list[tuple[str, float]] | None:
    """The ``k`` best items by the version's ANN index (docs/adr/0009), without the excluded
    ones and those a filter rules out; None when too few are left (the caller scores exactly)."""
    assert model.ann is not None  # noqa: S101 - the caller checked
    ruled_out = set(excluded)
    count = min(model.n_items, 2 * (k + len(ruled_out)) + ANN_MARGIN)
    started = time.perf_counter()
    with span("recommendations.ann", **{"shelfwise.items": model.n_items, "shelfwise.asked": count}):
        rows, scores = model.ann.search(vector, count)
    scoring_observed(seconds=time.perf_counter() - started, batch=1)
    # −1: the lists searched held fewer items than asked for; −∞ in the penalty: ruled out (a
    # filter, or deleted)
    blocked = rows[0] < 0
    if penalty is not None:
        blocked |= np.isinf(penalty[0, np.maximum(rows[0], 0)])
    kept: list[tuple[str, float]] = []
    for row, score, skip in zip(rows[0].tolist(), scores[0].tolist(), blocked.tolist(), strict=True):
        if skip or row in ruled_out or not math.isfinite(score):
            continue
        kept.append((model.item_ids[row], score))
        if len(kept) == k:
            return kept
    return None


# --------------------------------------------------------------------------- two stages


# The popular and trending heads read with the customer's state: this many entries beyond what
# the sources keep (what the customer had is left out of them); read again, longer, when too few
# are left.
HEAD_MARGIN = 50


def _two_stage(
    model: LoadedModel, request: CustomerRequest, weights: EventSettings, *, exclude_seen: bool, k: int
) -> tuple[list[tuple[str, float]], set[str], dict[str, str]]:
    """A two-stage version's list (docs/adr/0008): candidates from the version's sources, their
    features from the aggregates in Redis (two round trips), ordered by the ranker. Returns the
    list, what the customer had, and which sources proposed each item ("cf+popular"). With Redis
    unavailable the ranker gets what it can: the collaborative candidates, with the features
    Redis would have given missing."""
    info = model.ranker_info or {}
    names: list[str] = list(info.get("sources", []))
    limits = online.limits()
    heads = {"popular": limits["popular"] + HEAD_MARGIN, "trending": limits["trending"] + HEAD_MARGIN}
    state = ranking_state(
        request.tenant_id, request.customer_id, recent=online.RECENT_ITEMS * 2,
        popular=heads["popular"], trending=heads["trending"],
    )  # fmt: skip
    vector, history, seen = _customer_inputs(model, request.tenant_id, request.customer_id, weights)
    had = seen | (set(state.pairs) if state is not None else set())
    excluded = had if exclude_seen else set()
    seeds = [model.item_index[item] for item in online.recent_seeds(state) if item in model.item_index]
    proposed: dict[str, list[tuple[str, float]]] = {}
    for name in names:
        if name == "cf" and (vector is not None or history is not None):
            scored = _score(model, vector=vector, history=history, exclude=excluded, filters=request.filters,
                            k=limits["cf"])  # fmt: skip
            proposed[name] = online.best(dict(scored), limits["cf"])
        elif name == "neighbours" and seeds:
            index, scores = model.neighbours(seeds)
            summed = online.summed_neighbours(seeds, index, scores, model.item_ids)
            proposed[name] = online.best(summed, limits[name], excluded)
        elif name == "together" and seeds and model.together is not None:
            proposed[name] = online.best(
                online.summed_rows(model.together, seeds, model.item_ids), limits[name], excluded
            )
        elif name == "buy_again" and state is not None and not exclude_seen:
            proposed[name] = online.best({item: pair[0] for item, pair in state.pairs.items()}, limits[name])
        elif name in {"popular", "trending"} and state is not None:
            kind = "pop" if name == "popular" else "trend"
            head = state.popular if name == "popular" else state.trending
            proposed[name] = online.best(dict(head), limits[name], excluded)  # as Redis has them (same order)
            if len(proposed[name]) < limits[name] and len(head) == heads[name]:  # the head held too much they had
                longer = popular_items(request.tenant_id, kind, limits[name] + len(excluded) + HEAD_MARGIN) or head
                proposed[name] = online.best(dict(longer), limits[name], excluded)
        else:
            proposed[name] = []
    allowed = _allowed(model, request.filters, {item for pairs in proposed.values() for item, _score in pairs})
    found = online.candidates({name: [p for p in pairs if p[0] in allowed] for name, pairs in proposed.items()})
    if not found.item_ids:
        return [], had, {}
    stats = item_stats(request.tenant_id, found.item_ids)
    at = _features_instant(model, state, stats)
    _popularity_at(found, state, at)
    catalog = (model.attributes, model.item_index) if model.attributes is not None else None
    aggregates = online.online_aggregates(state, found.item_ids, stats, at, catalog)
    wanted: list[str] = list(info["feature_names"])
    features = select_features(feature_matrix(found.table, aggregates, names), names, wanted)
    if state is None:  # what the customer had is unknown, not "never"
        columns = [wanted.index(name) for name in PAIR_FEATURES if name in wanted]
        features[:, columns] = np.nan
    started = time.perf_counter()
    with span("recommendations.rank", **{"shelfwise.candidates": len(found.item_ids)}):
        scores = model.ranker.run(None, {INPUT_NAME: features})[0].ravel()  # type: ignore[union-attr]
    scoring_observed(seconds=time.perf_counter() - started, batch=1)
    order = np.argsort(-scores, kind="stable")[:k].tolist()
    return (
        [(found.item_ids[i], float(scores[i])) for i in order],
        had,
        {found.item_ids[i]: "+".join(found.sources_of(i)) for i in order},
    )


def _features_instant(model: LoadedModel, state: RankingState | None, stats: ItemStats | None) -> float:
    """The instant a two-stage list's features describe: now, or the store's newest event known
    here (the version's, the candidates', the customer's) if that is older — a history imported
    in one go, or a quiet spell. A training's cuts fall where events are; features as of a
    silence that long (item ages, days since, decayed sums gone to zero) are what no ranker saw."""
    newest = model.last_event_time
    if stats is not None and np.isfinite(stats.last).any():
        newest = max(newest, float(np.nanmax(stats.last)))
    if state is not None and math.isfinite(state.last):
        newest = max(newest, state.last)
    now = time.time()
    return min(now, newest + 1.0) if newest > 0 else now


def _popularity_at(found: online.OnlineCandidates, state: RankingState | None, at: float) -> None:
    """The popular and trending sources' scores (the sums as Redis keeps them, forward-decayed)
    as decayed sums at ``at``, as a training computes them at a cut."""
    if state is None:
        return
    for name, kind in (("popular", "pop"), ("trending", "trend")):
        if name in found.table.scores:
            found.table.scores[name] = found.table.scores[name] * state.decay_factor(kind, at)


def _allowed(model: LoadedModel, filters: Filters, items: set[str]) -> set[str]:
    """The ``items`` a filter lets through, deleted items never: the version's own items by the
    penalty its scoring applies (per filter, kept for MASK_TTL_SECONDS as for a single-stage
    list), the others (new since the training) from PostgreSQL."""
    index = model.item_index
    unknown = sorted(item for item in items if item not in index)
    penalty = _penalty(model, filters)
    if penalty is None:
        known = items.difference(unknown)
    else:
        mine = [item for item in items if item in index]
        passed = np.isfinite(penalty[0, [index[item] for item in mine]]) if mine else np.zeros(0, dtype=bool)
        known = {item for item, ok in zip(mine, passed.tolist(), strict=True) if ok}
    if unknown:
        known |= filters.matching(unknown)
    return known


# --------------------------------------------------------------------------- fallback chain


# All-time event counts per (store, filter), reused for a minute per process.
_popular_cache: TTLCache[tuple[int, str], list[tuple[str, float]]] = TTLCache(maxsize=4096, ttl=POPULAR_CACHE_SECONDS)
_popular_lock = threading.Lock()


def _popular_from_database(tenant_id: int, filters: Filters, limit: int) -> list[tuple[str, float]]:
    """All-time event counts per item (the last link of the chain), reused for a minute."""
    key = (tenant_id, filters.key())
    with _popular_lock:
        cached = _popular_cache.get(key)
    if cached is not None:
        return cached[:limit]
    where, params = filters.where()
    rows = catalog_selectors.popular_item_ids(limit=max(limit, CANDIDATES * 2), where=where, params=params)
    with _popular_lock:
        _popular_cache[key] = rows
    return rows[:limit]


def _keep_matching(candidates: Sequence[tuple[str, float]], filters: Filters) -> list[tuple[str, float]]:
    if not candidates:
        return []
    allowed = filters.matching([item for item, _ in candidates])
    return [(item, score) for item, score in candidates if item in allowed]


def _popular(  # noqa: PLR0917 - internal; positional reads naturally at its call sites
    tenant_id: int, kind: str, limit: int, filters: Filters, exclude: set[str], model: LoadedModel | None = None
) -> list[tuple[str, float]]:
    """Popular (``pop``) or trending (``trend``) items: Redis, then the model, then PostgreSQL."""
    out: list[tuple[str, float]] = []
    taken = set(exclude)

    def add(candidates: Iterable[tuple[str, float]]) -> None:
        for item, score in candidates:
            if item not in taken and len(out) < limit:
                out.append((item, score))
                taken.add(item)

    live = popular_items(tenant_id, kind, limit * 4 + len(exclude))
    if live:
        add(_keep_matching(live, filters))
    if len(out) < limit and model is not None and model.n_items:
        order, counts = model.by_popularity()
        head = limit * 4 + len(exclude)
        add(
            _keep_matching(
                [(model.item_ids[i], c) for i, c in zip(order[:head].tolist(), counts[:head].tolist(), strict=True)],
                filters,
            )
        )
    if len(out) < limit:
        # reused for a minute: an item deleted or changed since must not come back with it
        add(_keep_matching(_popular_from_database(tenant_id, filters, limit + len(exclude)), filters))
    return _relative(out)


def _relative(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Popularity scores as a share of the best one (raw decayed counts mean nothing to a store)."""
    best = max((score for _item, score in items), default=0.0)
    if best <= 0:
        return items
    return [(item, score / best) for item, score in items]


def _trending(tenant_id: int, limit: int, filters: Filters, exclude: set[str]) -> list[tuple[str, float]]:
    return _popular(tenant_id, "trend", limit, filters, exclude)


def _top_up(  # noqa: PLR0917 - internal; positional reads naturally at its call sites
    tenant_id: int,
    items: list[tuple[str, float]],
    count: int,
    filters: Filters,
    exclude: set[str],
    model: LoadedModel | None = None,
) -> list[tuple[str, float]]:
    missing = count - len(items)
    if missing <= 0:
        return items
    extra = _popular(tenant_id, "pop", missing, filters, exclude | {item for item, _ in items}, model)
    if items and extra:
        # Popularity's scores are on another scale (normalised to 1.0): the added items follow
        # the list's own in popularity's order, scored just below its last, so that the scores
        # of a list always descend.
        floor = items[-1][1]
        extra = [(item, floor - TOP_UP_STEP * rank) for rank, (item, _score) in enumerate(extra, start=1)]
    return items + extra


def _ahead(first: list[tuple[str, float]], rest: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``first`` (scored 0-1) above ``rest``: its scores lifted past rest's best, so that the
    list's scores still descend."""
    if not rest:
        return first
    lift = max(rest[0][1], 0.0)
    taken = {item for item, _score in first}
    return [(item, lift + score) for item, score in first] + [pair for pair in rest if pair[0] not in taken]


def _buy_again(customer_id: str, filters: Filters, weights: EventSettings, limit: int) -> list[tuple[str, float]]:
    """The customer's own items (of their latest events), most interacted-with first (summed
    event weights; ties: the most recent first), scored as a share of the first."""
    totals: dict[str, float] = {}
    latest: dict[str, float] = {}
    for item, kind, value, timestamp in catalog_selectors.customer_recent_events(
        external_id=customer_id, limit=RECENT_FOR_BUY_AGAIN
    ):
        totals[item] = totals.get(item, 0.0) + weights.weight(kind, value)
        latest[item] = max(latest.get(item, 0.0), timestamp.timestamp())
    ranked = sorted((item for item, total in totals.items() if total > 0), key=lambda i: (-totals[i], -latest[i]))
    kept = _keep_matching([(item, totals[item]) for item in ranked], filters)  # deleted ones are not read
    return _relative(kept[:limit])


def _seen_without_model(tenant_id: int, customer_id: str) -> set[str]:
    return {item for item, _k, _v, _t in catalog_selectors.customer_recent_events(external_id=customer_id, limit=200)}


# --------------------------------------------------------------------------- other lists


def popular(
    tenant_id: int, *, kind: str, count: int, filters: Filters, exclude: frozenset[str], stamp: str | None = None
) -> Served:
    """The store's popular (30-day half-life) or trending (1-day) items."""
    config = serving_config(tenant_id, stamp=stamp)
    route = Route(kind, 0, "default", 0, {"kind": kind})
    model = _load(config, config.active)
    items = _popular(tenant_id, "pop" if kind == "popular" else "trend", count, filters, set(exclude), model)
    cache.count_impression(tenant_id=tenant_id, field=cache.impression_field(kind, 0, "default"))
    recommendation_served(tenant_id=tenant_id, endpoint=kind, strategy="popularity", cache="none")
    return Served(items, "popularity", route, None)


def similar(
    tenant_id: int,
    *,
    item_id: str,
    count: int,
    filters: Filters,
    exclude: frozenset[str],
    customer_id: str | None,
    weights: EventSettings,
    shown: bool = True,
    stamp: str | None = None,
) -> Served:
    """Items similar to ``item_id`` (the model's neighbours); re-ranked for ``customer_id`` if given.
    ``shown``: False for a look that no shopper sees (the dashboard): no impression is counted.
    Raises LookupError if the store has no such item."""
    categories = catalog_selectors.item_categories(external_id=item_id)
    if categories is None:
        raise LookupError(item_id)
    config = serving_config(tenant_id, stamp=stamp)
    route = Route("similar", 0, "default", 0, {"kind": "active"})
    model = _load(config, config.active)
    taken = set(exclude) | {item_id}
    seen: set[str] = set()
    items: list[tuple[str, float]] = []
    strategy = "fallback"
    if model is not None and item_id in model.item_index:
        index, scores = model.neighbours([model.item_index[item_id]])
        candidates = [
            (model.item_ids[i], float(s)) for i, s in zip(index[0].tolist(), scores[0].tolist(), strict=True)
            if i >= 0 and math.isfinite(s)
        ]  # fmt: skip
        if not filters.empty:
            candidates = _keep_matching(candidates, filters)
        if customer_id is not None:
            vector, _history, seen = _customer_inputs(model, tenant_id, customer_id, weights)
            if vector is not None and model.item_factors is not None and model.kind == "factors":
                candidates = _personalise(model, candidates, vector)
        items = [(item, score) for item, score in candidates if item not in taken and item not in seen][:count]
        strategy = "model" if items else "fallback"
    if len(items) < count:
        # Same-category popular items first, then popular items.
        if categories:
            related = Filters(
                categories=tuple(categories),
                price_min=filters.price_min,
                price_max=filters.price_max,
                in_stock=filters.in_stock,
                properties=filters.properties,
            )
            items += _popular(
                tenant_id, "pop", count - len(items), related, taken | seen | {i for i, _ in items}, model
            )
        items = _top_up(tenant_id, items, count, filters, taken | seen, model)
    if shown:
        cache.count_impression(tenant_id=tenant_id, field=cache.impression_field("similar", 0, "default"))
        recommendation_served(tenant_id=tenant_id, endpoint="similar", strategy=strategy, cache="none")
    return Served(items[:count], strategy, route, model.version if model is not None and strategy == "model" else None)


def _personalise(
    model: LoadedModel, candidates: list[tuple[str, float]], vector: np.ndarray
) -> list[tuple[str, float]]:
    """Blend similarity with the customer's own score (equal weights, by rank)."""
    if not candidates or model.item_factors is None:
        return candidates
    indices = np.array([model.item_index[item] for item, _ in candidates])
    affinity = model.item_factors[indices] @ np.asarray(vector, dtype=np.float32).reshape(-1)
    n = len(candidates)
    similarity_rank = np.arange(n)
    affinity_rank = np.empty(n)
    affinity_rank[np.argsort(-affinity, kind="stable")] = np.arange(n)
    blended = 0.5 * similarity_rank + 0.5 * affinity_rank
    order = np.argsort(blended, kind="stable")
    return [(candidates[i][0], float(1.0 - blended[i] / max(n, 1))) for i in order]


def session(
    tenant_id: int,
    *,
    items: Sequence[str],
    count: int,
    filters: Filters,
    exclude: frozenset[str],
    stamp: str | None = None,
) -> Served:
    """Recommendations for an anonymous session from the items it interacted with."""
    config = serving_config(tenant_id, stamp=stamp)
    route = Route("session", 0, "default", 0, {"kind": "active"})
    model = _load(config, config.active)
    taken = set(exclude) | set(items)
    result: list[tuple[str, float]] = []
    if model is not None:
        known = sorted({model.item_index[item] for item in items if item in model.item_index})
        if known:
            vector: np.ndarray | None = None
            history = (np.array(known, dtype=np.int64), np.ones(len(known), dtype=np.float32))
            if model.kind == "factors":
                if model.algorithm == "popularity":
                    vector = np.ones(1, dtype=np.float32)
                elif model.fold_in and model.item_factors is not None and model.gram is not None:
                    vector = als_fold_in(
                        model.item_factors,
                        model.gram,
                        regularization=model.fold_in["regularization"],
                        alpha=model.fold_in["alpha"],
                        items=history[0],
                        values=history[1],
                    )
                elif model.item_factors is not None:  # no closed form (BPR): the items' mean
                    vector = model.item_factors[history[0]].mean(axis=0)
            result = _score(model, vector=vector, history=history, exclude=taken, filters=filters, k=count)
    strategy = "model" if result else "fallback"
    result = _top_up(tenant_id, result, count, filters, taken, model)
    cache.count_impression(tenant_id=tenant_id, field=cache.impression_field("session", 0, "default"))
    recommendation_served(tenant_id=tenant_id, endpoint="session", strategy=strategy, cache="none")
    return Served(result[:count], strategy, route, model.version if model is not None and strategy == "model" else None)
