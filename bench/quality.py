"""Offline quality of what a store gets, next to the baselines, on three splits in one run.

    python bench/quality.py [--datasets ../shared/datasets] [--json] [--seed 42] [--budget SECONDS]

Splits:
- ``retail-time``: the demo store (UCI Online Retail purchases); train on the first 80 % of time,
  test on the last 20 %.
- ``ml100k-time``: MovieLens 100K ratings, the same time cut.
- ``ml100k-random``: MovieLens 100K, a random 20 % of the ratings held out (seeded): the protocol
  of the Recommenders.jl reference figures (MF NDCG@10 0.4402, most popular 0.2197).

The data goes through the product: a throw-away PostgreSQL/Redis, a store per data set, the
importers (`import_items`' and `import_events`' readers: the catalog first — MovieLens' genres as
categories; the shop's products with their most common price and categories from description
words — then the events), and the pipeline's extractor with the store's default event weights
(a purchase 10, a rating its value); the two-stage default's features read the catalog's prices
and categories as a training does (`--no-catalog`: without them). For each split, only the training part is given to
the pipeline; the test part is scored once, for this report.

Rows, all evaluated on the split's test part with the protocol the store picks from its own
data (repeats counted where its repeat rate is ≥ 20 %, see docs/adr/0007):
- popularity (all-time counts), decayed popularity (30-day half-life: what serving falls back
  to), buy-again (the customer's own items first, then decayed popularity);
- ALS with its defaults, ALS tuned (the pipeline's search on a validation cut of the training
  part), EASE with its defaults — where repeats count, served as the product serves a model
  there: after the customer's own items;
- **single-stage default**: the pipeline as a first training runs it (`auto`, tuned within the
  time budget), its release gate deciding on its own holdout of the training part between the
  chosen recipe and the fallback (issue 20's default);
- **default**: what a new store gets with default settings now: the same training also trains
  the two-stage recommender (candidate sources + LightGBM ranker, docs/adr/0008), which replaces
  the single stage only if it beats it on that holdout, then the same gate; the row scores
  whichever would be served (the two stages as serving runs them: sources and features as of
  the end of the training part).

Targets: issue 20 — the default no more than 2 % (relative) below the best other row on every
split, ml100k-random at least 0.44; issue 21 — on the time splits the default at least 10 %
above the best other row, ml100k-random at least 0.44, never below the served fallback. With
each split's difference "default − best other", a 95 % paired bootstrap interval over the
evaluated customers says how much of it is noise. Last, the cost: the pipeline's wall time for
ALS with the tuned parameters (extract aside: train + evaluate + refit + export + verify) next
to a bare implicit ALS fit of the same matrix, in the same run. The figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import print_json  # noqa: E402
from shelfwise.dev import servers as devservers  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

    from recommendations.training.data import EventArrays, ItemAttributes

HOLDOUT = 0.2
TARGET_RELATIVE = 0.02
TARGET_ML_RANDOM = 0.44
TARGET_TWO_STAGE = 0.10


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


def _load_store(slug: str, fmt: str, path: Path, items_path: Path) -> tuple[EventArrays, ItemAttributes]:
    """Import a data set (its catalog, then its events) into a new store; its events as training
    reads them, and the catalog's prices and categories of their items (in the order of their ids)."""
    from django_tenants.utils import tenant_context

    from catalog.event_settings import event_settings_for
    from catalog.importers import event_reader, item_reader
    from catalog.services.imports import events_import, items_import
    from recommendations.training.data import Indexer, extract_events, item_attributes
    from tenants.services import tenant_create

    tenant = tenant_create(slug=slug, name=slug, plan_code="enterprise", actor="bench").tenant
    with tenant_context(tenant):
        items = items_import(rows=item_reader(fmt, items_path))
        summary = events_import(rows=event_reader(fmt, path))
        print(f"  {slug}: {items.stored} items, {summary.stored} events imported", file=sys.stderr)
        events = extract_events(event_settings_for(tenant).weights)
        return events, item_attributes(Indexer.of(events))


