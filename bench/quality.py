"""Offline quality of the training pipeline on MovieLens 100K, and its cost next to a bare fit.

    python bench/quality.py [--data ../shared/datasets/ml-100k] [--json] [--seed 42]

Protocol (that of the Recommenders.jl reference figures): all 100,000 ratings taken as implicit
feedback (every rated movie counts 1), a random 80/20 split of the (user, movie) pairs with a
fixed seed, every movie ranked for every test user, the user's training movies excluded.
Hyper-parameters are chosen on a validation split cut from the 80% (another random 20% of it);
the 20% test part is used only to report.

The data goes through the product: a throw-away PostgreSQL/Redis, a store, `import_events`'s
MovieLens reader, and the pipeline's extract → split → tune → train → evaluate → export code.
Printed per algorithm: NDCG@10, precision@10, recall@10 and the training time; then "auto" —
the algorithm the pipeline would promote (best on validation) — and the pipeline's wall time
(extract + train + evaluate + refit + export + verify, parameters already chosen) next to a bare
implicit ALS fit on the same training matrix with the same parameters, in the same run.
Reference: MF NDCG@10 0.4402, most-popular 0.2197 (Recommenders.jl).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import print_json  # noqa: E402
from shelfwise.dev import servers as devservers  # noqa: E402

ALGORITHMS = ("popularity", "als", "bpr", "itemknn_cosine", "itemknn_bm25", "ease")
PROTOCOL = (
    "ML-100K, all ratings as implicit feedback, random 80/20 split of pairs (seed {seed}), "
    "full ranking, training items excluded"
)


def _setup_django(state_dir: Path) -> None:
    state = devservers.start(state_dir, durable=False)
    os.environ.update(devservers.server_env(state, state_dir))
    os.environ.update(
        {"SHELFWISE_ENV": "development", "LOG_LEVEL": "WARNING", "SHELFWISE_MEDIA_ROOT": str(state_dir / "media")}
    )
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate_schemas", "-v", "0"], env=os.environ, check=True, cwd=ROOT
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shelfwise.settings")
    import django

    django.setup()


def _run(data: Path, seed: int) -> dict[str, Any]:
    import numpy as np
    import scipy.sparse as sp
    from django_tenants.utils import tenant_context
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from catalog.importers import event_reader
    from catalog.services.imports import events_import
    from recommendations.registry.bundles import bundle_write
    from recommendations.training.data import Indexer
    from recommendations.training.pipeline import PipelineOptions, run
    from recommendations.training.split import random_split
    from tenants.services import tenant_create

    tenant = tenant_create(slug="quality", name="MovieLens 100K", plan_code="enterprise", actor="bench").tenant
    results: dict[str, Any] = {}
    with tenant_context(tenant):
        summary = events_import(rows=event_reader("movielens", data / "u.data"))
        if summary.stored != 100_000:
            raise SystemExit(f"expected 100,000 ratings, stored {summary.stored}")
        base = {"weights": {"rating": 1.0}, "protocol": "random", "seed": seed, "holdout": 0.2, "binarize": True}
        for algorithm in (*ALGORITHMS, "auto"):
            began = time.perf_counter()
            result = run(PipelineOptions(algorithm=algorithm, tune=algorithm != "popularity", **base))
            model = result.metrics["model"]
            results[algorithm] = {
                "algorithm": result.algorithm,
                "ndcg@10": round(model["ndcg@10"], 4),
                "precision@10": round(model["precision@10"], 4),
                "recall@10": round(model["recall@10"], 4),
                "train_seconds": round(result.timings["train"], 3),
                "seconds_with_tuning": round(time.perf_counter() - began, 1),
                "params": result.params,
                "popularity_ndcg@10": round(result.metrics["popularity"]["ndcg@10"], 4),
            }
            print(f"  {algorithm:<15} done in {time.perf_counter() - began:.1f}s", file=sys.stderr)

        # The pipeline with ALS's chosen parameters (no search), timed end to end with export.
        als_params = results["als"]["params"]
        began = time.perf_counter()
        timed = run(PipelineOptions(algorithm="als", params=als_params, **base))
        bundle_write(
            prefix="models/quality/default/1",
            result=timed,
            meta={"tenant": "quality", "model": "default", "version": 1},
        )
        pipeline_seconds = time.perf_counter() - began

        # A bare implicit fit on the very same training matrix, same parameters.
        matrix = timed.interactions.matrix
        indexer = Indexer(np.arange(matrix.shape[0]), np.arange(matrix.shape[1]))
        train = random_split(matrix, indexer, 0.2, seed).train
        with threadpool_limits(limits=1):
            model = AlternatingLeastSquares(
                factors=als_params["factors"], regularization=als_params["regularization"], alpha=als_params["alpha"],
                iterations=als_params["iterations"], random_state=seed, num_threads=1,
            )  # fmt: skip
            began = time.perf_counter()
            model.fit(sp.csr_matrix(train, dtype=np.float32), show_progress=False)
            bare_fit = time.perf_counter() - began
    return {
        "results": results,
        "pipeline_seconds": pipeline_seconds,
        "bare_fit_seconds": bare_fit,
        "pipeline_timings": timed.timings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "ml-100k")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.data / "u.data").exists():
        raise SystemExit(f"MovieLens 100K not found at {args.data} (pass --data DIR containing u.data)")

    (ROOT / ".dev" / "tmp").mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="quality-", dir=ROOT / ".dev" / "tmp"))
    try:
        _setup_django(state_dir)
        outcome = _run(args.data, args.seed)
    finally:
        devservers.destroy(state_dir)

    results = outcome["results"]
    protocol = PROTOCOL.format(seed=args.seed)
    if args.json:
        print_json(
            {
                "protocol": protocol,
                "results": {
                    name: {key: value[key] for key in ("ndcg@10", "precision@10", "recall@10", "train_seconds")}
                    for name, value in results.items()
                },
                "promoted": results["auto"]["algorithm"],
                "bare_fit_seconds": round(outcome["bare_fit_seconds"], 3),
                "pipeline_seconds": round(outcome["pipeline_seconds"], 3),
            }
        )
        return 0
    print(f"Protocol: {protocol}")
    print(f"{'algorithm':<16} {'NDCG@10':>8} {'P@10':>7} {'R@10':>7} {'train s':>8}  chosen parameters")
    for name, value in results.items():
        label = f"auto -> {value['algorithm']}" if name == "auto" else name
        print(
            f"{label:<16} {value['ndcg@10']:>8.4f} {value['precision@10']:>7.4f} {value['recall@10']:>7.4f} "
            f"{value['train_seconds']:>8.3f}  {value['params']} (with tuning {value['seconds_with_tuning']}s)"
        )
    print("reference (Recommenders.jl): MF 0.4402, most popular 0.2197")
    bare, pipeline = outcome["bare_fit_seconds"], outcome["pipeline_seconds"]
    print(f"pipeline (extract+train+evaluate+refit+export+verify): {pipeline:.2f}s   bare ALS fit: {bare:.3f}s   "
          f"budget 2x fit + 5s = {2 * bare + 5:.2f}s")  # fmt: skip
    print(f"pipeline stages: {outcome['pipeline_timings']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
