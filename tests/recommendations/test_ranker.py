"""The learned ranker (issue 21): it learns an ordering, its ONNX graph scores exactly what the
native model scores — missing values included — and the check catches a graph that does not."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from recommendations.ranking.ranker import (
    VERIFY_TOLERANCE,
    Ranker,
    ranker_fit,
    ranker_onnx,
    ranker_verify,
)

NAMES = ["signal", "weak_signal", "noise_a", "noise_b", "count"]


def groups_of(n_groups: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates whose relevance follows the first two features (the rest is noise); `count`
    is a small integer that is often exactly 0."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_groups * size, len(NAMES))).astype(np.float32)
    features[:, 4] = rng.poisson(0.7, size=len(features))
    utility = features[:, 0] + 0.5 * features[:, 1] + rng.normal(scale=0.5, size=len(features))
    labels = (utility > 1.2).astype(np.float64)
    return features, labels, np.full(n_groups, size)


def mean_ndcg(scores: np.ndarray, labels: np.ndarray, size: int, k: int = 10) -> float:
    """NDCG@k (binary relevance) averaged over the groups with a relevant row."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for start in range(0, len(labels), size):
        relevant = labels[start : start + size] > 0
        if relevant.any():
            ranked = np.argsort(-scores[start : start + size], kind="stable")[:k]
            ideal = discounts[: min(k, int(relevant.sum()))].sum()
            values.append(float((relevant[ranked] * discounts[: len(ranked)]).sum() / ideal))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def trained() -> Ranker:
    features, labels, groups = groups_of(300, 30, seed=1)
    return ranker_fit(features, labels, groups, feature_names=NAMES, seed=3)


def test_the_ranker_learns_the_ordering_from_the_features(trained: Ranker) -> None:
    features, labels, _groups = groups_of(100, 30, seed=2)  # groups it never saw

    learned = mean_ndcg(trained.predict(features), labels, 30)
    arbitrary = mean_ndcg(np.zeros(len(labels)), labels, 30)

    assert learned > arbitrary + 0.3, (learned, arbitrary)
    importance = trained.importance()
    assert max(importance, key=lambda name: importance[name]) == "signal"
    assert abs(sum(importance.values()) - 1.0) < 1e-3
    assert trained.validation_ndcg is not None
    assert trained.best_iteration > 0


def test_the_onnx_graph_scores_what_the_native_model_scores_missing_values_included(trained: Ranker) -> None:
    features, _labels, _groups = groups_of(50, 30, seed=4)

    checked = ranker_verify(ranker_onnx(trained), trained, features)

    assert checked.ok, checked
    assert checked.rows == 2 * len(features)
    assert checked.missing_rows > 0.5 * len(features)
    assert checked.max_error <= VERIFY_TOLERANCE


def test_the_check_catches_a_graph_that_differs_from_the_native_model() -> None:
    """zero_as_missing is converted wrongly by onnxmltools: a real zero takes the missing-value
    branch natively but not in the graph. ranker_fit refuses it; trained by hand, the check fails."""
    features, labels, groups = groups_of(300, 30, seed=5)
    features[:, 0] = np.where(np.abs(features[:, 0]) < 0.3, 0.0, features[:, 0])  # many exact zeros
    params = {"objective": "lambdarank", "zero_as_missing": True, "verbose": -1, "num_leaves": 15, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(features, labels, group=groups), num_boost_round=30)
    wrong = Ranker(booster, NAMES, booster.current_iteration(), None)

    checked = ranker_verify(ranker_onnx(wrong), wrong, features)

    assert not checked.ok
    assert checked.max_error > VERIFY_TOLERANCE
    with pytest.raises(ValueError, match="zero_as_missing"):
        ranker_fit(features, labels, groups, feature_names=NAMES, params={"zero_as_missing": True})


def test_inputs_that_do_not_add_up_are_refused() -> None:
    features, labels, groups = groups_of(20, 10, seed=6)
    with pytest.raises(ValueError, match="do not add up"):
        ranker_fit(features, labels, groups[:-1], feature_names=NAMES)
    with pytest.raises(ValueError, match="names"):
        ranker_fit(features, labels, groups, feature_names=NAMES[:-1])
