"""The recommendation cache in Redis, per tenant.

Key: ``sw:<tenant>:c:<customer hash>:rec:<format>:<scenario>:<variant>:<version>:<filter hash>:<seen>:<gen>``
— under the customer's prefix, so erasing a customer erases their cached lists too. ``gen`` is the
customer's generation, bumped by every event they send: a new event makes the next request a
miss, and a new active version changes the key. One Lua call reads the generation, the list,
counts the hit or miss and the impression; misses are computed once (single flight) while
concurrent requests for the same key wait briefly for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings

from catalog.online_features import customer_key
from recommendations.serving.config import serving_stamp_key
from shelfwise.datastores.redis_client import redis_call, tenant_key
from shelfwise.observability.tracing import span

SINGLE_FLIGHT_SECONDS = 2.0
WAIT_STEP = 0.01

# The lookup, as the body of a Lua function. Keys and arguments start at KEYS[FIRST] and
# ARGV[FIRST] so that it can run alone (FIRST = 1) or after the rate limit (FIRST = 3, see
# shelfwise.http.ratelimit.RedisPrelude). Keys: generation, cache prefix, daily stats, daily impressions,
# the store's serving stamp. Arguments: impression field ('' for none), '1' to count the hit or
# miss, the single-flight lock's lifetime in ms, the serving stamp the request was routed under
# ('*': any). A different stamp means the routing (hence the key) may be out of date: it returns
# at once, having read and counted nothing. On a miss it also claims the list's single-flight
# lock (the caller that gets it computes the list), saving a round trip per miss.
# Returns {generation, cached value or false, 1 if the lock was claimed here else 0, 1 if stale}.
_LOOKUP_BODY = """
if ARGV[FIRST + 3] ~= '*' and (redis.call('GET', KEYS[FIRST + 4]) or '-') ~= ARGV[FIRST + 3] then
  return {'', false, 0, 1}
end
local gen = redis.call('GET', KEYS[FIRST]) or '0'
local value = redis.call('GET', KEYS[FIRST + 1] .. ':' .. gen)
local claimed = 0
if not value and redis.call('SET', KEYS[FIRST + 1] .. ':' .. gen .. ':lock', '1', 'NX', 'PX', ARGV[FIRST + 2]) then
  claimed = 1
end
if ARGV[FIRST + 1] == '1' then
  local field = value and 'hit' or 'miss'
  if redis.call('HINCRBY', KEYS[FIRST + 2], field, 1) == 1 then
    redis.call('EXPIRE', KEYS[FIRST + 2], 40 * 86400)
  end
end
if ARGV[FIRST] ~= '' then
  if redis.call('HINCRBY', KEYS[FIRST + 3], ARGV[FIRST], 1) == 1 then
    redis.call('EXPIRE', KEYS[FIRST + 3], 40 * 86400)
  end