def splits(datasets: dict[str, EventArrays], seed: int) -> dict[str, tuple[EventArrays, EventArrays]]:
    """(train events, test events) of each split."""
    import numpy as np

    out = {}
    for name, events in (("retail-time", datasets["retail"]), ("ml100k-time", datasets["ml100k"])):
        cut = float(np.quantile(events.times, 1.0 - HOLDOUT))
        out[name] = (events.take(events.times < cut), events.take(events.times >= cut))
    ml = datasets["ml100k"]
    held = np.random.default_rng(seed).random(len(ml)) < HOLDOUT  # one rating per (user, movie)
    out["ml100k-random"] = (ml.take(~held), ml.take(held))
    return out


def evaluate_split(
    name: str,
    train_events: EventArrays,
    test_events: EventArrays,
    *,
    seed: int,
    budget: float,
    catalog: tuple[np.ndarray, ItemAttributes] | None = None,
) -> dict[str, Any]:
    """Every row of the report for one split; ``catalog``: the store's item ids (sorted) and
    their prices and categories, which the two-stage default's features read."""
    import numpy as np

    from recommendations.ranking.stage import second_stage
    from recommendations.ranking.two_stage import two_stage_scorer
    from recommendations.registry.gate import release_gate
    from recommendations.training import algorithms
    from recommendations.training.algorithms import history_vector
    from recommendations.training.baselines import buy_again_scorer, decayed_popularity, fallback_scorer, repeat_first
    from recommendations.training.data import REPEAT_AWARE_RATE, Indexer, build_matrix, repeat_rate
    from recommendations.training.evaluation import evaluate
    from recommendations.training.pipeline import PipelineOptions, run
    from recommendations.training.settings import TrainingSettings
    from recommendations.training.split import Split, _relevance

    rate = repeat_rate(train_events)
    repeats = rate >= REPEAT_AWARE_RATE
    indexer = Indexer.of(train_events)
    train = build_matrix(train_events, indexer)
    known = np.isin(test_events.customers, indexer.customer_ids) & np.isin(test_events.items, indexer.item_ids)
    test = _relevance(build_matrix(test_events.take(known), indexer), train, repeats=repeats)
    cut = float(train_events.times.max()) + 1.0 if name.endswith("time") else None
    split = Split(train, test, indexer, name, cut, train_events, repeats, "time" if cut else "random")
    users = split.test_users
    history = history_vector(train)

    per_customer: dict[str, np.ndarray] = {}

    def score(scorer: Any, label: str) -> dict[str, float]:
        each: list[float] = []
        result = evaluate(scorer, split.exclude, split.test, users, per_customer=each)
        per_customer[label] = np.array(each)
        return {key: round(float(result[key]), 4) for key in ("ndcg@10", "precision@10", "recall@10")}

    def fitted_scorer(fitted: algorithms.Fitted) -> Any:
        scorer = lambda rows: fitted.score(rows, history)  # noqa: E731
        return repeat_first(train, scorer) if repeats else scorer  # as served (after own items)

    rows: dict[str, Any] = {}
    counts = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.float64)
    rows["popularity"] = score(lambda r: np.tile(counts, (len(r), 1)), "popularity")
    decayed = decayed_popularity(split)
    relative = decayed / decayed.max()
    rows["decayed popularity"] = score(lambda r: np.tile(relative, (len(r), 1)), "decayed popularity")
    rows["buy-again"] = score(buy_again_scorer(train, relative), "buy-again")
    for label, algorithm in (("ALS (defaults)", "als"), ("EASE (defaults)", "ease")):
        began = time.perf_counter()
        try:
            fitted = algorithms.fit(algorithm, train, algorithms.params_for(algorithm), seed=seed)
        except ValueError as exc:
            rows[label] = {"skipped": str(exc)}
            continue
        rows[label] = {**score(fitted_scorer(fitted), label), "seconds": round(time.perf_counter() - began, 1)}

    base = {"weights": {}, "seed": seed, "holdout": HOLDOUT, "repeat_aware": None}
    began = time.perf_counter()
    tuned = run(PipelineOptions(algorithm="als", tune=True, tuning_budget_seconds=budget, **base), events=train_events)
    rows["ALS (tuned)"] = {
        **score(fitted_scorer(tuned.fitted), "ALS (tuned)"),
        "seconds": round(time.perf_counter() - began, 1),
        "params": tuned.params,
    }

    defaults = TrainingSettings()
    began = time.perf_counter()
    result = run(
        PipelineOptions(
            algorithm=defaults.algorithm,
            tune=defaults.tune,
            tuning_budget_seconds=budget,
            holdout=defaults.holdout_fraction,
            half_life_days=defaults.time_decay_half_life_days,
            max_evaluation_customers=defaults.max_evaluation_customers,
            weights={},
            seed=seed,
        ),
        events=train_events,
        second_stage=second_stage if defaults.two_stage else None,
        attributes=catalog[1].subset(catalog[0], indexer.item_ids) if catalog is not None else None,
    )
    seconds = round(time.perf_counter() - began, 1)
    stages = result.metrics.get("stages") or {"single": result.metrics["model"], "chosen": "single"}
    # The single-stage default: what the gate decides between the single stage and the fallback.
    single_metrics = {**result.metrics, "model": stages["single"]}
    passed, reason = release_gate(algorithm=result.algorithm, metrics=single_metrics, tolerance=defaults.gate_tolerance)
    served = fitted_scorer(result.fitted) if passed else fallback_scorer(split)[1]
    rows["single-stage default"] = {
        **score(served, "single-stage default"),
        "serves": f"{result.algorithm} {result.params}"
        if passed
        else f"the fallback ({result.metrics['fallback']['name']})",
        "gate": reason,
        "holdout": result.metrics["protocol"],
    }
    # The default: the two stages when the ranker beat the single stage, through the same gate.
    passed, reason = release_gate(algorithm=result.algorithm, metrics=result.metrics, tolerance=defaults.gate_tolerance)
    if result.two_stage is not None and passed:
        fit = lambda matrix: algorithms.fit(result.algorithm, matrix, result.params, seed=seed)  # noqa: E731
        at = float(train_events.times.max()) + 1.0
        served = two_stage_scorer(result.two_stage, train_events, indexer, repeats=repeats, fit=fit, at=at)
        serves = f"two stages over {result.algorithm} {result.params} ({result.two_stage.ranker.best_iteration} trees)"
    elif passed:
        served, serves = fitted_scorer(result.fitted), f"{result.algorithm} {result.params}"
    else:
        served, serves = fallback_scorer(split)[1], f"the fallback ({result.metrics['fallback']['name']})"
    rows["default"] = {
        **score(served, "default"),
        "seconds": seconds,
        "serves": serves,
        "gate": reason,
        "stages": stages.get("reason", ""),
        "holdout": result.metrics["protocol"],
    }
    best_name, best = max(
        ((k, v["ndcg@10"]) for k, v in rows.items() if k != "default" and "ndcg@10" in v), key=lambda kv: kv[1]
    )
    fallback_ndcg = rows["buy-again" if repeats else "decayed popularity"]["ndcg@10"]
    default = rows["default"]["ndcg@10"]
    # A paired bootstrap over the evaluated customers: how sure "default − best" is.
    difference = per_customer["default"] - per_customer[best_name]
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), size=(2000, len(difference)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {
        "protocol": ("repeats count" if repeats else "new items only") + f" (repeat rate {rate:.3f})",
        "evaluated_customers": len(users),
        "rows": rows,
        "best_other": best_name,
        "default_vs_best": round(default / best - 1.0, 4) if best else None,
        "difference_ci95": [round(float(low), 4), round(float(high), 4)],
        "target_met": default >= best * (1 - TARGET_RELATIVE)
        and (name != "ml100k-random" or default >= TARGET_ML_RANDOM),
        # Issue 21: on the time splits the default (two stages) ≥ 10 % above the best other row;
        # ML-100K random ≥ 0.44; never below the served fallback.
        "two_stage_target_met": (default >= best * (1 + TARGET_TWO_STAGE) if name.endswith("time") else True)
        and (name != "ml100k-random" or default >= TARGET_ML_RANDOM)
        and default >= fallback_ndcg,
    }


def pipeline_cost(train_events: EventArrays, params: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """The pipeline (no search) with export, next to a bare implicit ALS fit of the same matrix."""
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from recommendations.registry.bundles import bundle_write
    from recommendations.training.pipeline import PipelineOptions, run

    began = time.perf_counter()
    result = run(
        PipelineOptions(weights={}, algorithm="als", params=params, tune=False, seed=seed), events=train_events
    )
    bundle_write(prefix="models/quality/default/1", result=result, meta={"tenant": "quality", "model": "default"})
    pipeline = time.perf_counter() - began
    with threadpool_limits(limits=1):
        model = AlternatingLeastSquares(
            factors=params["factors"], regularization=params["regularization"], alpha=params["alpha"],
            iterations=params["iterations"], random_state=seed, num_threads=1,
        )  # fmt: skip
        began = time.perf_counter()
        model.fit(sp.csr_matrix(result.interactions.matrix, dtype=np.float32), show_progress=False)
        bare = time.perf_counter() - began
    return {"pipeline_seconds": round(pipeline, 2), "bare_fit_seconds": round(bare, 3), "stages": result.timings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--budget", type=float, default=None, help="tuning budget (default: the store default)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-catalog", action="store_true", help="the two-stage features without the items' prices and categories"
    )
    args = parser.parse_args()
    ml_path = args.datasets / "ml-100k" / "u.data"
    retail_path = args.datasets / "online-retail" / "online_retail.csv.xz"
    for path in (ml_path, retail_path):
        if not path.exists():
            raise SystemExit(f"{path} not found (pass --datasets DIR with ml-100k/ and online-retail/)")

    (ROOT / ".dev" / "tmp").mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="quality-", dir=ROOT / ".dev" / "tmp"))
    try:
        _setup_django(state_dir)
        from recommendations.training.settings import TrainingSettings

        budget = args.budget if args.budget is not None else TrainingSettings().tuning_budget_seconds
        from recommendations.training.data import Indexer

        loaded = {
            "retail": _load_store("retail", "online-retail", retail_path, retail_path),
            "ml100k": _load_store("ml100k", "movielens", ml_path, ml_path.with_name("u.item")),
        }
        datasets = {name: events for name, (events, _catalog) in loaded.items()}
        catalogs = {name: (Indexer.of(events).item_ids, catalog) for name, (events, catalog) in loaded.items()}
        report = {}
        for name, (train, test) in splits(datasets, args.seed).items():
            began = time.perf_counter()
            catalog = None if args.no_catalog else catalogs["retail" if name.startswith("retail") else "ml100k"]
            report[name] = evaluate_split(name, train, test, seed=args.seed, budget=budget, catalog=catalog)
            print(f"  {name} done in {time.perf_counter() - began:.0f}s", file=sys.stderr)
        ml_train = splits(datasets, args.seed)["ml100k-random"][0]
        cost = pipeline_cost(ml_train, report["ml100k-random"]["rows"]["ALS (tuned)"]["params"], seed=args.seed)
    finally:
        devservers.destroy(state_dir)
    if args.json:
        print_json({"budget_seconds": budget, "splits": report, "cost": cost})
        return 0
    print_report(report, budget)
    print(
        f"\ncost (ml100k-random training part, ALS with the tuned parameters): pipeline "
        f"(train+evaluate+refit+export+verify) {cost['pipeline_seconds']:.2f}s, bare implicit fit "
        f"{cost['bare_fit_seconds']:.3f}s; stages {cost['stages']}"
    )
    return 0


