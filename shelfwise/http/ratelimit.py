"""Per-key rate limits (GCRA in one Redis script) with ``RateLimit-*`` headers, and the charge
made before DRF's machinery for requests a view may answer itself (the fast path).

The rate limit's Redis call also confirms a remembered key (``ApiPrincipal.confirm``) and runs
a view's *prelude* (``RedisPrelude``, e.g. the recommendation cache lookup): one Redis round
trip per request. Why, with measurements: docs/adr/0006-fast-path-redis-prelude-remembered-principal.md.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest

from shelfwise.datastores.redis_client import redis_call, tenant_key
from shelfwise.http.errors import RATE_LIMITED, Problem
from shelfwise.http.principal import ApiPrincipal
from shelfwise.observability.tracing import span

# GCRA (generic cell rate algorithm): one timestamp per bucket, burst tolerance, exact
# remaining/reset figures; atomic in Redis. KEYS[1] the bucket, KEYS[2] the principal's record
# ('' for none), ARGV[1] interval ms, ARGV[2] burst. Returns {allowed, remaining, retry_ms,
# reset_ms, record, prelude}: the record is read in the same round trip (see
# ApiPrincipal.confirm), and a view's prelude (RedisPrelude) runs after the charge when allowed.
_GCRA_LUA_HEAD = """
local record = false
if KEYS[2] ~= '' then record = redis.call('GET', KEYS[2]) end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now, record, false}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
"""
_GCRA_LUA_TAIL = "return {1, remaining, 0, new_tat - now, record, false}\n"


@dataclass(frozen=True)
class RedisPrelude:
    """Work a view wants done in the rate limit's round trip (one Redis call per request).

    ``body`` is Lua run after the request was charged: it reads ``KEYS[3]``… and ``ARGV[3]``…
    (``keys``, ``args``) and returns a value, handed back as the rate limit's ``prelude``."""

    body: str
    keys: tuple[str, ...]
    args: tuple[str, ...]


_scripts: dict[str, Any] = {}


def _script(client: Any, body: str) -> Any:
    """The rate-limit script (with a view's prelude), registered once per process (sent by
    hash, reloaded if Redis forgot it)."""
    script = _scripts.get(body)
    if script is None:
        source = _GCRA_LUA_HEAD + (
            f"local prelude = (function()\n{body}\nend)()\nreturn {{1, remaining, 0, new_tat - now, record, prelude}}\n"
            if body
            else _GCRA_LUA_TAIL
        )
        script = client.register_script(source)
        _scripts[body] = script
    return script


class RateLimitState:
    def __init__(self, *, limit: int, remaining: int, reset_seconds: int, window_seconds: int) -> None:
        self.limit = limit
        self.remaining = remaining
        self.reset_seconds = reset_seconds
        self.window_seconds = window_seconds

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }


def client_ip(request: HttpRequest) -> str:
    """The caller's address; X-Forwarded-For is trusted only behind SHELFWISE_TRUSTED_PROXIES proxies."""
    hops = settings.SHELFWISE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        parts = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(parts) >= hops:
            return parts[-hops]
    return str(request.META.get("REMOTE_ADDR", ""))


_UNAVAILABLE = object()


@dataclass
class RateLimitResult:
    state: RateLimitState | None  # None: Redis unavailable (the request was let through)
    reconfirmed: bool = False  # the principal's record was read again (scopes may differ)
    prelude: Any = _UNAVAILABLE  # the prelude's value; _UNAVAILABLE if it did not run

    @property
    def prelude_ran(self) -> bool:
        return self.prelude is not _UNAVAILABLE


def rate_limit_check(
    request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude | None = None
) -> RateLimitResult:
    """Charge one request to the caller's bucket; raises 429 when it is empty.

    Secret keys have one bucket per key; a public key (shared by every browser of the store)
    has one per key and client address. With Redis unavailable, requests are let through.
    The principal is confirmed (``ApiPrincipal.confirm``) with what the same call read, before
    a 429 is raised.
    """
    rate = max(int(principal.requests_per_minute), 1)
    burst = max(int(principal.burst), 1)
    bucket = principal.key_id
    if principal.is_public_key:
        bucket += ":" + hashlib.blake2b(client_ip(request).encode(), digest_size=8).hexdigest()
    keys = [tenant_key(principal.tenant_id, "rl", bucket), principal.record_cache_key or ""]
    args: list[Any] = [60_000 / rate, burst]
    if prelude is not None:
        keys += prelude.keys
        args += prelude.args
    body = prelude.body if prelude is not None else ""
    # With a prelude this call is also the view's first read (e.g. the recommendation cache).
    with span("api.rate_limit_and_prelude" if prelude is not None else "api.rate_limit"):
        result = redis_call(lambda client: _script(client, body)(keys=keys, args=args, client=client), default=None)
    reconfirmed = principal.confirm(result[4] if result is not None else None)
    if result is None:
        return RateLimitResult(None, reconfirmed)
    allowed, remaining, retry_ms, reset_ms = (int(float(v)) for v in result[:4])
    state = RateLimitState(
        limit=burst, remaining=remaining, reset_seconds=math.ceil(reset_ms / 1000), window_seconds=60
    )
    if not allowed:
        headers = state.headers() | {"Retry-After": str(max(1, math.ceil(retry_ms / 1000)))}
        raise Problem(RATE_LIMITED, f"Rate limit of {rate} requests per minute exceeded.", headers=headers)
    return RateLimitResult(state, reconfirmed, result[5] if prelude is not None else _UNAVAILABLE)


# --------------------------------------------------------------------------- answers before DRF

# Where a request's rate-limit outcome is kept when it was charged before DRF's machinery ran
# (see precharge): the outcome, or the Problem to raise. In request.META, which is the WSGI
# environ: it travels with the request when the fast path hands it to Django's full handler.
_PRECHARGED = "shelfwise.precharged"
_JSON_ACCEPT = frozenset({"", "*/*", "application/json", "application/*"})


def accepts_plain_json(request: HttpRequest) -> bool:
    """Whether the client takes ``application/json`` without any negotiation worth DRF's
    machinery (no Accept, or a plain JSON / wildcard one)."""
    accept = request.META.get("HTTP_ACCEPT", "")
    return all(part.split(";", 1)[0].strip() in _JSON_ACCEPT for part in accept.split(","))


def precharge(request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude) -> RateLimitResult | None:
    """Charge the request and run ``prelude`` before DRF's machinery, for views that answer some
    requests themselves (e.g. cache hits, ``shelfwise.http.fastpath``). The outcome is kept with the
    request: if it then goes through DRF after all, ``ApiView`` uses it instead of charging
    again (and raises the Problem it kept, e.g. a 429, at the usual point). None if a Problem
    was kept."""
    try:
        result = rate_limit_check(request, principal, prelude)
    except Problem as exc:
        request.META[_PRECHARGED] = exc
        return None
    request.META[_PRECHARGED] = result
    return result


def charge(request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude | None = None) -> RateLimitResult:
    """Charge the request (or take the outcome of its ``precharge``)."""
    precharged = request.META.pop(_PRECHARGED, None)
    if precharged is None:
        return rate_limit_check(request, principal, prelude)
    if isinstance(precharged, Problem):
        raise precharged
    return cast(RateLimitResult, precharged)
