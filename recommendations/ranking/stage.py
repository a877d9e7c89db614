"""The second stage inside a training (docs/adr/0008): trained on the training part, evaluated on
the same holdout as the single stage, kept only if it beats it — then refit on all events.
``training.pipeline.run`` calls ``second_stage`` after evaluating the single stage."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import scipy.sparse as sp
from django.conf import settings

from recommendations.ranking.two_stage import TwoStage, two_stage_fit, two_stage_scorer
from recommendations.training import algorithms
from recommendations.training.algorithms import Fitted
from recommendations.training.baskets import co_occurrence
from recommendations.training.data import EventArrays, Indexer, ItemAttributes
from recommendations.training.evaluation import evaluate
from recommendations.training.pipeline import CANDIDATE_FAILURES, Clock, PipelineOptions, Progress, sample_customers
from recommendations.training.split import Split


def second_stage(  # noqa: PLR0917 - run()'s state, passed on
    options: PipelineOptions,
    split: Split,
    events: EventArrays,
    indexer: Indexer,
    algorithm: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    clock: Clock,
    progress: Progress,
    attributes: ItemAttributes | None = None,
) -> tuple[TwoStage | None, sp.csr_matrix | None]:
    """The two-stage ranker if it beats the single stage on the holdout, refit on all events,
    and the co-occurrence its bought-together source reads. ``attributes``: the catalog's side
    of ``indexer``'s items (None: those features are missing)."""
    progress("training the two-stage ranker", 68)
    with clock.stage("two_stage"):
        held = _aligned(attributes, indexer, split.indexer)
        stage = _two_stage(options, split, algorithm=algorithm, params=params, metrics=metrics, attributes=held)
    if stage is None:
        return None, None
    progress("training the two-stage ranker on all data", 72)
    with clock.stage("two_stage_refit"):
        try:
            refit = two_stage_fit(
                events, indexer, repeats=split.repeats, fit=_fitter(algorithm, params, options.seed),
                protocol=stage.protocol, seed=options.seed, attributes=attributes,
            )  # fmt: skip
        except CANDIDATE_FAILURES as exc:  # the single stage then serves, as measured
            stages = metrics["stages"]
            metrics["model"] = dict(stages["single"])
            stages["chosen"] = "single"
            stages["reason"] += f"; but it could not be trained on all events ({exc}): the single stage serves"
            return None, None
        return refit, co_occurrence(events, indexer)


def _aligned(attributes: ItemAttributes | None, full: Indexer, part: Indexer) -> ItemAttributes | None:
    """``attributes`` of ``full``'s items, for ``part``'s (a subset: the training part's)."""
    return attributes.subset(full.item_ids, part.item_ids) if attributes is not None else None


def _fitter(algorithm: str, params: Mapping[str, Any], seed: int) -> Callable[[sp.csr_matrix], Fitted]:
    return lambda matrix: algorithms.fit(algorithm, matrix, dict(params), seed=seed)


def _two_stage(
    options: PipelineOptions,
    split: Split,
    *,
    algorithm: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    attributes: ItemAttributes | None = None,
) -> TwoStage | None:
    """Train the second stage on the training part and evaluate it on the same holdout as the
    single stage; keep it (``metrics["model"]`` becomes its figures) only if it beats the single
    stage there — a tie is not a win. ``metrics["stages"]`` says what each scored and why."""
    single = dict(metrics["model"])
    stages: dict[str, Any] = {"single": single, "two": None, "chosen": "single"}
    metrics["stages"] = stages
    if split.train_events is None:
        stages["reason"] = "the holdout keeps no event times (random pairs): the ranker's labels need them"
        return None
    protocol = "customer" if split.kind == "customer" else "time"
    fit = _fitter(algorithm, params, options.seed)
    began = time.perf_counter()
    try:
        stage = two_stage_fit(
            split.train_events, split.indexer, repeats=split.repeats, fit=fit, protocol=protocol, seed=options.seed,
            attributes=attributes,
        )  # fmt: skip
    except CANDIDATE_FAILURES as exc:
        stages["reason"] = f"no ranker could be trained: {exc}"
        return None
    at = split.cut_time if split.cut_time is not None else float(split.train_events.times.max()) + 1.0
    scorer = two_stage_scorer(stage, split.train_events, split.indexer, repeats=split.repeats, fit=fit, at=at)
    users = sample_customers(split.test_users, options.max_evaluation_customers, options.seed)
    two = evaluate(scorer, split.exclude, split.test, users)
    stages["two"] = {**two, "seconds": round(time.perf_counter() - began, 1), **stage.summary()}
    if round(two["ndcg@10"], 4) <= round(single["ndcg@10"], 4) and not getattr(
        settings, "SHELFWISE_TWO_STAGE_ALWAYS", False
    ):
        stages["reason"] = (
            f"the two-stage ranker's NDCG@10 {two['ndcg@10']:.4f} does not beat the single stage's "
            f"{single['ndcg@10']:.4f} ({algorithm}) on the same holdout"
        )
        return None
    stages["chosen"] = "two"
    stages["reason"] = (
        f"the two-stage ranker's NDCG@10 {two['ndcg@10']:.4f} beats the single stage's "
        f"{single['ndcg@10']:.4f} ({algorithm}) on the same holdout"
    )
    if round(two["ndcg@10"], 4) <= round(single["ndcg@10"], 4):  # only with the benchmarks' setting
        stages["reason"] = (
            f"kept by SHELFWISE_TWO_STAGE_ALWAYS (bench/serving.py measures its serving cost), though its "
            f"NDCG@10 {two['ndcg@10']:.4f} does not beat the single stage's {single['ndcg@10']:.4f}"
        )
    metrics["model"] = dict(two)
    return stage
