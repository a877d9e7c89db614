"""Online features in Redis, updated as events arrive and read by serving.

Per tenant (keys ``sw:<tenant id>:…``):

- ``c:<customer hash>:recent`` — sorted set item → time of the customer's latest event with it
  (the newest ``RECENT_ITEMS`` kept): what the customer just looked at, for exclusion and
  session-style recommendations. Customer ids are hashed in key names so Redis never holds a
  shopper's raw id (which may be an e-mail address).
- ``pop`` and ``trend`` — item popularity with exponential time decay (half-lives of 30 days
  and 1 day), weighted by event type. Counts use *forward decay*: an event at time t adds
  ``w * 2^((t - epoch) / half_life)``, so old and new events combine exactly without rewriting
  scores as time passes; the epoch is per tenant and moves forward (scores rescaled) before
  the exponent could overflow.

- ``ia`` — per item ``"<events> <first time> <last time>"``, and under each customer's prefix
  ``agg`` — ``_``: ``"<events> <first time> <last time>"``, ``i:<item>``: ``"<events> <distinct days>
  <first day> <last day>"`` (days are unix days): the aggregates the ranker's features are made of
  (``recommendations/ranking/features.py``, docs/adr/0008), the same ones a training reduces from
  PostgreSQL at a cut. Events with weight 0 are not counted (training does not read them).
  Distinct days are counted as events arrive in time order (a late event between the first and
  the last day is not a new day); `features_rebuild` replays in time order.

Postgres stays the system of record: these are rebuilt from events by `features_rebuild`.
With Redis unavailable, updates are skipped (and serving falls back to Postgres).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from shelfwise.datastores.redis_client import redis_call, redis_client, tenant_key

RECENT_ITEMS = 100
RECENT_TTL_SECONDS = 90 * 24 * 3600
HALF_LIVES = {"pop": 30 * 86400.0, "trend": 1 * 86400.0}
# Rescale once the largest exponent would pass this many half-lives (2^600 is far from overflow).
MAX_EXPONENT = 600.0

# Atomically add decayed increments, rescaling them if another writer moved the epoch.
# KEYS[1] = zset, KEYS[2] = epoch key; ARGV[1] = epoch the increments were computed against,
# ARGV[2] = half-life (s), then member/increment pairs.
_DECAYED_ADD_LUA = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[1])
  epoch = ARGV[1]
end
local scale = 2 ^ ((tonumber(ARGV[1]) - tonumber(epoch)) / tonumber(ARGV[2]))
for i = 3, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[1], tonumber(ARGV[i + 1]) * scale, ARGV[i])
end
return epoch
"""

# Move the epoch forward to ARGV[1] and rescale every score accordingly (tiny ones drop out).
_RENORMALISE_LUA = """
local epoch = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local new_epoch = tonumber(ARGV[1])
if new_epoch <= epoch then return epoch end
local factor = 2 ^ ((epoch - new_epoch) / tonumber(ARGV[2]))
redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', factor)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', 1e-200)
redis.call('SET', KEYS[2], ARGV[1])
return new_epoch
"""


# Update many customers' recent-item sets in one round trip. KEYS = the customers' recent
# keys; ARGV[1] = how many to keep, ARGV[2] = TTL, then for each key: the number of pairs n,
# a maintenance flag, and n (score, member) pairs. Trimming and refreshing the TTL cost as much
# as the insert itself, so they run when the set may be new (every member was new) or when the
# caller's flag says so (about one batch in RECENT_MAINTENANCE_EVERY); readers only look at the
# newest RECENT_ITEMS, so a set briefly holding a few more is harmless.
_RECENT_LUA = """
local keep = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local i = 3
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  local maintain = ARGV[i + 1] == '1'
  i = i + 2
  local added = redis.call('ZADD', KEYS[k], 'GT', unpack(ARGV, i, i + 2 * n - 1))
  i = i + 2 * n
  if maintain or added == n then
    redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -(keep + 1))
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end
return #KEYS
"""
RECENT_MAINTENANCE_EVERY = 8

