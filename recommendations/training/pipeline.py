"""The training pipeline: extract → measure repeats → split → choose the recipe on validation
(within a time budget) → train → evaluate against what the store serves without a model →
refit on all data. Export and verification follow in ``export`` / ``artifacts``.

Every stage is timed and reports progress; the same code runs in the Celery task and in
``bench/quality.py``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from recommendations.training import algorithms
from recommendations.training.algorithms import Fitted, history_vector
from recommendations.training.baselines import fallback_scorer, repeat_first
from recommendations.training.data import (
    REPEAT_AWARE_RATE,
    EventArrays,
    Indexer,
    Interactions,
    ItemAttributes,
    apply_time_decay,
    build_matrix,
    external_ids,
    extract_events,
    item_attributes,
    repeat_rate,
)
from recommendations.training.evaluation import evaluate
from recommendations.training.split import Split, customer_split, holdout_split, random_split, validation_split

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (stage, percent)
AUTO_CANDIDATES = ("als", "bpr", "itemknn_bm25", "ease")
# Parameter sets tried per candidate when tuning (its defaults first, then a seeded sample of its
# search space), within the time budget.
MAX_CONFIGS = 12
# What a candidate recipe may fail with on data it cannot handle (a catalog too large, memory,
# a singular matrix): skipped by `auto`.
CANDIDATE_FAILURES: tuple[type[BaseException], ...] = (ValueError, MemoryError, np.linalg.LinAlgError)


class InsufficientData(Exception):
    """Not enough data to train and evaluate a model (the message says what is missing)."""


@dataclass
class PipelineOptions:
    weights: Mapping[str, float]
    algorithm: str = "als"
    params: Mapping[str, Any] = field(default_factory=dict)  # overrides for the algorithm
    tune: bool = False
    tuning_budget_seconds: float | None = None  # the search stops trying parameters after this
    holdout: float = 0.2
    protocol: str = "time"  # time (falling back to customer, see split.holdout_split) | customer | random
    repeat_aware: bool | None = None  # whether repeats count in evaluation; None: the store's repeat rate
    seed: int = 42
    half_life_days: float | None = None
    binarize: bool = False  # every interaction counts 1 (e.g. ratings taken as implicit feedback)
    min_interactions: int = 100
    min_customers: int = 10
    min_items: int = 10
    max_evaluation_customers: int = 10_000  # a seeded sample of the holdout's customers beyond this
    # The active version's recipe, evaluated on the same holdout for the release gate.
    compare_with: tuple[str, Mapping[str, Any]] | None = None


def sample_customers(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` of ``users`` (a seeded random sample, in order). Evaluation ranks the
    whole catalog for each customer, so its cost is linear in customers; the metrics say how
    many were evaluated (``users``) next to how many the holdout had (``holdout_customers``)."""
    if len(users) <= limit:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=limit, replace=False))


@dataclass
class PipelineResult:
    algorithm: str
    params: dict[str, Any]
    fitted: Fitted
    interactions: Interactions
    metrics: dict[str, Any]
    timings: dict[str, float]
    data_counts: dict[str, Any]
    tuning: dict[str, Any]
    # The second stage (recommendations.ranking.two_stage.TwoStage), when it beat the single
    # stage on the holdout (refit on all data), and the co-occurrence its bought-together source
    # reads.
    two_stage: Any = None
    together: sp.csr_matrix | None = None


class Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def total(self) -> float:
        return time.perf_counter() - self._started