def print_report(report: dict[str, Any], budget: float) -> None:
    print(f"tuning budget {budget:g} s; NDCG@10 / P@10 / R@10 on each split's test part")
    for name, split in report.items():
        print(f"\n{name}: {split['protocol']}, {split['evaluated_customers']} customers evaluated")
        for label, row in split["rows"].items():
            if "skipped" in row:
                print(f"  {label:<20} skipped: {row['skipped']}")
                continue
            extra = f"  {row['seconds']}s" if "seconds" in row else ""
            if label in {"default", "single-stage default"}:
                extra += f"  serves {row['serves']}; holdout: {row['holdout']}; gate: {row['gate']}"
                if row.get("stages"):
                    extra += f"; stages: {row['stages']}"
            elif "params" in row:
                extra += f"  {row['params']}"
            print(f"  {label:<20} {row['ndcg@10']:.4f} {row['precision@10']:.4f} {row['recall@10']:.4f}{extra}")
        verdict = "met" if split["target_met"] else "MISSED"
        two = "met" if split["two_stage_target_met"] else "MISSED"
        low, high = split["difference_ci95"]
        print(
            f"  default vs best other ({split['best_other']}): {split['default_vs_best']:+.1%} "
            f"(NDCG@10 difference, 95% paired bootstrap interval: {low:+.4f} to {high:+.4f})  "
            f"issue 20 target (≥ −2 %) {verdict}; issue 21 target (time splits ≥ +10 %, random ≥ 0.44, "
            f"≥ fallback) {two}"
        )


if __name__ == "__main__":
    sys.exit(main())