# Merge a batch's aggregates (see the module docstring). KEYS[1] = the item hash, KEYS[2..] = the
# customers' ``agg`` hashes. ARGV: the number of items, then per item: id, events, first, last;
# then per customer (KEYS order): events, first, last, the number of pairs, then per pair: item,
# events, its distinct days in the batch (ascending, comma-separated).
_AGGREGATES_LUA = """
local function merged(old, count, first, last)
  if not old then return count .. ' ' .. first .. ' ' .. last end
  local c, f, l = string.match(old, '(%S+) (%S+) (%S+)')
  if tonumber(first) < tonumber(f) then f = first end
  if tonumber(last) > tonumber(l) then l = last end
  return (tonumber(c) + tonumber(count)) .. ' ' .. f .. ' ' .. l
end
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  redis.call('HSET', KEYS[1], ARGV[i], merged(old, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]))
  i = i + 4
end
for k = 2, #KEYS do
  local key = KEYS[k]
  redis.call('HSET', key, '_', merged(redis.call('HGET', key, '_'), ARGV[i], ARGV[i + 1], ARGV[i + 2]))
  local pairs_ = tonumber(ARGV[i + 3])
  i = i + 4
  for _ = 1, pairs_ do
    local field = 'i:' .. ARGV[i]
    local stored = redis.call('HGET', key, field)
    local c, d, fd, ld = 0, 0, nil, nil
    if stored then
      local a, b, x, y = string.match(stored, '(%S+) (%S+) (%S+) (%S+)')
      c, d, fd, ld = tonumber(a), tonumber(b), tonumber(x), tonumber(y)
    end
    for day in string.gmatch(ARGV[i + 2], '[^,]+') do
      day = tonumber(day)
      if not fd then
        d, fd, ld = 1, day, day
      elseif day > ld then
        d, ld = d + 1, day
      elseif day < fd then
        d, fd = d + 1, day
      end
    end
    redis.call('HSET', key, field, (c + tonumber(ARGV[i + 1])) .. ' ' .. d .. ' ' .. fd .. ' ' .. ld)
    i = i + 3
  end
end
return #KEYS
"""
DAY_SECONDS = 86400.0
# Keep each script call's argument list moderate (Lua's stack and Redis' latency).
_MAX_SCRIPT_ARGS = 20_000


@dataclass(frozen=True)
class EventFeature:
    """The part of a stored event that online features need."""

    customer_id: str
    item_id: str
    timestamp: float  # unix seconds
    weight: float
    event_id: str = ""


def customer_key_hash(customer_id: str) -> str:
    """What stands for a customer in Redis key names (Redis never holds a shopper's raw id)."""
    return hashlib.blake2b(customer_id.encode(), digest_size=10).hexdigest()


def customer_key(tenant_id: int, customer_id: str, *parts: object) -> str:
    """A key under the customer's prefix (everything there is erased with them)."""
    return tenant_key(tenant_id, "c", customer_key_hash(customer_id), *parts)


def popularity_key(tenant_id: int, kind: str) -> str:
    return tenant_key(tenant_id, kind)


def item_stats_key(tenant_id: int) -> str:
    return tenant_key(tenant_id, "ia")


def _epoch_key(tenant_id: int, kind: str) -> str:
    return tenant_key(tenant_id, kind, "epoch")


# A batch's increments are applied with a marker, atomically (MULTI/EXEC): a batch that must be
# applied again (its first attempt's answer was lost in a Redis outage) is applied only if its
# marker is absent, so popularity never counts it twice. Kept this long (see README, Operations).
APPLIED_MARKER_SECONDS = 3600


def applied_marker_key(tenant_id: int, batch: str) -> str:
    return tenant_key(tenant_id, "ob", batch)


# A batch is applied in slices of at most this many events, each one MULTI/EXEC with its own
# marker: a slice's scripts take tens of milliseconds, so every call stays well inside
# REDIS_SOCKET_TIMEOUT (0.25 s) — a 20,000-event transaction did not, and timed out (tripping
# the circuit breaker) on every large batch and every rebuild of a store with that many events.
RECORD_SLICE = 500


def _slices(events: Sequence[EventFeature], batch: str) -> list[tuple[str, Sequence[EventFeature]]]:
    """(marker name, events) per slice of the batch."""
    return [
        (f"{batch}:{number}", events[start : start + RECORD_SLICE])
        for number, start in enumerate(range(0, len(events), RECORD_SLICE))
    ]


def features_record_events(tenant_id: int, events: Sequence[EventFeature], *, batch: str) -> bool:
    """Fold a batch of stored events into the online features; False if Redis was unavailable
    (then each slice of the batch was applied wholly or not at all: see ``features_apply_once``)."""
    if not events:
        return True

    def record(client: redis.Redis) -> bool:
        for marker, part in _slices(events, batch):
            _record(client, tenant_id, part, marker)
        return True

    return redis_call(record, default=False)


