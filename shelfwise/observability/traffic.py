"""API traffic per store and day, for the dashboard: requests, errors and latency percentiles.

Each process adds requests up in memory and writes them to Redis at most every
``FLUSH_SECONDS`` (one pipelined call), so the serving path pays no Redis round trip for it. A
day is a hash ``sw:<tenant>:traffic:<yyyymmdd>`` with the request count ``n``, the counts of
4xx and 5xx answers and a latency histogram (``b0``… for the buckets below); percentiles are
read from the histogram (the upper edge of the bucket they fall in). A process that stops loses
at most its last few seconds of counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shelfwise.datastores.redis_client import redis_call, tenant_key

FLUSH_SECONDS = 5.0
KEEP_DAYS = 100
# Upper edges of the latency buckets, milliseconds (the last bucket is everything slower).
BUCKETS_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10000)

_lock = threading.Lock()
_pending: dict[tuple[int, str], Counter[str]] = {}
_last_flush = time.monotonic()


def _bucket(duration_ms: float) -> int:
    for index, edge in enumerate(BUCKETS_MS):
        if duration_ms <= edge:
            return index
    return len(BUCKETS_MS)


def traffic_record(*, tenant_id: int, status: int, duration_ms: float, now: datetime | None = None) -> None:
    """Count one API request of a store (called once per request by the request middleware)."""
    global _last_flush  # noqa: PLW0603 - process-wide buffer
    day = f"{(now or datetime.now(UTC)):%Y%m%d}"
    with _lock:
        counts = _pending.setdefault((tenant_id, day), Counter())
        counts["n"] += 1
        if status >= 500:
            counts["e5"] += 1
        elif status >= 400:
            counts["e4"] += 1
        counts[f"b{_bucket(duration_ms)}"] += 1
        due = time.monotonic() - _last_flush >= FLUSH_SECONDS
        if due:
            _last_flush = time.monotonic()
    if due:
        traffic_flush()


def traffic_flush() -> None:
    """Write what this process counted to Redis (kept if Redis is unavailable)."""
    with _lock:
        batch = dict(_pending)
        _pending.clear()
    if not batch:
        return

    def write(client: Any) -> bool:
        pipe = client.pipeline(transaction=False)
        for (tenant_id, day), counts in batch.items():
            key = tenant_key(tenant_id, "traffic", day)
            for field, value in counts.items():
                pipe.hincrby(key, field, value)
            pipe.expire(key, KEEP_DAYS * 86400)
        pipe.execute()
        return True

    if not redis_call(write, default=False):
        with _lock:  # put them back for the next flush
            for key, counts in batch.items():
                _pending.setdefault(key, Counter()).update(counts)


def _percentile(histogram: list[int], share: float) -> float | None:
    total = sum(histogram)
    if not total:
        return None
    needed, seen = share * total, 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= needed:
            return float(BUCKETS_MS[index]) if index < len(BUCKETS_MS) else float("inf")
    return None


def traffic_daily(tenant_id: int, *, days: int, today: date | None = None) -> list[dict[str, Any]]:
    """One row per day (oldest first): requests, client errors, server errors, p50/p95 ms."""
    end = today or datetime.now(UTC).date()
    dates = [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]

    def read(client: Any) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for day in dates:
            pipe.hgetall(tenant_key(tenant_id, "traffic", f"{day:%Y%m%d}"))
        return list(pipe.execute())

    rows: list[Any] = redis_call(read, default=[{} for _ in dates])
    out = []
    for day, raw in zip(dates, rows, strict=True):
        values = {key.decode() if isinstance(key, bytes) else key: int(value) for key, value in (raw or {}).items()}
        histogram = [values.get(f"b{index}", 0) for index in range(len(BUCKETS_MS) + 1)]
        out.append(
            {
                "day": day.isoformat(),
                "requests": values.get("n", 0),
                "client_errors": values.get("e4", 0),
                "server_errors": values.get("e5", 0),
                "p50_ms": _percentile(histogram, 0.50),
                "p95_ms": _percentile(histogram, 0.95),
            }
        )
    return out
