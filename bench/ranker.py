"""What the second stage's ranker costs per request, through ONNX Runtime as serving will call it.

    python bench/ranker.py [--candidates 500] [--trees 60] [--repeats 500] [--json]

A LightGBM lambdarank model with the production feature set (``feature_names`` of the default
sources: 31 features) and its defaults (31 leaves), trained on synthetic groups for exactly
``--trees`` rounds, exported with ``ranker_onnx`` and verified; then one request's candidates
(``--candidates`` rows) are scored ``--repeats`` times on one thread through ONNX Runtime, next to
LightGBM's own ``predict`` on the same rows in the same run (the baseline). Prints the median
and p99 per request. Issue 21's target: the ranker ≤ 2 ms for 500 candidates on these machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(call: Callable[[], object], repeats: int) -> dict[str, float]:
    call()  # warm
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000.0)
    return {"median_ms": round(float(np.median(samples)), 3), "p99_ms": round(float(np.quantile(samples, 0.99)), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--trees", type=int, default=60, help="default: the training's tree budget")
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bench._stack import django_without_servers

    django_without_servers()
    from recommendations.ranking import ranker as ranking
    from recommendations.ranking.features import feature_names
    from recommendations.ranking.sources import default_sources
    from recommendations.scoring.sessions import onnx_session

    names = feature_names([source.name for source in default_sources()])
    rng = np.random.default_rng(0)
    groups, size = 2000, 100
    features = rng.normal(size=(groups * size, len(names))).astype(np.float32)
    labels = ((features[:, :4].sum(axis=1) + rng.normal(size=len(features))) > 2.5).astype(np.float64)
    ranking.MAX_ROUNDS = args.trees
    ranking.VALIDATION_SHARE = 0.0  # no early stopping: exactly the trees asked for
    fitted = ranking.ranker_fit(features, labels, np.full(groups, size), feature_names=names)
    model = ranking.ranker_onnx(fitted)
    checked = ranking.ranker_verify(model, fitted, features)
    request = rng.normal(size=(args.candidates, len(names))).astype(np.float32)
    request[rng.random(request.shape) < 0.1] = np.nan  # features serving could not read
    session = onnx_session(model)
    onnx = timed(lambda: session.run(None, {ranking.INPUT_NAME: request}), args.repeats)
    native = timed(
        lambda: fitted.booster.predict(request.astype(np.float64), num_threads=1, num_iteration=fitted.best_iteration),
        args.repeats,
    )
    report = {
        "candidates": args.candidates,
        "features": len(names),
        "trees": fitted.best_iteration,
        "onnx_bytes": len(model),
        "verified": checked.ok,
        "max_error": checked.max_error,
        "onnxruntime": onnx,
        "lightgbm_native": native,
        "target_ms": 2.0,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"ranker: {report['trees']} trees, {report['features']} features, ONNX {report['onnx_bytes']:,} bytes, "
        f"verified {checked.ok} (max |Δ| {checked.max_error:.2e})"
    )
    print(f"{args.candidates} candidates, one thread, {args.repeats} requests:")
    print(f"  onnxruntime       median {onnx['median_ms']:.3f} ms  p99 {onnx['p99_ms']:.3f} ms  (target ≤ 2 ms)")
    print(f"  LightGBM predict  median {native['median_ms']:.3f} ms  p99 {native['p99_ms']:.3f} ms  (baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
