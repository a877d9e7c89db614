"""Ingestion throughput: sustained events/s through POST /api/v1/events, next to a raw COPY
of the same kind of rows into the same table, measured in the same run.

    python bench/ingest.py [--json] [--seconds 20] [--concurrency 4]
    python bench/ingest.py --url http://localhost:8000 --key sk_live_…   # an already running stack

Without --url it starts a throw-away stack the way `make run` does (embedded PostgreSQL and
Redis, gunicorn with shelfwise/server/gunicorn_conf.py, WEB_CONCURRENCY=3). Each case sends batches
of unique events (70% views, 20% add-to-carts, 10% purchases over 20,000 shoppers and 5,000
items, which exist beforehand) from --concurrency client threads for --seconds, and counts the
events the API reports as stored. The baseline COPYs rows of the same shape (ids already
resolved) into the events table of another tenant's schema over one connection.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench._stack import Stack, print_json, stack

TYPES = ["view"] * 7 + ["add_to_cart"] * 2 + ["purchase"]
CUSTOMERS = 20_000
ITEMS = 5_000


def _post(conn: http.client.HTTPConnection, path: str, key: str, body: bytes) -> dict[str, object]:
    conn.request(
        "POST", path, body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} -> {response.status}: {payload[:300]!r}")
    result: dict[str, object] = orjson.loads(payload)
    return result


def _connection(base_url: str) -> http.client.HTTPConnection:
    parsed = urlparse(base_url)
    return http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=120)


def make_events(count: int, rng: random.Random, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "event_id": uuid.uuid4().hex,
            "customer_id": f"c{rng.randrange(CUSTOMERS)}",
            "item_id": f"i{rng.randrange(ITEMS)}",
            "type": rng.choice(TYPES),
            "timestamp": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
            "properties": {"source": "web"},
        }
        for _ in range(count)
    ]


def seed_catalog(base_url: str, key: str) -> None:
    """Create the items and customers the events refer to (so the measured path is steady state)."""
    conn = _connection(base_url)
    for start in range(0, ITEMS, 5000):
        rows = [
            {"item_id": f"i{n}", "title": f"Item {n}", "price": 9.99, "currency": "GBP"}
            for n in range(start, min(start + 5000, ITEMS))
        ]
        _post(conn, "/api/v1/items:batch", key, orjson.dumps({"items": rows}))
    for start in range(0, CUSTOMERS, 10_000):
        rows = [{"customer_id": f"c{n}"} for n in range(start, min(start + 10_000, CUSTOMERS))]
        _post(conn, "/api/v1/customers:batch", key, orjson.dumps({"customers": rows}))
    conn.close()


def run_case(  # noqa: PLR0917 - a benchmark helper
    base_url: str, key: str, batch: int, seconds: float, concurrency: int, expected_rate: float = 40_000
) -> dict[str, float]:
    """Events/s stored while `concurrency` clients post batches of `batch` for `seconds`."""
    stored = [0] * concurrency
    requests = [0] * concurrency
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[BaseException] = []
    start_barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def client(slot: int) -> None:
        rng = random.Random(slot)
        conn = _connection(base_url)
        now = datetime.now(UTC)
        body = orjson.dumps({"events": make_events(batch, rng, now)})
        start_barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                began = time.perf_counter()
                result = _post(conn, "/api/v1/events", key, body)
                latencies[slot].append(time.perf_counter() - began)
                stored[slot] += int(result["stored"])  # type: ignore[call-overload]
                requests[slot] += 1
                body = orjson.dumps({"events": make_events(batch, rng, now)})
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(slot,), daemon=True) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    # The deadline is set before the clients are released (they read it at once).
    deadline[0] = time.perf_counter() + seconds + 0.05
    start_barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")
    all_latencies = sorted(latency for per_client in latencies for latency in per_client)
    return {
        "events_per_s": sum(stored) / elapsed,
        "requests": float(sum(requests)),
        "p50_ms": 1000 * all_latencies[len(all_latencies) // 2] if all_latencies else 0.0,
        "seconds": elapsed,
    }


def copy_baseline(stack_: Stack, rows: int) -> float:
    """Rows/s of a raw COPY of event rows (ids resolved) into a tenant's events table."""
    import psycopg

    key = stack_.create_tenant("copybench")
    seed_catalog(stack_.base_url, key)
    dsn = stack_.env["DATABASE_URL"]
    rng = random.Random(7)
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path = t_copybench")
        customers = [row[0] for row in conn.execute("SELECT id FROM catalog_customer")]
        items = [row[0] for row in conn.execute("SELECT id FROM catalog_item")]
        batches = [
            [
                (
                    uuid.uuid4().hex, rng.choice(customers), rng.choice(items), rng.choice(TYPES), None,
                    now - timedelta(seconds=rng.randrange(30 * 86400)), None, '{"source": "web"}', now,
                )
                for _ in range(10_000)
            ]
            for _ in range(max(rows // 10_000, 1))
        ]  # fmt: skip
        began = time.perf_counter()
        for batch in batches:
            with (
                conn.transaction(),
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY catalog_event (event_id, customer_id, item_id, type, value, timestamp, "
                    "recommendation_id, properties, received_at) FROM STDIN"
                ) as copy,
            ):
                for row in batch:
                    copy.write_row(row)
        return sum(len(batch) for batch in batches) / (time.perf_counter() - began)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[Stack | None, str, str]]:
    if args.url:
        if not args.key:
            raise SystemExit("--url needs --key")
        yield None, args.url.rstrip("/"), args.key
        return
    with stack(web_workers=args.web_workers) as running:
        yield running, running.base_url, running.create_tenant("ingestbench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each case")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "3")))
    parser.add_argument("--copy-rows", type=int, default=200_000)
    parser.add_argument("--url", help="an already running stack (skips the COPY baseline)")
    parser.add_argument("--key", help="API key for --url")
    args = parser.parse_args()

    with target(args) as (running, base_url, key):
        seed_catalog(base_url, key)
        run_case(base_url, key, 1000, min(3.0, args.seconds), args.concurrency)  # warm-up
        results = {size: run_case(base_url, key, size, args.seconds, args.concurrency) for size in (1000, 10_000)}
        copy_rate = copy_baseline(running, args.copy_rows) if running else None

    if args.json:
        print_json(
            {
                "events_per_s": {str(size): round(result["events_per_s"]) for size, result in results.items()},
                "copy_events_per_s": round(copy_rate) if copy_rate else None,
            }
        )
        return 0
    print(f"Ingestion through POST /api/v1/events ({args.concurrency} clients, {args.seconds:.0f}s per case)")
    print(f"{'batch':>8}  {'events/s':>10}  {'requests':>8}  {'p50 ms':>8}  {'vs COPY':>8}")
    for size, result in results.items():
        ratio = f"{result['events_per_s'] / copy_rate:.0%}" if copy_rate else "-"
        print(
            f"{size:>8}  {result['events_per_s']:>10,.0f}  {result['requests']:>8.0f}  "
            f"{result['p50_ms']:>8.1f}  {ratio:>8}"
        )
    if copy_rate:
        print(f"{'COPY':>8}  {copy_rate:>10,.0f}  (raw COPY of the same row shape, one connection)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
