"""The training pipeline: extract → split → (tune on validation) → train → evaluate against
popularity → refit on all data. Export and verification follow in ``export`` / ``artifacts``.

Every stage is timed and reports progress; the same code runs in the Celery task and in
``bench/quality.py``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommendations.training import algorithms
from recommendations.training.algorithms import Fitted, history_vector
from recommendations.training.data import (
    EventArrays,
    Indexer,
    Interactions,
    apply_time_decay,
    build_matrix,
    external_ids,
    extract_events,
)
from recommendations.training.evaluation import evaluate
from recommendations.training.split import Split, random_split, time_split, validation_split

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (stage, percent)
AUTO_CANDIDATES = ("als", "bpr", "itemknn_bm25", "ease")
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
    holdout: float = 0.2
    protocol: str = "time"  # time | random
    seed: int = 42
    half_life_days: float | None = None
    binarize: bool = False  # every interaction counts 1 (e.g. ratings taken as implicit feedback)
    min_interactions: int = 100
    min_customers: int = 10
    min_items: int = 10
    max_evaluation_customers: int = 10_000  # a seeded sample of the holdout's customers beyond this
    # The active version's recipe, evaluated on the same holdout for the release gate.
    compare_with: tuple[str, Mapping[str, Any]] | None = None


def _sample(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
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


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def total(self) -> float:
        return time.perf_counter() - self._started


class _Stage:
    def __init__(self, clock: _Clock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.timings[self.name] = round(
            self.clock.timings.get(self.name, 0.0) + time.perf_counter() - self.began, 4
        )


def _noop(stage: str, percent: int) -> None:
    return None


def run(options: PipelineOptions, progress: Progress = _noop, events: EventArrays | None = None) -> PipelineResult:
    """Train and evaluate a model of the current tenant (or of ``events`` if given)."""
    clock = _Clock()
    from_database = events is None
    progress("extracting events", 5)
    with clock.stage("extract"):
        if events is None:
            events = extract_events(options.weights)
        events = apply_time_decay(events, options.half_life_days)
        if options.binarize:
            events = EventArrays(events.customers, events.items, np.ones(len(events), np.float32), events.times)
        indexer = Indexer.of(events)
        matrix = build_matrix(events, indexer)
        if options.binarize:
            matrix.data[:] = 1.0
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
        split = (
            time_split(events, options.holdout)
            if options.protocol == "time"
            else random_split(matrix, indexer, options.holdout, options.seed)
        )
    if len(split.test_users) == 0:
        raise InsufficientData("no customer has both training events and later events to evaluate on")

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
    )


def _holdout_metrics(
    options: PipelineOptions, split: Split, model: Fitted, algorithm: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The model, popularity and (when asked) the active version's recipe, on the same holdout."""
    users = _sample(split.test_users, options.max_evaluation_customers, options.seed)
    history = history_vector(split.train)
    metrics: dict[str, Any] = {
        "protocol": split.protocol,
        "holdout_customers": len(split.test_users),
        "model": evaluate(lambda rows: model.score(rows, history), split.train, split.test, users),
    }
    baseline = algorithms.fit("popularity", split.train, {})
    metrics["popularity"] = evaluate(lambda rows: baseline.score(rows, history), split.train, split.test, users)
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
                metrics["active"] = evaluate(lambda rows: active.score(rows, history), split.train, split.test, users)
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
    in ``tuning["skipped"]``, never fatal."""
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

    validation = validation_split(split, options.holdout, options.seed)
    users = _sample(validation.test_users, options.max_evaluation_customers, options.seed)
    if len(users) == 0:
        logger.info("no validation users; using default parameters")
        name = candidates[0]
        return name, base[name]
    history = history_vector(validation.train)
    results: dict[str, dict[str, Any]] = {}
    for position, name in enumerate(candidates):
        configs = _grid(base[name], algorithms.SEARCH_SPACES[name]) if options.tune else [base[name]]
        best_params, best_score = base[name], -1.0
        try:
            for params in configs:
                model = algorithms.fit(name, validation.train, params, seed=options.seed)
                score = evaluate(_scorer(model, history), validation.train, validation.test, users)["ndcg@10"]
                if score > best_score:
                    best_params, best_score = params, score
        except CANDIDATE_FAILURES as exc:
            # A candidate that cannot handle the data is left out, never fatal (unless it is the
            # only one: the store asked for it by name).
            if len(candidates) == 1:
                raise
            logger.warning("training candidate %s skipped: %s: %s", name, exc.__class__.__name__, exc)
            skipped[name] = f"{exc.__class__.__name__}: {exc}"
            continue
        results[name] = {"params": best_params, "validation_ndcg@10": round(best_score, 5), "configs": len(configs)}
        progress(f"tuning ({name})", 20 + int(35 * (position + 1) / len(candidates)))
    if not results:
        raise InsufficientData(
            "no candidate recipe could be trained: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    chosen = max(results, key=lambda name: results[name]["validation_ndcg@10"])
    tuning.update({"protocol": validation.protocol, "candidates": results, "chosen": chosen, "tuned": options.tune})
    if skipped:
        tuning["skipped"] = dict(skipped)
    return chosen, dict(results[chosen]["params"])


def _scorer(model: Fitted, history: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rows: model.score(rows, history)


def _grid(base: Mapping[str, Any], space: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    if not space:
        return [dict(base)]
    keys = list(space)
    return [{**base, **dict(zip(keys, values, strict=True))} for values in itertools.product(*(space[k] for k in keys))]