class _Stage:
    def __init__(self, clock: Clock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.timings[self.name] = round(
            self.clock.timings.get(self.name, 0.0) + time.perf_counter() - self.began, 4
        )


def _noop(stage: str, percent: int) -> None:
    return None


class SecondStage(Protocol):
    """What trains a second stage after the single stage was evaluated (``run``'s state passed
    on; it may replace ``metrics["model"]``): recommendations.ranking.stage.second_stage."""

    def __call__(  # noqa: PLR0917 - run()'s state, passed on
        self,
        options: PipelineOptions,
        split: Split,
        events: EventArrays,
        indexer: Indexer,
        algorithm: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        clock: Clock,
        progress: Progress,
        attributes: ItemAttributes | None,
    ) -> tuple[Any, sp.csr_matrix | None]: ...


def run(
    options: PipelineOptions,
    progress: Progress = _noop,
    events: EventArrays | None = None,
    second_stage: SecondStage | None = None,
    attributes: ItemAttributes | None = None,
) -> PipelineResult:
    """Train and evaluate a model of the current tenant (or of ``events`` if given); with
    ``second_stage``, also a two-stage recommender that serves if it beats the single stage
    (its features read the catalog's prices and categories: the tenant's, or ``attributes``
    of ``events``' items in the order of their ids)."""
    clock = Clock()
    from_database = events is None
    progress("extracting events", 5)
    with clock.stage("extract"):
        if events is None:
            events = extract_events(options.weights)
        events = apply_time_decay(events, options.half_life_days)
        if options.binarize:
            events = events.reweighted(np.ones(len(events), np.float32))
        indexer = Indexer.of(events)
        matrix = build_matrix(events, indexer)
        if options.binarize:
            matrix.data[:] = 1.0
        if second_stage is not None and attributes is None and from_database:
            attributes = item_attributes(indexer)
    counts: dict[str, Any] = {
        "events": len(events),
        "interactions": int(matrix.nnz),
        "customers": int(np.count_nonzero(np.diff(matrix.indptr))),
        "items": int(matrix.shape[1]),
        # Events after this time are new to the model (serving folds them in).
        "last_event_time": float(events.times.max()) if len(events) else 0.0,
    }
    _check_enough(counts, options)

    progress("splitting", 15)
    with clock.stage("split"):
        rate = repeat_rate(events)
        repeats = options.repeat_aware if options.repeat_aware is not None else rate >= REPEAT_AWARE_RATE
        counts["repeat_rate"] = round(rate, 4)
        counts["repeat_aware"] = bool(repeats)
        if options.protocol == "time":
            split = holdout_split(events, options.holdout, options.seed, repeats=repeats)
        elif options.protocol == "customer":
            split = customer_split(events, options.holdout, options.seed, repeats=repeats)
        else:
            split = random_split(matrix, indexer, options.holdout, options.seed)
    if len(split.test_users) == 0:
        raise InsufficientData(
            "no customer has both training events and held-out events to evaluate on "
            "(every customer needs two or more events)"
        )

    progress("choosing parameters", 20)
    tuning: dict[str, Any] = {}
    with clock.stage("tune"):
        algorithm, params = _choose(options, split, tuning, progress, n_items=int(matrix.shape[1]))

    progress(f"training {algorithm}", 55)
    with clock.stage("train"):
        model = algorithms.fit(algorithm, split.train, params, seed=options.seed)
    progress("evaluating", 65)
    with clock.stage("evaluate"):
        metrics = _holdout_metrics(options, split, model, algorithm, params)
    stage, together = (
        second_stage(options, split, events, indexer, algorithm, params, metrics, clock, progress, attributes)
        if second_stage is not None
        else (None, None)
    )
    progress("training on all data", 75)
    with clock.stage("refit"):
        fitted = algorithms.fit(algorithm, matrix, params, seed=options.seed)
        # The store's ids for rows and columns (internal ids stand in for events given directly).
        customer_ids, item_ids = (
            external_ids(indexer)
            if from_database
            else (indexer.customer_ids.astype(str).astype(object), indexer.item_ids.astype(str).astype(object))
        )
    timings = dict(clock.timings)
    timings["pipeline"] = round(clock.total(), 4)
    return PipelineResult(
        algorithm=algorithm,
        params=params,
        fitted=fitted,
        interactions=Interactions(matrix, customer_ids, item_ids, counts),
        metrics=metrics,
        timings=timings,
        data_counts=counts,
        tuning=tuning,
        two_stage=stage,
        together=together,
    )


def _holdout_metrics(
    options: PipelineOptions, split: Split, model: Fitted, algorithm: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The model, what the store serves without one (``fallback``), plain popularity and (when
    asked) the active version's recipe, on the same holdout and protocol."""
    users = sample_customers(split.test_users, options.max_evaluation_customers, options.seed)
    history = history_vector(split.train)
    metrics: dict[str, Any] = {
        "protocol": split.protocol,
        "holdout": split.kind,
        "repeats_count": split.repeats,
        "holdout_customers": len(split.test_users),
        "model": evaluate(_served(split, model, history), split.exclude, split.test, users),
    }
    fallback_name, fallback = fallback_scorer(split)
    metrics["fallback"] = {"name": fallback_name, **evaluate(fallback, split.exclude, split.test, users)}
    baseline = algorithms.fit("popularity", split.train, {})
    # Plain all-time counts, for reference (never after the customer's own items).
    metrics["popularity"] = evaluate(lambda rows: baseline.score(rows, history), split.exclude, split.test, users)
    metrics["active"] = None
    if options.compare_with is not None:
        active_algorithm, active_params = options.compare_with
        if active_algorithm == algorithm and dict(active_params) == params:
            metrics["active"] = dict(metrics["model"])
        else:
            try:
                active = algorithms.fit(active_algorithm, split.train, active_params, seed=options.seed)
            except CANDIDATE_FAILURES as exc:  # the active recipe no longer fits the data
                logger.warning("the active version's recipe could not be evaluated: %s", exc)
            else:
                metrics["active"] = evaluate(_served(split, active, history), split.exclude, split.test, users)
    return metrics


def _check_enough(counts: Mapping[str, Any], options: PipelineOptions) -> None:
    missing = []
    if counts["interactions"] < options.min_interactions:
        missing.append(f"{counts['interactions']} interactions (need {options.min_interactions})")
    if counts["customers"] < options.min_customers:
        missing.append(f"{counts['customers']} customers with events (need {options.min_customers})")
    if counts["items"] < options.min_items:
        missing.append(f"{counts['items']} items with events (need {options.min_items})")
    if missing:
        raise InsufficientData("not enough data to train: " + ", ".join(missing))


def _choose(
    options: PipelineOptions, split: Split, tuning: dict[str, Any], progress: Progress, *, n_items: int
) -> tuple[str, dict[str, Any]]:
    """The algorithm and parameters to train, chosen on a validation split cut from the
    training part (the test part is never looked at). ``n_items``: the catalog the chosen
    recipe is refit on (all the data), which a candidate must be able to handle. With ``auto``,
    a candidate that cannot (EASE beyond EASE_MAX_ITEMS) or that fails is skipped and said so
    in ``tuning["skipped"]``, never fatal.

    Tuning tries each candidate's defaults first, then the others' parameter sets in turns (one
    per candidate per round, at most MAX_CONFIGS each), and stops starting new fits once
    ``tuning_budget_seconds`` have passed: a large store is tuned less finely, never for hours."""
    candidates = [options.algorithm] if options.algorithm != "auto" else list(AUTO_CANDIDATES)
    skipped: dict[str, str] = {}
    if options.algorithm == "auto" and n_items > algorithms.EASE_MAX_ITEMS and "ease" in candidates:
        candidates.remove("ease")
        skipped["ease"] = f"the catalog has {n_items} items; EASE handles up to {algorithms.EASE_MAX_ITEMS}"
    base = {
        name: algorithms.params_for(name, options.params if name == options.algorithm else None) for name in candidates
    }
    if skipped:
        tuning["skipped"] = dict(skipped)
    if not options.tune and len(candidates) == 1:
        return candidates[0], base[candidates[0]]

    started = time.monotonic()
    validation = validation_split(split, options.holdout, options.seed)
    users = sample_customers(validation.test_users, options.max_evaluation_customers, options.seed)
    if len(users) == 0:
        logger.info("no validation users; using default parameters")
        name = candidates[0]
        return name, base[name]
    queues = {
        name: _configs(base[name], algorithms.SEARCH_SPACES[name], options.seed) if options.tune else [base[name]]
        for name in candidates
    }
    budget = options.tuning_budget_seconds
    deadline = started + budget if budget is not None else None
    results, out_of_time = _search(queues, validation, users, skipped, progress, seed=options.seed, deadline=deadline)
    if not results:
        raise InsufficientData(
            "no candidate recipe could be trained: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    chosen = max(results, key=lambda name: results[name]["validation_ndcg@10"])
    tuning.update(
        {
            "protocol": validation.protocol,
            "candidates": results,
            "chosen": chosen,
            "tuned": options.tune,
            "searched": options.algorithm,  # what was asked for: retrains reuse the outcome
            "seconds": round(time.monotonic() - started, 1),
            "budget_seconds": budget,
            "stopped_by_budget": out_of_time,
        }
    )
    if skipped:
        tuning["skipped"] = dict(skipped)
    return chosen, dict(results[chosen]["params"])


def _search(
    queues: dict[str, list[dict[str, Any]]],
    validation: Split,
    users: np.ndarray,
    skipped: dict[str, str],
    progress: Progress,
    *,
    seed: int,
    deadline: float | None,
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Each candidate's parameter sets in turns (its best on validation, per candidate), until
    the deadline (the first set of each is always tried); whether the deadline stopped it."""
    history = history_vector(validation.train)
    candidates = list(queues)
    results: dict[str, dict[str, Any]] = {}
    for round_ in range(max(len(q) for q in queues.values())):
        for name in candidates:
            if name in skipped or round_ >= len(queues[name]):
                continue
            if round_ > 0 and deadline is not None and time.monotonic() > deadline:
                return results, True
            params = queues[name][round_]
            try:
                model = algorithms.fit(name, validation.train, params, seed=seed)
                score = evaluate(_served(validation, model, history), validation.exclude, validation.test, users)[
                    "ndcg@10"
                ]
            except CANDIDATE_FAILURES as exc:
                # A candidate that cannot handle the data is left out, never fatal (unless it is
                # the only one: the store asked for it by name).
                if len(candidates) == 1:
                    raise
                logger.warning("training candidate %s skipped: %s: %s", name, exc.__class__.__name__, exc)
                skipped[name] = f"{exc.__class__.__name__}: {exc}"
                results.pop(name, None)
                continue
            best = results.setdefault(name, {"params": params, "validation_ndcg@10": -1.0, "configs": 0})
            best["configs"] += 1
            if score > best["validation_ndcg@10"]:
                best["params"], best["validation_ndcg@10"] = params, round(score, 5)
        progress(f"choosing parameters (round {round_ + 1})", min(54, 20 + 4 * (round_ + 1)))
    return results, False


def _configs(base: Mapping[str, Any], space: Mapping[str, list[Any]], seed: int) -> list[dict[str, Any]]:
    """The defaults, then at most MAX_CONFIGS - 1 other parameter sets of the grid (seeded)."""
    others = [config for config in _grid(base, space) if config != dict(base)]
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(others))[: MAX_CONFIGS - 1]
    return [dict(base), *(others[i] for i in picked)]


def _served(split: Split, model: Fitted, history: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's scores as served: after the customer's own items where repeats count."""
    scorer = lambda rows: model.score(rows, history)  # noqa: E731
    return repeat_first(split.train, scorer) if split.repeats else scorer


def _grid(base: Mapping[str, Any], space: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    if not space:
        return [dict(base)]
    keys = list(space)
    return [{**base, **dict(zip(keys, values, strict=True))} for values in itertools.product(*(space[k] for k in keys))]