end
return {gen, value or false, claimed, 0}
"""
_LOOKUP_LUA = "local FIRST = 1\n" + _LOOKUP_BODY
PRELUDE_LOOKUP_BODY = "local FIRST = 3\n" + _LOOKUP_BODY

_scripts: dict[str, Any] = {}


def _script(client: Any, source: str) -> Any:
    script = _scripts.get(source)
    if script is None:
        script = client.register_script(source)
        _scripts[source] = script
    return script


def _day(now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)):%Y%m%d}"


def stats_key(tenant_id: int, day: str) -> str:
    return tenant_key(tenant_id, "stats", day)


def impressions_key(tenant_id: int, day: str) -> str:
    return tenant_key(tenant_id, "imp", day)


def impression_field(scenario: str, experiment_id: int, variant: str) -> str:
    return f"{scenario}|{experiment_id}|{variant}"


@dataclass
class Lookup:
    key: str | None  # the full cache key (None if Redis is unavailable)
    value: dict[str, Any] | None
    claimed: bool = False  # a miss whose single-flight lock the lookup claimed: compute it here
    stale: bool = False  # routed under an old serving stamp: nothing was read, route again


@dataclass(frozen=True)
class LookupPlan:
    prefix: str
    keys: tuple[str, ...]
    args: tuple[str, ...]

    def any_stamp(self) -> LookupPlan:
        """The same lookup, whatever the serving stamp."""
        return LookupPlan(self.prefix, self.keys, (*self.args[:-1], "*"))

    def result(self, reply: Any) -> Lookup:
        generation, raw, claimed, stale = reply
        if stale == 1:
            return Lookup(None, None, stale=True)
        key = f"{self.prefix}:{generation.decode() if isinstance(generation, bytes) else generation}"
        return Lookup(key, orjson.loads(raw) if raw else None, claimed == 1)


def lookup_plan(
    *,
    tenant_id: int,
    customer_id: str,
    parts: tuple[object, ...],
    impression: str,
    serving_stamp: str,
    count_stats: bool = True,
) -> LookupPlan:
    prefix = customer_key(tenant_id, customer_id, "rec", *parts)
    day = _day()
    return LookupPlan(
        prefix,
        (
            customer_key(tenant_id, customer_id, "gen"),
            prefix,
            stats_key(tenant_id, day),
            impressions_key(tenant_id, day),
            serving_stamp_key(tenant_id),
        ),
        (impression, "1" if count_stats else "0", str(int(SINGLE_FLIGHT_SECONDS * 1000)), serving_stamp),
    )


def lookup(plan: LookupPlan) -> Lookup:
    """The cached list (if any) and the key to store a computed one under."""

    def run(client: Any) -> Lookup:
        return plan.result(_script(client, _LOOKUP_LUA)(keys=list(plan.keys), args=list(plan.args), client=client))

    with span("recommendations.cache_lookup"):
        return redis_call(run, default=Lookup(None, None))


def store(key: str | None, value: dict[str, Any]) -> None:
    if key is None:
        return
    payload = orjson.dumps(value)
    redis_call(
        lambda client: client.set(key, payload, ex=settings.SHELFWISE_RECOMMENDATION_CACHE_SECONDS), default=None
    )


def _store_and_unlock(key: str, value: dict[str, Any], lock: str) -> None:
    """Store the computed value and release the single-flight lock in one round trip."""
    payload = orjson.dumps(value)

    def run(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.set(key, payload, ex=settings.SHELFWISE_RECOMMENDATION_CACHE_SECONDS)
        pipe.delete(lock)
        pipe.execute()

    redis_call(run, default=None)


def _peek(key: str, lock: str) -> Callable[[Any], Any]:
    """The value and whether the lock is still held, read at one instant (MULTI/EXEC): read one
    after the other, the holder could store and unlock in between — the value looked missing,
    the lock gone, and the waiter computed the list again."""

    def run(client: Any) -> Any:
        pipe = client.pipeline(transaction=True)
        pipe.get(key)
        pipe.exists(lock)
        return pipe.execute()

    return run


def single_flight(
    key: str | None, compute: Callable[[], dict[str, Any]], *, claimed: bool
) -> tuple[dict[str, Any], bool]:
    """Compute ``key``'s value once across processes: the caller whose lookup claimed the lock
    (``claimed``, see the lookup script) computes and stores it, the others wait (briefly) for
    it. Returns (value, computed_here)."""
    if key is None:  # no Redis: compute here
        return compute(), True
    lock = f"{key}:lock"
    if claimed:
        try:
            value = compute()
        except BaseException:
            release(key)
            raise
        _store_and_unlock(key, value, lock)
        return value, True
    deadline = time.monotonic() + SINGLE_FLIGHT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        raw, locked = redis_call(_peek(key, lock), default=(None, 0))
        if raw:
            return orjson.loads(raw), False
        if not locked:
            break
    value = compute()  # the first computation failed or took too long: do it here
    store(key, value)
    return value, True


def release(key: str) -> None:
    """Give up the single-flight lock a lookup claimed for ``key`` (nothing will be stored)."""
    redis_call(lambda client: client.delete(f"{key}:lock"), default=None)


def count_impression(*, tenant_id: int, field: str) -> None:
    """An impression of a list not served through the cache (popular, trending, session, similar)."""
    key = impressions_key(tenant_id, _day())
    redis_call(lambda client: client.hincrby(key, field, 1), default=None)


def bump_generations(tenant_id: int, customer_ids: list[str]) -> None:
    """New events: every cached list of these customers is stale from now on."""
    if not customer_ids:
        return

    def bump(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.incr(customer_key(tenant_id, customer_id, "gen"))
            pipe.expire(customer_key(tenant_id, customer_id, "gen"), 90 * 86400)
        pipe.execute()

    redis_call(bump, default=None)


def daily_stats(tenant_id: int, day: str) -> dict[str, int]:
    raw: Any = redis_call(lambda client: client.hgetall(stats_key(tenant_id, day)), default=None)
    return {key.decode(): int(value) for key, value in (raw or {}).items()}


def refresh_claim(tenant_id: int, customer_ids: list[str], window_ms: int) -> list[str]:
    """The customers not already queued for a refresh in the last ``window_ms`` (debounce)."""

    def claim(client: Any) -> list[str]:
        pipe = client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.set(customer_key(tenant_id, customer_id, "refresh"), b"1", nx=True, px=window_ms)
        return [customer_id for customer_id, ok in zip(customer_ids, pipe.execute(), strict=True) if ok]

    return redis_call(claim, default=[])