def features_apply_once(tenant_id: int, events: Sequence[EventFeature], *, batch: str) -> bool:
    """Apply a batch again, each slice unless its marker says it was applied; True if anything
    was applied here. Raises if Redis is unreachable (the caller keeps the batch for later)."""
    client = redis_client()
    if client.exists(applied_marker_key(tenant_id, batch)):  # applied whole, before slices
        return False
    applied = not events
    for marker, part in _slices(events, batch):
        if not client.exists(applied_marker_key(tenant_id, marker)):
            _record(client, tenant_id, part, marker)
            applied = True
    return applied


def _record(client: redis.Redis, tenant_id: int, events: Sequence[EventFeature], batch: str) -> bool:
    epochs = _epochs(client, tenant_id, max(event.timestamp for event in events))
    pipe = client.pipeline(transaction=True)
    pipe.set(applied_marker_key(tenant_id, batch), b"1", ex=APPLIED_MARKER_SECONDS)
    for kind, epoch in epochs.items():
        half_life = HALF_LIVES[kind]
        increments: dict[str, float] = defaultdict(float)
        for event in events:
            if event.weight:
                increments[event.item_id] += event.weight * 2 ** ((event.timestamp - epoch) / half_life)
        args: list[bytes | str | float] = [epoch, half_life]
        for item_id, increment in increments.items():
            if math.isfinite(increment) and increment:
                args += [item_id, repr(increment)]
        if len(args) > 2:
            _script(client, _DECAYED_ADD_LUA)(
                keys=[popularity_key(tenant_id, kind), _epoch_key(tenant_id, kind)], args=args, client=pipe
            )
    _queue_recent(pipe, client, tenant_id, events)
    _queue_aggregates(pipe, client, tenant_id, events)
    pipe.execute()
    return True


def _epochs(client: redis.Redis, tenant_id: int, newest: float) -> dict[str, float]:
    """Each popularity list's epoch, moved forward (scores rescaled) if ``newest`` is too far past it."""
    kinds = list(HALF_LIVES)
    raw_epochs = client.mget([_epoch_key(tenant_id, kind) for kind in kinds])
    epochs: dict[str, float] = {}
    for kind, raw in zip(kinds, raw_epochs, strict=True):
        half_life = HALF_LIVES[kind]
        epoch = float(raw) if raw is not None else newest - 8 * half_life
        if (newest - epoch) / half_life > MAX_EXPONENT:
            epoch = newest - 8 * half_life
            client.eval(
                _RENORMALISE_LUA, 2, popularity_key(tenant_id, kind), _epoch_key(tenant_id, kind), epoch, half_life
            )
        epochs[kind] = epoch
    return epochs


def _queue_recent(pipe: Any, client: redis.Redis, tenant_id: int, events: Sequence[EventFeature]) -> None:
    """Add the customers' latest items to their recent sets (one script call per ~20k arguments)."""
    recent: dict[str, dict[str, float]] = defaultdict(dict)
    for event in events:
        items = recent[event.customer_id]
        if event.timestamp > items.get(event.item_id, -math.inf):
            items[event.item_id] = event.timestamp
    script = _script(client, _RECENT_LUA)
    keys: list[str] = []
    args: list[bytes | str | int] = [RECENT_ITEMS, RECENT_TTL_SECONDS]
    for customer_id, items in recent.items():
        keys.append(customer_key(tenant_id, customer_id, "recent"))
        args.append(len(items))
        args.append(1 if random.random() * RECENT_MAINTENANCE_EVERY < 1 else 0)  # noqa: S311 - not security
        for item_id, timestamp in items.items():
            args += [b"%.3f" % timestamp, item_id]
        if len(args) + len(keys) > _MAX_SCRIPT_ARGS:
            script(keys=keys, args=args, client=pipe)
            keys, args = [], [RECENT_ITEMS, RECENT_TTL_SECONDS]
    if keys:
        script(keys=keys, args=args, client=pipe)


