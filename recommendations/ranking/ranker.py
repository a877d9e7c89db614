"""The second stage's learned ranker: LightGBM lambdarank over candidate features, exported to
ONNX and verified against the native model before a version may serve it (docs/adr/0008).

Trained with ``lightgbm.train`` (no scikit-learn wrapper); exported with onnxmltools'
``convert_lightgbm`` (a TreeEnsembleRegressor); verified on a sample of rows that includes
missing values. ONNX Runtime compares tree thresholds in float32, so features are kept in small
units (days, ranks, shares — never epoch seconds), and the native model is asked about the same
float32-rounded rows the graph sees. ``zero_as_missing`` is refused: onnxmltools converts it
wrongly (a real zero takes the missing-value branch natively, not in the graph).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

INPUT_NAME = "features"
VERIFY_ROWS = 2000
VERIFY_TOLERANCE = 1e-4  # absolute, on raw scores (measured: ~4e-7)
VALIDATION_SHARE = 0.15  # of the groups, for early stopping

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
}
# The tree budget: serving scores ~500 candidates per request through every tree, linearly in
# their number (bench/ranker.py: 60 trees 1.56 ms median, 100 trees 3.07 ms on these machines;
# target 2 ms). 60 rounds at learning rate 0.1 measured as good as 300 at 0.05 (which stopped
# at up to 287): retail-time 0.3729 vs 0.3705, ml100k-time 0.2155 vs 0.2203 (docs/adr/0008).
MAX_ROUNDS = 60
EARLY_STOPPING_ROUNDS = 30


@dataclass
class Ranker:
    booster: Any  # lightgbm.Booster
    feature_names: list[str]
    best_iteration: int
    validation_ndcg: float | None  # NDCG@10 on the held-out groups, when there were any

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Native raw scores of the float32 rows ONNX Runtime would see."""
        rows = np.asarray(features, dtype=np.float32).astype(np.float64)
        return np.asarray(self.booster.predict(rows, num_iteration=self.best_iteration), dtype=np.float64)

    def importance(self) -> dict[str, float]:
        """Each feature's share of the total split gain (what the dashboard shows)."""
        gain = np.asarray(self.booster.feature_importance("gain", iteration=self.best_iteration), dtype=np.float64)
        total = gain.sum()
        shares = gain / total if total > 0 else gain
        return {name: round(float(share), 4) for name, share in zip(self.feature_names, shares, strict=True)}


def ranker_fit(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    feature_names: Sequence[str],
    seed: int = 7,
    params: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> Ranker:
    """A lambdarank model of ``labels`` (relevance ≥ 0) given ``features``; rows come in groups
    (one per customer and cut), ``groups`` their sizes in order. A seeded VALIDATION_SHARE of the
    groups stops the boosting when their NDCG@10 stops improving."""
    import lightgbm as lgb  # training only: serving imports onnxruntime, not LightGBM

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(f"features are {features.shape}, names {len(feature_names)}")
    if int(groups.sum()) != features.shape[0] or len(labels) != features.shape[0]:
        raise ValueError("groups, labels and feature rows do not add up")
    merged = {**DEFAULT_PARAMS, **(params or {}), "seed": seed, "num_threads": threads, "deterministic": True}
    if merged.get("zero_as_missing"):
        raise ValueError("zero_as_missing cannot be exported to ONNX faithfully")

    held = np.random.default_rng(seed).random(len(groups)) < VALIDATION_SHARE
    if held.all() or not held.any() or len(groups) < 10:
        held = np.zeros(len(groups), dtype=bool)
    rows_held = np.repeat(held, groups)
    names = list(feature_names)
    train = lgb.Dataset(
        features[~rows_held], labels[~rows_held], group=groups[~held], feature_name=names, free_raw_data=True
    )
    callbacks: list[Callable[..., Any]] = []
    valid_sets = []
    if held.any():
        valid_sets = [lgb.Dataset(features[rows_held], labels[rows_held], group=groups[held], reference=train)]
        callbacks.append(lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False))
    booster = lgb.train(merged, train, num_boost_round=MAX_ROUNDS, valid_sets=valid_sets, callbacks=callbacks)
    best = int(booster.best_iteration or booster.current_iteration())
    score = None
    if held.any():
        score = float(booster.best_score["valid_0"]["ndcg@10"])
    return Ranker(booster, names, best, score)


def ranker_onnx(ranker: Ranker) -> bytes:
    """The ranker as an ONNX graph: ``features`` float32 [N, F] in, raw scores [N, 1] out."""
    import lightgbm as lgb
    from onnxmltools.convert import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    # Only the trees up to the best iteration: the graph must score what `predict` scores.
    trimmed = lgb.Booster(model_str=ranker.booster.model_to_string(num_iteration=ranker.best_iteration))
    graph = convert_lightgbm(
        trimmed,
        name="shelfwise-ranker",
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(ranker.feature_names)]))],
    )
    return bytes(graph.SerializeToString())


@dataclass
class RankerVerification:
    rows: int
    max_error: float
    missing_rows: int  # rows of the sample with a missing value (NaN): checked too

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.max_error <= VERIFY_TOLERANCE


def ranker_verify(model_bytes: bytes, ranker: Ranker, sample: np.ndarray, *, seed: int = 0) -> RankerVerification:
    """ONNX Runtime's scores must equal the native model's on up to VERIFY_ROWS rows of
    ``sample`` and as many copies with missing values put in (as serving sends them when a
    feature cannot be read)."""
    from recommendations.scoring.sessions import onnx_session

    rng = np.random.default_rng(seed)
    sample = np.asarray(sample, dtype=np.float32)
    if len(sample) > VERIFY_ROWS:
        sample = sample[np.sort(rng.choice(len(sample), size=VERIFY_ROWS, replace=False))]
    missing = sample.copy()
    missing[rng.random(missing.shape) < 0.2] = np.nan
    rows = np.vstack([sample, missing])
    if len(rows) == 0:
        return RankerVerification(0, 0.0, 0)
    got = onnx_session(model_bytes).run(None, {INPUT_NAME: rows})[0].ravel().astype(np.float64)
    want = ranker.predict(rows)
    return RankerVerification(
        rows=len(rows),
        max_error=float(np.max(np.abs(got - want))),
        missing_rows=int(np.isnan(missing).any(axis=1).sum()),
    )
