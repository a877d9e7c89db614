"""gunicorn settings for the web role (`gunicorn -c shelfwise/server/gunicorn_conf.py shelfwise.wsgi`).

Overridable through the environment: WEB_CONCURRENCY (processes), WEB_THREADS, PORT,
WEB_TIMEOUT. Access logging is off: the app logs one JSON line per request itself.
"""

import gc
import multiprocessing
import os

bind = f"{os.environ.get('WEB_BIND', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - container port
# One process more than the CPUs: while one waits on Redis or PostgreSQL another uses the CPU.
# Measured on 2 cores (bench/serving.py's cases, 32 connections): 3 processes gave cache hits a
# p99 of 12.3-14.5 ms where 2 gave 12.7-15.5 and 4 gave 13.7-16.8 (more processes than that only
# contend for the CPUs and add memory: each keeps its own models).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("WEB_THREADS", "1"))
# One request per process at a time (the default): gunicorn's sync worker, closing finished
# connections without waiting for the client (shelfwise/server/gunicorn_worker.py).
worker_class = "gthread" if threads > 1 else "shelfwise.server.gunicorn_worker.SyncWorker"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycling workers after WEB_MAX_REQUESTS requests bounds a slow leak, but a new worker has no
# model loaded and its first recommendations wait for the load (about a second for a 100,000-item
# store), so it is off unless asked for.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "shelfwise-web"
control_socket_disable = True
# Load the app once in the master and fork workers from it: a recycled worker (max_requests)
# is back in milliseconds instead of re-importing everything, and workers share memory pages.
# Nothing connects at import time (connections are opened lazily in each worker).
preload_app = os.environ.get("WEB_PRELOAD", "true").lower() not in {"0", "false", "no"}
limit_request_line = 8190  # like nginx's 8k header buffers; longer request lines get 414


def pre_fork(server: object, worker: object) -> None:
    """With the app preloaded: move everything it allocated out of the garbage collector's view
    before forking. Collections then scan only what requests allocate (less time in GC per
    request), and the shared pages are not dirtied by the collector."""
    gc.freeze()


def post_worker_init(worker: object) -> None:
    """Without preloading, the same once the worker has loaded the app."""
    gc.freeze()


def on_starting(server: object) -> None:
    """The Prometheus multi-process directory must exist (whoever starts the machine's processes
    empties it first: `make run`, or a fresh container's own directory)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """A worker ended: its gauges leave /metrics, its counters stay (see shelfwise.observability.metrics)."""
    from shelfwise.observability.metrics import process_dead

    process_dead(worker.pid)  # type: ignore[attr-defined]