def _queue_aggregates(pipe: Any, client: redis.Redis, tenant_id: int, events: Sequence[EventFeature]) -> None:
    """Fold the batch into the item and customer aggregates (one script call per ~20k arguments)."""
    items: dict[str, list[float]] = {}
    customers: dict[str, list[float]] = {}
    pairs: dict[str, dict[str, tuple[int, set[int]]]] = defaultdict(dict)
    for event in events:
        if not event.weight:
            continue
        for table, key in ((items, event.item_id), (customers, event.customer_id)):
            stats = table.get(key)
            if stats is None:
                table[key] = [1, event.timestamp, event.timestamp]
            else:
                stats[0] += 1
                stats[1], stats[2] = min(stats[1], event.timestamp), max(stats[2], event.timestamp)
        count, days = pairs[event.customer_id].get(event.item_id, (0, set()))
        days.add(math.floor(event.timestamp / DAY_SECONDS))
        pairs[event.customer_id][event.item_id] = (count + 1, days)
    if not items:
        return
    script = _script(client, _AGGREGATES_LUA)
    item_args: list[bytes | str | int] = []
    for item_id, (events_, first, last) in items.items():
        item_args += [item_id, int(events_), b"%.3f" % first, b"%.3f" % last]
    keys: list[str] = [item_stats_key(tenant_id)]
    args: list[bytes | str | int] = [len(items), *item_args]
    for customer_id, (events_, first, last) in customers.items():
        keys.append(customer_key(tenant_id, customer_id, "agg"))
        mine = pairs[customer_id]
        args += [int(events_), b"%.3f" % first, b"%.3f" % last, len(mine)]
        for item_id, (had, days) in mine.items():
            args += [item_id, had, ",".join(str(day) for day in sorted(days))]
        if len(args) + len(keys) > _MAX_SCRIPT_ARGS:
            script(keys=keys, args=args, client=pipe)
            keys, args = [item_stats_key(tenant_id)], [0]
    if len(keys) > 1 or args[0]:
        script(keys=keys, args=args, client=pipe)


_scripts: dict[str, Any] = {}


def _script(client: redis.Redis, source: str) -> Any:
    """A registered script: called by hash (EVALSHA), reloaded by redis-py if Redis forgot it."""
    script = _scripts.get(source)
    if script is None:
        script = client.register_script(source)
        _scripts[source] = script
    return script


def recent_items(tenant_id: int, customer_id: str, limit: int = RECENT_ITEMS) -> list[str] | None:
    """The customer's most recent items, newest first; None if Redis is unavailable."""

    def read(client: redis.Redis) -> list[str]:
        members: list[bytes] = client.zrevrange(customer_key(tenant_id, customer_id, "recent"), 0, limit - 1)  # type: ignore[assignment]
        return [member.decode() for member in members]

    return redis_call(read, default=None)


def recent_items_with_times(
    tenant_id: int, customer_id: str, limit: int = RECENT_ITEMS
) -> list[tuple[str, float]] | None:
    """The customer's most recent items with the time of their last event, newest first; None if
    Redis is unavailable."""

    def read(client: redis.Redis) -> list[tuple[str, float]]:
        pairs: list[tuple[bytes, float]] = client.zrevrange(  # type: ignore[assignment]
            customer_key(tenant_id, customer_id, "recent"), 0, limit - 1, withscores=True
        )
        return [(member.decode(), float(score)) for member, score in pairs]

    return redis_call(read, default=None)


def popular_items(tenant_id: int, kind: str, limit: int) -> list[tuple[str, float]] | None:
    """Top items by decayed popularity (``pop`` or ``trend``); None if Redis is unavailable."""

    def read(client: redis.Redis) -> list[tuple[str, float]]:
        pairs: list[tuple[bytes, float]] = client.zrevrange(  # type: ignore[assignment]
            popularity_key(tenant_id, kind), 0, limit - 1, withscores=True
        )
        return [(member.decode(), float(score)) for member, score in pairs]

    return redis_call(read, default=None)


@dataclass(frozen=True)
class RankingState:
    """What the second stage reads about a customer before it has candidates (one round trip)."""

    events: float  # the customer's counted events (0: none known)
    first: float  # unix seconds; NaN: never
    last: float
    pairs: dict[str, tuple[float, float, float, float]]  # item → (events, distinct days, first day, last day)
    recent: list[str]  # newest first
    popular: list[tuple[str, float]]  # best first (decayed sums, forward-decayed: see ``decay_factor``)
    trending: list[tuple[str, float]]
    epochs: dict[str, float]  # the popularity lists' epochs ("pop", "trend"; NaN: none yet)

    def decay_factor(self, kind: str, at: float) -> float:
        """What turns the ``kind`` list's sums (``pop`` or ``trend``: ``popular``, ``trending``, or a
        longer read of the same list) into decayed sums at ``at`` (NaN: no list yet):
        Σ weight · 2^((time − at) / half-life), what a training computes at a cut. Redis keeps
        them forward-decayed against the list's epoch: the same order, another scale."""
        return float(2.0 ** ((self.epochs.get(kind, math.nan) - at) / HALF_LIVES[kind]))


