"""Serving throughput and latency under load, next to a bare-Django ceiling in the same run.

    python bench/serving.py [--json] [--seconds 20] [--connections 32] [--cases all|main|large]

Starts a throw-away stack the way `make run` does (gunicorn with shelfwise/server/gunicorn_conf.py and
WEB_CONCURRENCY=3, a scoring worker), builds a large generated store — 100,000 items and 200,000
customers with 8 events each (1.6 million, loaded with COPY: setup, not measured), trains an
ALS model on it — and drives it with wrk (loopback, one thread, --connections, --seconds):

- ceiling: a bare Django view that returns one Redis value, through Django's full handler and
  middleware
- cache_hit: recommendations for 2,000 customers whose lists are cached (answered by the fast
  path, shelfwise/http/fastpath.py: before Django's routing and most middleware)
- cache_miss: recommendations for customers never asked for before (ONNX scoring each time);
  at 32 connections without pauses the CPUs are saturated and its latency is mostly queueing
  (32 requests in line behind two cores), so it is also measured below saturation: at 2
  connections (one per core: cache_miss_2_connections), and at 32 connections that each pause
  between requests so that together they ask for about half the misses per second just measured
  (cache_miss_half_load; paced with wrk's delay(), as bench/soak.py does; wrk's latencies leave
  the pauses out)
- similar: similar items for random items

Then freshness: for 100 customers, a view event on their first recommendation is sent and the
recommendations are asked for until that item has left them; the time from sending the event to
that answer is the event-to-fresh-recommendation latency (p95 printed). Then the two-stage case:
the online aggregates rebuilt, a two-stage version of the same store trained and promoted, and
cache misses through it at 2 connections.

The large case (``--cases large`` alone): a second store of 1,000,000 items (200,000 customers,
9 events each), its ALS version — with the ANN index of large catalogs (docs/adr/0009), whose
recall@100 against exact search the version's verification measured and the report prints —
and cache misses through it at 2 connections; then similar items of random items at 2 connections
(searched per request in the version's cosine index). Last, each of the issues' targets with the figure
it is judged by, met or MISSED.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack, print_json, stack  # noqa: E402

ITEMS = 100_000
CUSTOMERS = 200_000
EVENTS_PER_CUSTOMER = 8
GROUPS = 200
HOT_CUSTOMERS = 2_000
# The 1M-item case (issue 21): as many customers, 9 events each (1.8 million).
LARGE_SLUG = "servebench1m"
LARGE_ITEMS = 1_000_000
LARGE_EVENTS_PER_CUSTOMER = 9


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    return found


def _request(base: str, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=60)
    headers = {"Authorization": f"Bearer {key}"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data else None, dict(response.getheaders())


def _expect_ok(status: int, what: str) -> None:
    if status != 200:
        raise RuntimeError(f"{what} answered {status} while building the store")


def _build_store(
    running: Stack,
    slug: str = "servebench",
    n_items: int = ITEMS,
    events_per_customer: int = EVENTS_PER_CUSTOMER,
    *,
    train: bool = True,
) -> str:
    """The tenant, a plan without practical rate limits, items, customers, events, a model
    (``train``: the single-stage one)."""
    running.manage(
        "shell",
        "-c",
        "from tenants.models import Plan; Plan.objects.get_or_create(code='bench', defaults=dict(name='Bench', "
        "requests_per_minute=10_000_000, burst=1_000_000, max_api_keys=20))",
    )
    key = running.create_tenant(slug, plan="bench")
    rng = random.Random(11)
    for start in range(0, n_items, 10_000):
        rows = [
            {"item_id": f"i{n}", "title": f"Item {n}", "categories": [f"g{n % GROUPS}"], "price": float(n % 500),
             "currency": "GBP", "in_stock": n % 5 != 0}
            for n in range(start, start + 10_000)
        ]  # fmt: skip
        status, _body, _h = _request(running.base_url, "POST", "/api/v1/items:batch", key, {"items": rows})
        _expect_ok(status, "items:batch")

    import psycopg

    now = datetime.now(UTC)
    with psycopg.connect(running.env["DATABASE_URL"]) as conn:
        conn.execute(f"SET search_path = t_{slug}")
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY catalog_customer (external_id, anonymous, properties, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for n in range(CUSTOMERS):
                copy.write_row((f"c{n}", False, "{}", now, now))
        items = dict(conn.execute("SELECT external_id, id FROM catalog_item").fetchall())
        customers = dict(conn.execute("SELECT external_id, id FROM catalog_customer").fetchall())
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY catalog_event (event_id, customer_id, item_id, type, value, timestamp, properties, received_at)"
                " FROM STDIN"
            ) as copy,
        ):
            for n in range(CUSTOMERS):
                liked = rng.randrange(GROUPS)
                for e in range(events_per_customer):
                    group = liked if rng.random() < 0.8 else rng.randrange(GROUPS)
                    item = group + GROUPS * rng.randrange(n_items // GROUPS)
                    when = now - timedelta(minutes=rng.randrange(60 * 24 * 30))
                    copy.write_row((f"b{n}-{e}", customers[f"c{n}"], items[f"i{item}"], "view", None, when, "{}", now))
        conn.execute("ANALYZE")
        conn.commit()
    # A model: ALS with settled parameters (quality is bench/quality.py's business).
    status, _body, _h = _request(
        running.base_url,
        "PATCH",
        "/api/v1/settings",
        key,
        # the single stage first: the two-stage case trains its own version later (_two_stage_version)
        {
            "training": {
                "two_stage": False,
                # ALS, as said: without these the store's default (`auto`, with a search within the
                # tuning budget) chose the recipe, and a 1M-item store might get one without factors.
                "algorithm": "als",
                "tune": False,
                "params": {"als": {"factors": 64, "iterations": 8, "regularization": 10.0, "alpha": 1.0}},
            }
        },
    )
    _expect_ok(status, "settings")
    if not train:
        return key
    started = time.perf_counter()
    running.manage("model_train", "--tenant", slug, "--now")
    print(f"  trained in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return key


def _large_case(running: Stack, wrk: str, seconds: int) -> dict[str, Any]:
    """The 1M-item case (issue 21): a store of LARGE_ITEMS items, its ALS version with the ANN
    index (docs/adr/0009) and the recall its verification measured, then cache misses through it
    at 2 connections."""
    key = _build_store(running, LARGE_SLUG, LARGE_ITEMS, LARGE_EVENTS_PER_CUSTOMER)
    out = running.manage(
        "shell", "-c",
        "import json; from django_tenants.utils import tenant_context; from tenants.models import Tenant; "
        "from recommendations.models import ModelVersion\n"
        f"with tenant_context(Tenant.objects.get(schema_name='t_{LARGE_SLUG}')):\n"
        "    v = ModelVersion.objects.order_by('-version').first()\n"
        "    print('ANN', json.dumps({'version': v.version, 'status': v.status, 'items': v.manifest['data_counts']"
        "['items'], 'ann': v.manifest['scoring'].get('ann'), 'similar_ann': v.manifest['scoring']"
        ".get('similar_ann'), 'timings': v.manifest.get('timings')}))",
        capture=True,
    )  # fmt: skip
    built = json.loads(next(line[4:] for line in out.splitlines() if line.startswith("ANN ")))
    if not built["ann"]:
        raise RuntimeError(f"the {LARGE_ITEMS}-item version has no ANN index: {built}")
    print(f"  1M-item version: {built}", file=sys.stderr)
    if built["status"] != "active":
        # The gate can refuse it: on this generated store (9 events per customer over 834k items)
        # the holdout scores the model and decayed popularity both 0 (a tie is not a win). This
        # case measures serving cost; quality is bench/quality.py's business.
        status, _body, _h = _request(
            running.base_url, "POST", f"/api/v1/models/{built['version']}:promote", key, {"reason": "bench"}
        )
        _expect_ok(status, "promote")
        print(f"  promoted version {built['version']} (the gate had left it {built['status']})", file=sys.stderr)
    cold = [f"/api/v1/customers/c{n}/recommendations" for n in range(CUSTOMERS)]
    random.Random(7).shuffle(cold)
    status, body, _h = _request(running.base_url, "GET", cold[0], key)  # loads the version (its first miss)
    _expect_ok(status, "1M-item recommendations")
    if body.get("model_version") != built["version"]:
        raise RuntimeError(f"expected version {built['version']} to answer, got {body.get('model_version')}")
    _warm_every_worker(running, wrk, key, cold[-WARM_PATHS:])
    result = _wrk(wrk, running.base_url, key, cold[1:-WARM_PATHS], seconds=seconds, connections=2)
    print(f"  large_miss_2_connections: {result}", file=sys.stderr)
    # Similar items of such a catalog are searched per request in the cosine index (no table).
    similar = [f"/api/v1/items/i{n}/similar" for n in random.Random(8).sample(range(LARGE_ITEMS), 20_000)]
    similar_result = _wrk(wrk, running.base_url, key, similar, seconds=seconds, connections=2)
    print(f"  large_similar_2_connections: {similar_result}", file=sys.stderr)
    return {"miss": result, "similar": similar_result, "version": built}


def _two_stage_version(running: Stack, key: str) -> int:
    """A two-stage version of the same store, promoted: the online aggregates rebuilt from the
    events (they were loaded with COPY, not through the API), then a training that keeps its
    ranker even if it does not beat the single stage (bench/settings.py's SHELFWISE_TWO_STAGE_ALWAYS:
    this measures serving cost; quality is bench/quality.py's business)."""
    started = time.perf_counter()
    running.manage(
        "shell", "-c",
        "from django_tenants.utils import tenant_context; from tenants.models import Tenant; "
        "from catalog.tasks import features_rebuild\n"
        "with tenant_context(Tenant.objects.get(schema_name='t_servebench')): features_rebuild()",
    )  # fmt: skip
    print(f"  online aggregates rebuilt in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    status, _body, _h = _request(running.base_url, "PATCH", "/api/v1/settings", key, {"training": {"two_stage": True}})
    _expect_ok(status, "settings")
    started = time.perf_counter()
    running.env["SHELFWISE_BENCH_TWO_STAGE_ALWAYS"] = "1"
    try:
        running.manage("model_train", "--tenant", "servebench", "--now")
    finally:
        del running.env["SHELFWISE_BENCH_TWO_STAGE_ALWAYS"]
    print(f"  two-stage version trained in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    status, body, _h = _request(running.base_url, "GET", "/api/v1/models", key)
    _expect_ok(status, "models")
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    version = max(row["version"] for row in rows)
    status, body, _h = _request(running.base_url, "POST", f"/api/v1/models/{version}:promote", key, {"reason": "bench"})
    _expect_ok(status, "promote")
    return version


_WRK_SCRIPT = """
local paths = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do n = n + 1; paths[n] = line end
end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i - 1) % n + 1], {["Authorization"] = "Bearer KEY"})
end
DELAY
"""


def _wrk(
    wrk: str, base: str, key: str, paths: list[str], *, seconds: int, connections: int, delay_ms: float = 0
) -> dict[str, float]:
    """wrk's figures; with ``delay_ms`` each connection pauses that long before each request
    (wrk's latency figures leave the pause out)."""
    with tempfile.TemporaryDirectory() as folder:
        paths_file = Path(folder) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script = Path(folder) / "script.lua"
        delay = f"delay = function() return {delay_ms:.2f} end" if delay_ms > 0 else ""
        script.write_text(_WRK_SCRIPT.replace("KEY", key).replace("DELAY", delay))
        result = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script),
             base, "--", str(paths_file)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", out, re.M).group(1)) for p in ("50", "99")}  # type: ignore[union-attr]
    return {
        "rps": round(rps, 1),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(re.match(r"[\d.]+", value).group(0)) :]  # type: ignore[union-attr]
    return round(number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 2)


def _freshness(base: str, key: str, customers: list[str]) -> list[float]:
    """Seconds from sending an event to the first answer that reflects it."""
    samples = []
    for customer in customers:
        path = f"/api/v1/customers/{customer}/recommendations?count=10"
        _status, body, _h = _request(base, "GET", path, key)
        top = body["items"][0]["item_id"]
        began = time.perf_counter()
        _request(
            base, "POST", "/api/v1/events", key, {"events": [{"customer_id": customer, "item_id": top, "type": "view"}]}
        )
        while True:
            _status, body, _h = _request(base, "GET", path, key)
            if top not in [row["item_id"] for row in body["items"]]:
                break
            if time.perf_counter() - began > 10:
                break
        samples.append(time.perf_counter() - began)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--cases", choices=("all", "main", "two-stage", "large"), default="all",
        help="main: the 100k-item store's cases; two-stage: its two-stage case alone; large: the 1M-item case "
        "alone; all: main and large",
    )  # fmt: skip
    args = parser.parse_args()
    wrk = _ensure_wrk()

    workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
    results: dict[str, dict[str, float]] = {}
    large: dict[str, Any] | None = None
    freshness: list[float] = []
    with stack(web_workers=workers, celery_queues="scoring,default",
               settings="bench.settings") as running:  # fmt: skip
        if args.cases in {"all", "main"}:
            freshness = _main_cases(running, wrk, args.seconds, args.connections, results)
        if args.cases == "two-stage":
            print("building the store (100k items, 200k customers, 1.6M events)…", file=sys.stderr)
            key = _build_store(running, train=False)
            results["two_stage_miss_2_connections"] = _two_stage_case(running, wrk, args.seconds, key, _cold())
        if args.cases in {"all", "large"}:
            print(f"building the 1M-item store ({LARGE_ITEMS:,} items) and a model…", file=sys.stderr)
            large = _large_case(running, wrk, args.seconds)
            results["large_miss_2_connections"] = large["miss"]
            results["large_similar_2_connections"] = large["similar"]
    freshness_p95 = freshness[int(0.95 * (len(freshness) - 1))] * 1000 if freshness else None
    if args.json:
        print_json({**{name: {k: v for k, v in value.items() if k != "non_2xx"} for name, value in results.items()},
                    "freshness_p95_ms": round(freshness_p95, 1) if freshness_p95 is not None else None,
                    "large_version": large["version"] if large else None})  # fmt: skip
        return 0
    _print_report(args, workers, results, freshness, large)
    return 0


def _main_cases(
    running: Stack, wrk: str, seconds: int, connections: int, results: dict[str, dict[str, float]]
) -> list[float]:
    """The 100k-item store's cases into ``results``; the freshness samples (seconds, sorted)."""
    print("building the store (100k items, 200k customers, 1.6M events) and a model…", file=sys.stderr)
    key = _build_store(running)
    import redis

    redis.Redis.from_url(running.env["REDIS_URL"]).set("bench:ceiling", json.dumps({"items": list(range(10))}))
    base = running.base_url
    hot = [f"/api/v1/customers/c{n}/recommendations" for n in range(HOT_CUSTOMERS)]
    for path in hot:  # warm the cache
        _request(base, "GET", path, key)
    cold = _cold()
    similar = [f"/api/v1/items/i{n}/similar" for n in random.Random(6).sample(range(ITEMS), 20_000)]
    third = len(cold) // 3
    for name, paths, clients in (
        ("ceiling", ["/api/bench/ceiling"], connections),
        ("cache_hit", hot, connections),
        ("cache_miss", cold[:third], connections),
        ("cache_miss_2_connections", cold[third : 2 * third], 2),
        ("cache_miss_half_load", cold[2 * third :], connections),
        ("similar", similar, connections),
    ):
        # Half load: the same connections, each pausing between requests so that together
        # they ask for about half the misses per second measured above (as bench/soak.py paces).
        delay_ms = connections / (results["cache_miss"]["rps"] / 2) * 1000 if name.endswith("half_load") else 0
        results[name] = _wrk(wrk, base, key, paths, seconds=seconds, connections=clients, delay_ms=delay_ms)
        print(f"  {name}: {results[name]}", file=sys.stderr)
    fresh = sorted(_freshness(base, key, [f"c{n}" for n in range(HOT_CUSTOMERS + 150_000, HOT_CUSTOMERS + 150_100)]))

    # The cache key names the version: every customer is a miss again.
    results["two_stage_miss_2_connections"] = _two_stage_case(running, wrk, seconds, key, cold[:third])
    return fresh


# Customers asked for before a new version's case is measured, by as many connections as there
# are web workers: each worker loads the version on its first request to it (seconds for a large
# one), which is not what a steady miss costs. (The first run of the two-stage case measured
# without this: p99 1,780 ms at a p50 of 34 ms — the other workers loading the version.)
WARM_PATHS = 300


def _warm_every_worker(running: Stack, wrk: str, key: str, paths: list[str]) -> None:
    """Every web worker loads the version, and the promotion's cache warming (1,000 customers'
    lists computed on the scoring worker, competing for the same two cores) is done."""
    workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
    _wrk(wrk, running.base_url, key, paths, seconds=5, connections=max(workers * 2, 2))
    import redis

    broker = redis.Redis.from_url(running.env.get("CELERY_BROKER_URL") or running.env["REDIS_URL"])
    deadline = time.monotonic() + 600
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:  # three empty looks in a row, 2 s apart
        quiet = quiet + 1 if not any(broker.llen(queue) for queue in ("scoring", "default")) else 0
        time.sleep(2)
    time.sleep(5)  # the last task taken from the queue


def _cold() -> list[str]:
    """Recommendation paths of the customers no case before asked for (shuffled)."""
    cold = [f"/api/v1/customers/c{n}/recommendations" for n in range(HOT_CUSTOMERS, CUSTOMERS)]
    random.Random(5).shuffle(cold)
    return cold


def _two_stage_case(running: Stack, wrk: str, seconds: int, key: str, paths: list[str]) -> dict[str, float]:
    """A two-stage version of the store, trained and promoted; misses through it, 2 connections."""
    print("training a two-stage version of the same store…", file=sys.stderr)
    two_stage = _two_stage_version(running, key)
    out = running.manage(
        "shell", "-c",
        "from django_tenants.utils import tenant_context; from tenants.models import Tenant; "
        "from recommendations.models import ModelVersion\n"
        "with tenant_context(Tenant.objects.get(schema_name='t_servebench')):\n"
        f"    print('RANKER', bool(ModelVersion.objects.get(version={two_stage}).manifest['scoring'].get('ranker')))",
        capture=True,
    )  # fmt: skip
    if "RANKER True" not in out:
        raise RuntimeError(f"version {two_stage} has no ranker: the case would not measure two stages")
    status, body, _h = _request(running.base_url, "GET", paths[0], key)  # loads the version (its first miss)
    _expect_ok(status, "two-stage recommendations")
    if body.get("model_version") != two_stage:
        raise RuntimeError(f"expected version {two_stage} to answer, got {body.get('model_version')}")
    _warm_every_worker(running, wrk, key, paths[-WARM_PATHS:])
    result = _wrk(wrk, running.base_url, key, paths[1:-WARM_PATHS], seconds=seconds, connections=2)
    print(f"  two_stage_miss_2_connections: {result}", file=sys.stderr)
    return result


def _print_report(
    args: argparse.Namespace,
    workers: int,
    results: dict[str, dict[str, float]],
    fresh: list[float],
    large: dict[str, Any] | None,
) -> None:
    ceiling = results["ceiling"]["rps"] if "ceiling" in results else 0.0
    print(
        f"Serving benchmark ({args.connections} connections, {args.seconds}s per case, wrk, WEB_CONCURRENCY={workers})"
    )
    print(f"{'case':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11} {'non-2xx':>8}")
    for name, value in results.items():
        share = f"{value['rps'] / ceiling:.0%}" if ceiling else "-"
        figures = f"{value['rps']:>9.1f} {value['p50_ms']:>8.2f} {value['p99_ms']:>8.2f}"
        print(f"{name:<28} {figures} {share:>11} {value['non_2xx']:>8}")
    targets: list[tuple[str, str, bool]] = []
    if fresh:
        p95 = fresh[int(0.95 * (len(fresh) - 1))] * 1000
        print(f"event-to-fresh-recommendation p95: {p95:.1f} ms (100 customers; max {fresh[-1] * 1000:.1f} ms)")
        hit, miss, miss_2 = results["cache_hit"], results["cache_miss"], results["cache_miss_2_connections"]
        miss_half = results["cache_miss_half_load"]
        two_miss = results["two_stage_miss_2_connections"]
        targets += [
            ("cache hits >= 70% of the ceiling (issue 5)", f"{hit['rps'] / ceiling:.0%}", hit["rps"] >= 0.7 * ceiling),
            (f"cache-hit p99 <= 15 ms at {args.connections} connections (issue 5)", f"{hit['p99_ms']:.2f} ms",
             hit["p99_ms"] <= 15),
            ("cache-miss p99 <= 25 ms, 2 connections (issue 5)", f"{miss_2['p99_ms']:.2f} ms", miss_2["p99_ms"] <= 25),
            ((f"cache-miss p99 <= 25 ms, {args.connections} connections at half the miss throughput "
              f"({miss_half['rps']:.0f} req/s) (issue 5)"), f"{miss_half['p99_ms']:.2f} ms",
             miss_half["p99_ms"] <= 25),
            ((f"cache-miss p99 <= 25 ms, {args.connections} connections without pauses (saturated: queueing "
              "behind the CPUs) (issue 5)"), f"{miss['p99_ms']:.2f} ms", miss["p99_ms"] <= 25),
            ("event-to-fresh-recommendation p95 <= 1 s (issue 5)", f"{p95:.1f} ms", p95 <= 1000),
            ("two-stage cache-miss p99 <= 25 ms, 2 connections (issue 21)",
             f"{two_miss['p99_ms']:.2f} ms", two_miss["p99_ms"] <= 25),
        ]  # fmt: skip
    if not fresh and "two_stage_miss_2_connections" in results:
        two_miss = results["two_stage_miss_2_connections"]
        targets.append(("two-stage cache-miss p99 <= 25 ms, 2 connections (issue 21)",
                        f"{two_miss['p99_ms']:.2f} ms", two_miss["p99_ms"] <= 25))  # fmt: skip
    if large is not None:
        ann = large["version"]["ann"]
        miss_large = large["miss"]
        print(
            f"1M-item version: {large['version']['items']:,} items, ANN {ann['lists']} lists, searching "
            f"{ann['nprobe']}, recall@100 {ann['recall_at_100']} against exact ({ann['queries']} customers)"
        )
        similar = large["version"].get("similar_ann")
        if similar:
            print(
                f"1M-item similar items: cosine index of {similar['lists']} lists searching {similar['nprobe']}, "
                f"recall@100 {similar['recall_at_100']} ({similar['queries']} items); 2 connections "
                f"p50 {large['similar']['p50_ms']:.2f} ms, p99 {large['similar']['p99_ms']:.2f} ms"
            )
        targets.append((
            "1M items: cache-miss p99 <= 10 ms, 2 connections, at ANN recall@100 >= 0.95 (issue 21)",
            f"{miss_large['p99_ms']:.2f} ms at recall@100 {ann['recall_at_100']}",
            miss_large["p99_ms"] <= 10 and ann["recall_at_100"] >= 0.95,
        ))  # fmt: skip
    print("targets (on 2 cores):")
    for text, figure, met in targets:
        print(f"  {'met   ' if met else 'MISSED'} {text}: {figure}")


if __name__ == "__main__":
    sys.exit(main())
