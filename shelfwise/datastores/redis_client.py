"""The process's Redis client: short timeouts, no retry storm, and a circuit breaker.

Serving must never wait long on Redis (PITFALLS: redis-py 8 retries with exponential backoff by
default). ``redis_call`` runs one operation and, when Redis is down, returns the caller's
fallback at once and skips Redis for ``REDIS_CIRCUIT_OPEN_SECONDS`` before trying again, so
the API degrades instead of failing and recovers by itself when Redis is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)

_lock = threading.Lock()
_client: redis.Redis | None = None
_circuit_open_until = 0.0


def redis_client() -> redis.Redis:
    """The shared client (one pool per process; redis-py resets pools after fork)."""
    global _client  # noqa: PLW0603 - process-wide singleton
    if _client is None:
        with _lock:
            if _client is None:
                pool = redis.ConnectionPool.from_url(
                    settings.REDIS_URL,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                    retry=Retry(NoBackoff(), 1),
                    health_check_interval=30,
                    max_connections=64,
                )
                _client = redis.Redis(connection_pool=pool)
    return _client


def circuit_open() -> bool:
    return time.monotonic() < _circuit_open_until


def trip_circuit(exc: BaseException) -> None:
    global _circuit_open_until  # noqa: PLW0603
    if not circuit_open():
        logger.warning("redis unavailable, degrading for %.1fs: %s", settings.REDIS_CIRCUIT_OPEN_SECONDS, exc)
    _circuit_open_until = time.monotonic() + settings.REDIS_CIRCUIT_OPEN_SECONDS


def reset_circuit() -> None:
    global _circuit_open_until  # noqa: PLW0603
    _circuit_open_until = 0.0


def redis_call(operation: Callable[[redis.Redis], T], *, default: T) -> T:
    """Run ``operation`` against Redis, or return ``default`` if Redis is (recently) unreachable."""
    if circuit_open():
        return default
    try:
        return operation(redis_client())
    except REDIS_ERRORS as exc:
        trip_circuit(exc)
        return default


def tenant_key(tenant_id: int, *parts: object) -> str:
    """A Redis key in the tenant's namespace: ``sw:<tenant id>:<part>:<part>...``."""
    return ":".join(["sw", str(tenant_id), *(str(p) for p in parts)])


def tenant_key_pattern(tenant_id: int) -> str:
    return f"sw:{tenant_id}:*"