def ranking_state(tenant_id: int, customer_id: str, *, recent: int, popular: int, trending: int) -> RankingState | None:
    """The customer's aggregates and recent items and the popular and trending heads, in one
    round trip; None if Redis is unavailable."""

    def read(client: redis.Redis) -> RankingState:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(customer_key(tenant_id, customer_id, "agg"))
        pipe.zrevrange(customer_key(tenant_id, customer_id, "recent"), 0, recent - 1)
        pipe.zrevrange(popularity_key(tenant_id, "pop"), 0, popular - 1, withscores=True)
        pipe.zrevrange(popularity_key(tenant_id, "trend"), 0, trending - 1, withscores=True)
        pipe.mget([_epoch_key(tenant_id, "pop"), _epoch_key(tenant_id, "trend")])
        aggregates, recent_items, top_popular, top_trending, epochs = pipe.execute()
        totals = aggregates.pop(b"_", None)
        events, first, last = (float(v) for v in totals.split()) if totals else (0.0, math.nan, math.nan)
        pairs = {}
        for field, value in aggregates.items():
            if field.startswith(b"i:"):
                had, days, first_day, last_day = (float(v) for v in value.split())
                pairs[field[2:].decode()] = (had, days, first_day, last_day)
        return RankingState(
            events=events,
            first=first,
            last=last,
            pairs=pairs,
            recent=[member.decode() for member in recent_items],
            popular=[(member.decode(), float(score)) for member, score in top_popular],
            trending=[(member.decode(), float(score)) for member, score in top_trending],
            epochs={
                kind: math.nan if raw is None else float(raw)
                for kind, raw in zip(("pop", "trend"), epochs, strict=True)
            },
        )

    return redis_call(read, default=None)


@dataclass(frozen=True)
class ItemStats:
    """Per item (in the order asked): events, first and last time (NaN: never), decayed sums."""

    events: np.ndarray  # float64
    first: np.ndarray
    last: np.ndarray
    popular: np.ndarray
    trending: np.ndarray


def item_stats(tenant_id: int, item_ids: Sequence[str]) -> ItemStats | None:
    """The items' aggregates in one round trip; None if Redis is unavailable."""

    def read(client: redis.Redis) -> ItemStats:
        if not item_ids:
            return ItemStats(*(np.zeros(0) for _ in range(5)))
        pipe = client.pipeline(transaction=False)
        pipe.hmget(item_stats_key(tenant_id), list(item_ids))
        pipe.zmscore(popularity_key(tenant_id, "pop"), list(item_ids))
        pipe.zmscore(popularity_key(tenant_id, "trend"), list(item_ids))
        stats, popular, trending = pipe.execute()
        # "events first last" per item (none: never), parsed in one go
        parsed = np.array(b" ".join([raw or b"0 nan nan" for raw in stats]).split(), dtype=np.float64).reshape(-1, 3)
        return ItemStats(
            events=parsed[:, 0],
            first=parsed[:, 1],
            last=parsed[:, 2],
            popular=np.array([0.0 if v is None else v for v in popular], dtype=np.float64),
            trending=np.array([0.0 if v is None else v for v in trending], dtype=np.float64),
        )

    return redis_call(read, default=None)


def features_forget_customer(tenant_id: int, key_hash: str) -> int:
    """Delete every key under a customer's prefix (``customer_key_hash`` of their id). Raises
    if Redis is unreachable (erasure must not silently leave data behind: the caller keeps it
    for later)."""
    client = redis_client()
    keys = list(client.scan_iter(match=tenant_key(tenant_id, "c", key_hash, "*"), count=1000))
    return int(client.unlink(*keys)) if keys else 0


def features_forget_items(tenant_id: int, item_ids: Iterable[str]) -> None:
    """Drop items from the popularity lists (deleted items)."""
    members = list(item_ids)
    if not members:
        return
    redis_call(
        lambda client: [
            *(client.zrem(popularity_key(tenant_id, kind), *members) for kind in HALF_LIVES),
            client.hdel(item_stats_key(tenant_id), *members),
        ],
        default=None,
    )


def features_reset(tenant_id: int) -> None:
    """Drop the popularity lists and the aggregates (before a rebuild replays every event)."""
    client = redis_client()
    for kind in HALF_LIVES:
        client.delete(popularity_key(tenant_id, kind), _epoch_key(tenant_id, kind))
    client.delete(item_stats_key(tenant_id))
    batch: list[bytes] = []
    for key in client.scan_iter(match=tenant_key(tenant_id, "c", "*", "agg"), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)
