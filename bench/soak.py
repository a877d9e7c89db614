"""Soak: mixed traffic at half the measured peak for ten minutes; errors, latency and memory per minute.

    python bench/soak.py [--minutes 10] [--json]      (make soak; not part of make test)

Starts a throw-away stack the way `make run` does (gunicorn with shelfwise/server/gunicorn_conf.py and
WEB_CONCURRENCY=3, one Celery worker for the default, scoring and training queues), imports the
demo store's data (UCI Online Retail, as `make run` does) into an enterprise-plan store with four
API keys (rate limits are per key; the soak must measure the service, not the limiter), trains a
model and then drives it with wrk (one thread, 16 connections):

- traffic: 90% recommendation reads (customers' recommendations for the store's real customers,
  similar items, popular) and 10% single-event POSTs (views, add-to-carts and purchases of real
  items by real customers, each invalidating that customer's cached list);
- peak: 20 seconds without pauses; the soak then runs at half that rate, each connection pausing
  between requests (wrk's delay()), in one-minute rounds;
- per minute: requests per second, p50/p99, 5xx count (any non-2xx is also counted), and the
  resident memory (RSS) of the gunicorn workers and the Celery worker processes.

It passes when there is no 5xx at all, the last minute's p99 is within 2x of the first minute's and
memory grew by less than 20%; it prints the figures either way and exits 1 if not.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack, print_json, stack  # noqa: E402
from bench.serving import _ensure_wrk, _ms  # noqa: E402

DATA = ROOT / "data" / "online-retail" / "online_retail.csv.xz"
CONNECTIONS = 16
KEYS = 4

_SCRIPT = """
local gets, posts, keys = {}, {}, {}
init = function(args)
  for line in io.lines(args[1]) do gets[#gets + 1] = line end
  for line in io.lines(args[2]) do posts[#posts + 1] = line end
  for line in io.lines(args[3]) do keys[#keys + 1] = "Bearer " .. line end
  math.randomseed(tonumber(args[4]))
end
local i = 0
request = function()
  i = i + 1
  local key = keys[i % #keys + 1]
  if math.random() < 0.1 then
    return wrk.format("POST", "/api/v1/events",
      {["Authorization"] = key, ["Content-Type"] = "application/json"}, posts[math.random(#posts)])
  end
  return wrk.format("GET", gets[math.random(#gets)], {["Authorization"] = key})
end
server_errors = 0
response = function(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("server_errors") end
  io.write(string.format("server errors: %d\\n", total))
end
DELAY
"""


def _api(base: str, method: str, path: str, key: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _ids(base: str, key: str, resource: str, field: str, limit: int) -> list[str]:
    """Up to ``limit`` ids through the API's own cursor pagination."""
    found: list[str] = []
    cursor: str | None = ""
    while cursor is not None and len(found) < limit:
        page = _api(base, "GET", f"/api/v1/{resource}?limit=1000" + (f"&cursor={cursor}" if cursor else ""), key)
        found += [str(row[field]) for row in page["results"]]
        cursor = page["next_cursor"]
    return found[:limit]


def _build(running: Stack) -> list[str]:
    """The soak store: the demo data, a trained model, four keys; returns the keys."""
    keys = [running.create_tenant("soak", plan="enterprise")]
    for n in range(KEYS - 1):
        out = running.manage("apikey_create", "soak", "--name", f"soak {n}", capture=True)
        keys.append(out.strip().splitlines()[-1])  # the raw key, printed once on its own line
    for what in ("items", "events"):
        running.manage(f"import_{what}", str(DATA), "--tenant", "soak", "--format", "online-retail", "--no-progress")
    running.manage("model_train", "--tenant", "soak", "--now")
    return keys


def _traffic(base: str, key: str, folder: Path) -> tuple[Path, Path]:
    customers = _ids(base, key, "customers", "customer_id", 3000)
    items = _ids(base, key, "items", "item_id", 3000)
    rng = random.Random(11)
    gets = (
        [f"/api/v1/customers/{c}/recommendations?count=10" for c in customers] * 15
        + [f"/api/v1/items/{i}/similar?count=10" for i in rng.sample(items, min(len(items), 2000))] * 3
        + ["/api/v1/recommendations/popular?count=10"] * 300
    )
    rng.shuffle(gets)
    kinds = ["view"] * 6 + ["add_to_cart"] * 3 + ["purchase"]
    events = [
        {"customer_id": rng.choice(customers), "item_id": rng.choice(items), "type": rng.choice(kinds)}
        for _ in range(20_000)
    ]
    posts = [json.dumps({"events": [event]}) for event in events]
    (folder / "gets.txt").write_text("\n".join(gets) + "\n")
    (folder / "posts.txt").write_text("\n".join(posts) + "\n")
    return folder / "gets.txt", folder / "posts.txt"


def _wrk(wrk: str, base: str, files: list[Path], *, seconds: int, delay_ms: float, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "soak.lua"
        delay = f"delay = function() return {delay_ms:.2f} end" if delay_ms > 0 else ""
        script.write_text(_SCRIPT.replace("DELAY", delay))
        out = subprocess.run(
            [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script),
             base, "--", *map(str, files), str(seed)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"^\s+50%\s+([\d.]+\w+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "server_errors": int(re.search(r"server errors: (\d+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) / 1024 if match else 0
        pending += [int(child) for child in children]
    return round(total, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    wrk = _ensure_wrk()

    with stack(web_workers=3, celery_queues="default,scoring,training") as running:
        print("importing the demo data into the soak store and training a model…", file=sys.stderr)
        keys = _build(running)
        base = running.base_url
        web_pid, worker_pid = running.processes[0].pid, running.processes[1].pid
        with tempfile.TemporaryDirectory() as folder:
            gets, posts = _traffic(base, keys[0], Path(folder))
            keys_file = Path(folder) / "keys.txt"
            keys_file.write_text("\n".join(keys) + "\n")
            files = [gets, posts, keys_file]
            _wrk(wrk, base, files, seconds=10, delay_ms=0, seed=1)  # warm-up: models loaded, caches filled
            peak = _wrk(wrk, base, files, seconds=20, delay_ms=0, seed=2)
            target = peak["rps"] / 2
            print(f"  peak: {peak}; soaking at {target:.0f} req/s", file=sys.stderr)
            # Each connection: one request, then a pause. The pause starts as if requests took no
            # time and is corrected after each minute by the rate that minute achieved.
            delay_ms = CONNECTIONS / target * 1000
            minutes = []
            for minute in range(1, args.minutes + 1):
                figures = _wrk(wrk, base, files, seconds=60, delay_ms=delay_ms, seed=100 + minute)
                figures |= {"web_rss_mb": _rss_mb(web_pid), "worker_rss_mb": _rss_mb(worker_pid)}
                minutes.append(figures)
                print(f"  minute {minute}: {figures}", file=sys.stderr)
                delay_ms = max(delay_ms * figures["rps"] / target, 0.1)

    first, last = minutes[0], minutes[-1]
    server_errors = sum(m["server_errors"] for m in minutes)
    checks = {
        "no 5xx": server_errors == 0,
        "p99 stable (last <= 2x first)": last["p99_ms"] <= 2 * max(first["p99_ms"], 1.0),
        "web memory flat (<20% growth)": last["web_rss_mb"] <= 1.2 * first["web_rss_mb"],
        "worker memory flat (<20% growth)": last["worker_rss_mb"] <= 1.2 * first["worker_rss_mb"],
    }
    if args.json:
        print_json({"peak": peak, "target_rps": round(target, 1), "minutes": minutes, "checks": checks})
        return 0 if all(checks.values()) else 1
    print(f"Soak: {args.minutes} min of mixed traffic (90% reads, 10% events) at half the measured peak")
    print(f"peak (20 s, no pauses): {peak['rps']:.1f} req/s, p99 {peak['p99_ms']:.2f} ms; target {target:.0f} req/s")
    print(
        f"{'minute':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'5xx':>5} {'non-2xx':>8} "
        f"{'web MB':>8} {'worker MB':>10}"
    )
    for n, m in enumerate(minutes, 1):
        print(f"{n:>6} {m['rps']:>8.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['server_errors']:>5} "
              f"{m['non_2xx']:>8} {m['web_rss_mb']:>8.1f} {m['worker_rss_mb']:>10.1f}")  # fmt: skip
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
