"""The pieces of the training pipeline on small exact cases: metrics, splits, algorithms,
ONNX export against numpy, ALS fold-in against implicit, the release gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.registry.gate import release_gate
from recommendations.scoring.fold_in import als_fold_in
from recommendations.scoring.sessions import onnx_session
from recommendations.training import algorithms
from recommendations.training.algorithms import history_vector, similar_items
from recommendations.training.data import EventArrays, Indexer, build_matrix
from recommendations.training.evaluation import evaluate, top_k
from recommendations.training.export import onnx_inputs, scoring_graph, similar_graph, verify
from recommendations.training.pipeline import InsufficientData, PipelineOptions, run
from recommendations.training.split import random_split, time_split
from tests.factories import arrays_from_rows, taste_events


@pytest.fixture(scope="module")
def taste() -> EventArrays:
    return arrays_from_rows(taste_events())


# --------------------------------------------------------------------------- metrics


def test_metrics_follow_the_standard_definitions() -> None:
    # 1 customer, 12 items; training item 0; relevant held-out items 1 and 5.
    train = sp.csr_matrix(np.array([[1] + [0] * 11], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 1] + [0] * 6], dtype=np.float32))
    # Ranking after removing item 0: 1, 2, 3, 4, 5, ... -> hits at positions 1 and 5.
    scores = -np.arange(12, dtype=np.float64)

    result = evaluate(lambda rows: np.tile(scores, (len(rows), 1)), train, test, np.array([0]))

    dcg = 1 / math.log2(2) + 1 / math.log2(6)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert result["ndcg@10"] == pytest.approx(dcg / idcg)
    assert result["precision@10"] == pytest.approx(2 / 10)  # not 2 / min(10, 2)
    assert result["recall@10"] == pytest.approx(1.0)
    assert result["map@10"] == pytest.approx((1 / 1 + 2 / 5) / 2)
    assert result["coverage@10"] == pytest.approx(10 / 12)
    assert result["users"] == 1


def test_top_k_excludes_and_orders() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0]]))

    assert top_k(scores, exclude, 2).tolist() == [[3, 2]]


# --------------------------------------------------------------------------- data and splits


def test_matrix_sums_weights_and_clips_negative() -> None:
    events = EventArrays(
        np.array([1, 1, 1, 2]), np.array([7, 7, 8, 8]), np.array([4.0, -2.0, -5.0, 1.0], dtype=np.float32), np.zeros(4)
    )
    matrix = build_matrix(events, Indexer.of(events))

    assert matrix.toarray().tolist() == [[2.0, 0.0], [0.0, 1.0]]


def test_time_split_never_trains_on_the_future(taste: EventArrays) -> None:
    split = time_split(taste, 0.2)

    assert split.cut_time is not None
    assert split.train_events is not None
    assert split.train_events.times.max() < split.cut_time
    assert split.test.nnz > 0
    # Test pairs are new to the customer (training pairs are excluded from rankings).
    assert split.test.multiply(split.train).nnz == 0


def test_random_split_is_seeded_and_disjoint(taste: EventArrays) -> None:
    indexer = Indexer.of(taste)
    matrix = build_matrix(taste, indexer)

    first, second = random_split(matrix, indexer, 0.2, 42), random_split(matrix, indexer, 0.2, 42)

    assert (first.test != second.test).nnz == 0
    assert first.train.multiply(first.test).nnz == 0
    assert first.train.nnz + first.test.nnz == matrix.nnz


# --------------------------------------------------------------------------- algorithms and export


@pytest.mark.parametrize("algorithm", ["als", "bpr", "itemknn_cosine", "itemknn_bm25", "ease", "popularity"])
def test_every_algorithm_exports_an_onnx_graph_that_matches_numpy(taste: EventArrays, algorithm: str) -> None:
    indexer = Indexer.of(taste)
    matrix = build_matrix(taste, indexer)
    fitted = algorithms.fit(algorithm, matrix, algorithms.params_for(algorithm))
    item_ids = np.array([f"i{i}" for i in indexer.item_ids], dtype=object)
    graph = scoring_graph(fitted, item_ids).SerializeToString()

    check = verify(graph, fitted, matrix)
    _scores, index, ids = onnx_session(graph).run(None, onnx_inputs(fitted, matrix, np.array([0, 1]), 5))

    assert check.ok
    assert check.customers > 100
    assert ids.shape == (2, 5)
    assert ids[0, 0] == f"i{indexer.item_ids[index[0, 0]]}"
    seen = set(matrix[0].indices)
    assert not seen & set(index[0].tolist())  # the customer's own items are excluded


def test_similar_items_graph_answers_each_items_neighbours(taste: EventArrays) -> None:
    indexer = Indexer.of(taste)
    matrix = build_matrix(taste, indexer)
    fitted = algorithms.fit("als", matrix, algorithms.params_for("als"))
    similar_ids, similar_scores = similar_items(fitted, 10)
    item_ids = np.array([f"i{i}" for i in indexer.item_ids], dtype=object)

    scores, index, ids = onnx_session(similar_graph(similar_ids, similar_scores, item_ids).SerializeToString()).run(
        None, {"item": np.array([0, 5], dtype=np.int64)}
    )

    assert 0 not in index[0].tolist()
    assert index[0].tolist() == similar_ids[0].tolist()
    assert list(scores[0]) == sorted(scores[0], reverse=True)
    # Items of the same generated group are the most similar (ids i0, i6, i12, ... share group 0).
    assert sum(int(item_id[1:]) % 6 == 0 for item_id in ids[0][:5]) >= 4


@pytest.mark.parametrize("algorithm", ["als", "itemknn_cosine", "ease", "popularity"])
def test_some_items_neighbours_are_those_rows_of_the_whole_table(taste: EventArrays, algorithm: str) -> None:
    # The two-stage training asks for its seeds' rows only (an items × items product per window).
    matrix = build_matrix(taste, Indexer.of(taste))
    fitted = algorithms.fit(algorithm, matrix, algorithms.params_for(algorithm))
    rows = np.array([7, 0, 3, 7, matrix.shape[1] - 1])

    whole_ids, whole_scores = similar_items(fitted, 10)
    ids, scores = similar_items(fitted, 10, rows=rows)

    np.testing.assert_array_equal(ids, whole_ids[rows])
    np.testing.assert_allclose(scores, whole_scores[rows], atol=1e-6)  # BLAS blocks round differently
    assert not (ids == rows[:, None]).any()  # never the item itself


def test_als_fold_in_equals_implicit_recalculate_user(taste: EventArrays) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = build_matrix(taste, Indexer.of(taste))
    model = AlternatingLeastSquares(factors=16, regularization=2.0, alpha=3.0, iterations=5, random_state=1)
    model.fit(matrix, show_progress=False)
    row = matrix[4]

    expected = model.recalculate_user(0, row)
    got = als_fold_in(
        model.item_factors,
        model.item_factors.T @ model.item_factors,
        regularization=2.0,
        alpha=3.0,
        items=row.indices,
        values=row.data,
    )

    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_history_vector_is_binary() -> None:
    assert history_vector(sp.csr_matrix(np.array([[3.0, 0.0, 0.5]]))).toarray().tolist() == [[1.0, 0.0, 1.0]]


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="has no parameter"):
        algorithms.params_for("als", {"factorz": 3})


# --------------------------------------------------------------------------- pipeline and gate


def test_pipeline_beats_popularity_on_a_store_with_structure(taste: EventArrays) -> None:
    result = run(PipelineOptions(weights={}, algorithm="als", min_customers=5), events=taste)

    assert result.metrics["model"]["ndcg@10"] > 1.5 * result.metrics["popularity"]["ndcg@10"]
    assert result.metrics["model"]["users"] == result.metrics["popularity"]["users"] > 50
    assert set(result.timings) >= {"extract", "split", "train", "evaluate", "refit", "pipeline"}
    assert result.data_counts["items"] == 96


def test_evaluation_samples_customers_beyond_the_cap(taste: EventArrays) -> None:
    full = run(PipelineOptions(weights={}, algorithm="als", min_customers=5), events=taste)
    capped = run(
        PipelineOptions(weights={}, algorithm="als", min_customers=5, max_evaluation_customers=40), events=taste
    )

    assert full.metrics["holdout_customers"] == capped.metrics["holdout_customers"] == full.metrics["model"]["users"]
    assert full.metrics["model"]["users"] > 40
    assert capped.metrics["model"]["users"] == capped.metrics["popularity"]["users"] == 40
    again = run(
        PipelineOptions(weights={}, algorithm="als", min_customers=5, max_evaluation_customers=40), events=taste
    )
    assert again.metrics["model"] == capped.metrics["model"]  # the sample is seeded


def test_tuning_chooses_on_validation_and_reports_candidates(taste: EventArrays) -> None:
    result = run(PipelineOptions(weights={}, algorithm="auto", tune=False, min_customers=5), events=taste)

    assert result.tuning["chosen"] == result.algorithm
    assert result.tuning["searched"] == "auto"
    assert set(result.tuning["candidates"]) == {"als", "bpr", "itemknn_bm25", "ease"}
    best = max(result.tuning["candidates"].values(), key=lambda c: c["validation_ndcg@10"])
    assert best["validation_ndcg@10"] == result.tuning["candidates"][result.algorithm]["validation_ndcg@10"]


def test_too_little_data_is_refused_with_the_reason() -> None:
    tiny = EventArrays(np.array([1, 2, 3]), np.array([1, 1, 2]), np.ones(3, dtype=np.float32), np.arange(3.0))

    with pytest.raises(InsufficientData, match=r"3 interactions \(need 100\)"):
        run(PipelineOptions(weights={}), events=tiny)


FALLBACK = {"name": "decayed popularity"}


@pytest.mark.parametrize(
    ("metrics", "passed", "phrase"),
    [
        (
            {"model": {"ndcg@10": 0.3}, "fallback": {**FALLBACK, "ndcg@10": 0.2}, "active": None},
            True,
            "NDCG@10 0.3000 beats decayed popularity (0.2000) on the same holdout; no version was active",
        ),
        # A tie is not a win, and the reason names both figures.
        (
            {"model": {"ndcg@10": 0.2}, "fallback": {**FALLBACK, "ndcg@10": 0.2}, "active": None},
            False,
            "NDCG@10 0.2000 does not beat what the store serves without a model (decayed popularity: 0.2000)",
        ),
        # Issue 20: plain popularity is not what the store serves; the decayed list is the yardstick.
        (
            {
                "model": {"ndcg@10": 0.25},
                "popularity": {"ndcg@10": 0.1},
                "fallback": {**FALLBACK, "ndcg@10": 0.3},
                "active": None,
            },
            False,
            "does not beat what the store serves without a model (decayed popularity: 0.3000)",
        ),
        (
            {"model": {"ndcg@10": 0.3}, "fallback": {**FALLBACK, "ndcg@10": 0.1}, "active": {"ndcg@10": 0.35}},
            False,
            "below the active",
        ),
        # Issue 19.15: a model at 0.00004 "beat" popularity's 0 while the reason said 0.0000 vs 0.0000.
        (
            {"model": {"ndcg@10": 0.00004}, "fallback": {**FALLBACK, "ndcg@10": 0.0}, "active": None},
            False,
            "NDCG@10 0.0000 does not beat what the store serves without a model (decayed popularity: 0.0000)",
        ),
        (
            {"model": {"ndcg@10": 0.345}, "fallback": {**FALLBACK, "ndcg@10": 0.1}, "active": {"ndcg@10": 0.35}},
            True,
            "holds up",
        ),
        # Versions trained before issue 20 have no fallback figure: popularity stands in.
        ({"model": {"ndcg@10": 0.2}, "popularity": {"ndcg@10": 0.2}, "active": None}, False, "(popularity: 0.2000)"),
    ],
)
def test_release_gate(metrics, passed: bool, phrase: str) -> None:
    ok, reason = release_gate(algorithm="als", metrics=metrics, tolerance=0.02)

    assert ok is passed
    assert phrase in reason


def test_popularity_never_promotes_itself() -> None:
    ok, reason = release_gate(
        algorithm="popularity", metrics={"model": {"ndcg@10": 0.3}, "popularity": {"ndcg@10": 0.3}}, tolerance=0.02
    )

    assert not ok
    assert "baseline" in reason


def test_penalty_input_removes_filtered_items_and_defaults_to_nothing(taste: EventArrays) -> None:
    indexer = Indexer.of(taste)
    matrix = build_matrix(taste, indexer)
    fitted = algorithms.fit("als", matrix, algorithms.params_for("als"))
    item_ids = np.array([f"i{i}" for i in indexer.item_ids], dtype=object)
    run_graph = onnx_session(scoring_graph(fitted, item_ids).SerializeToString())
    inputs = onnx_inputs(fitted, matrix, np.array([0]), 10)
    allowed = np.arange(matrix.shape[1]) % 2 == 0  # say a filter keeps even items

    _s, plain, _i = run_graph.run(None, inputs)
    _s, filtered, _i = run_graph.run(
        None, {**inputs, "penalty": np.where(allowed, 0, -np.inf).astype(np.float32)[None, :]}
    )

    assert not all(index % 2 == 0 for index in plain[0])
    assert all(index % 2 == 0 for index in filtered[0])
    assert len(filtered[0]) == 10  # still a full list


def test_auto_leaves_out_a_candidate_that_cannot_be_refit_on_all_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19.10: `auto` chose EASE on a validation split whose catalog fitted EASE's limit,
    then failed the whole training refitting it on all the data (a larger catalog)."""
    rows = taste_events(customers=120, items=40, events_per_customer=16)
    late = [  # 5 more items, only in the latest events
        {"customer_id": f"c{n}", "item_id": f"i{40 + n % 5}", "type": "view", "timestamp": "2026-08-15T12:00:00+00:00"}
        for n in range(60)
    ]
    events = arrays_from_rows(rows + late)
    monkeypatch.setattr(algorithms, "EASE_MAX_ITEMS", 42)  # between the training part's 40 and all 45

    result = run(PipelineOptions(weights={}, algorithm="auto", min_customers=5, min_items=5), events=events)

    assert result.algorithm != "ease"
    assert "ease" in result.tuning["skipped"]
    assert "45 items" in result.tuning["skipped"]["ease"]
    assert result.fitted.item_factors is None or result.fitted.item_factors.shape[0] == 45


def test_auto_skips_a_candidate_that_fails_and_keeps_the_others(
    taste: EventArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = algorithms.fit

    def fit(name: str, *args: object, **kwargs: object) -> algorithms.Fitted:
        if name == "bpr":
            raise MemoryError("no room for bpr")
        return failing(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(algorithms, "fit", fit)

    result = run(PipelineOptions(weights={}, algorithm="auto"), events=taste)

    assert result.algorithm != "bpr"
    assert result.tuning["skipped"]["bpr"] == "MemoryError: no room for bpr"
    assert "bpr" not in result.tuning["candidates"]
