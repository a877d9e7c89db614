"""What a store serves: its active version, its usable versions, scenarios and running
experiments — read from its schema and reused for SHELFWISE_SERVING_CONFIG_SECONDS per process.

Every change to them (promotion, rollback, a new or purged version, scenarios, experiments)
writes a new *serving stamp* to Redis once committed. The configuration remembers the stamp it
was read under, and the recommendation cache's lookup compares the two in the same Redis call:
a process that still has the old routing re-reads it before answering from a cache entry, so
after a promotion no web process serves the old version's cached lists, not even for the few
seconds its copy would otherwise live (the time limit stays as the backstop without Redis).

Routing assigns a customer to a variant by a stable hash of (experiment, customer), so the same
customer sees the same variant for the whole experiment.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache, TLRUCache
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from catalog import selectors as catalog_selectors
from recommendations.models import ErasedCustomer, Experiment, ModelVersion, Scenario, erasure_hash
from recommendations.selectors import model_version_repeat_profile
from shelfwise.datastores.redis_client import redis_call, tenant_key

logger = logging.getLogger(__name__)

DEFAULT_SCENARIO = "default"
DEFAULT_SOURCE: dict[str, Any] = {"kind": "active"}
BUCKETS = 10_000
NO_STAMP = "-"  # the stamp of a store whose serving never changed (or whose Redis key is gone)
UNKNOWN_STAMP = "?"  # read while Redis was unavailable: never equal to a stored stamp
MAX_ERASED_IN_CONFIG = 10_000


@dataclass(frozen=True)
class VersionRef:
    id: int
    version: int
    algorithm: str
    artifact_path: str


@dataclass(frozen=True)
class Variant:
    key: str
    index: int
    share: float
    source: dict[str, Any]


@dataclass(frozen=True)
class Route:
    """Where a request goes: the scenario, the experiment (0: none) and variant, its source."""

    scenario: str
    experiment_id: int
    variant: str
    variant_index: int
    source: dict[str, Any]


@dataclass
class ServingConfig:
    tenant_id: int
    active: VersionRef | None
    versions: dict[int, VersionRef]  # usable (ready / active / retired with files) by number
    scenarios: dict[str, dict[str, Any]]  # key -> default source
    experiments: dict[str, tuple[int, list[Variant]]]  # scenario key -> (experiment id, variants)
    stamp: str = UNKNOWN_STAMP  # the serving stamp in Redis when this was read (see the module)
    # Erasure hashes of customers erased but not yet cleaned up (declined, even from the cache);
    # None when there are more than MAX_ERASED_IN_CONFIG (then each request asks the database).
    erased: frozenset[str] | None = frozenset()
    # Whether a request that does not say leaves out what the customer already had (the store's
    # `training.exclude_seen`; `auto` follows the repeat rate its latest training measured).
    exclude_seen: bool = True

    def declines(self, customer_id: str) -> bool:
        """Whether the customer was erased and must get only the non-personal answer."""
        if self.erased is None:
            return erasure_pending(customer_id)
        return bool(self.erased) and erasure_hash(customer_id) in self.erased

    def resolve(self, source: dict[str, Any]) -> VersionRef | None:
        """The model version a variant's source points at (None: popularity / trending)."""
        kind = source.get("kind", "active")
        if kind == "active":
            return self.active
        if kind == "version":
            return self.versions.get(int(source.get("version", 0)))
        if kind == "algorithm":
            candidates = [v for v in self.versions.values() if v.algorithm == source.get("algorithm")]
            return max(candidates, key=lambda v: v.version) if candidates else None
        return None

    def serving_bundles(self) -> dict[int, str]:
        """The bundle (artifact path) of each version served, by version id."""
        refs: list[VersionRef | None] = [self.active]
        for _experiment, variants in self.experiments.values():
            refs += [self.resolve(variant.source) for variant in variants]
        return {ref.id: ref.artifact_path for ref in refs if ref is not None}

    def route(self, scenario: str, customer_id: str | None) -> Route:
        experiment = self.experiments.get(scenario)
        if experiment is not None and customer_id is not None:
            experiment_id, variants = experiment
            bucket = assignment_bucket(experiment_id, customer_id)
            threshold = 0.0
            for variant in variants:
                threshold += variant.share * BUCKETS / 100.0
                if bucket < threshold:
                    return Route(scenario, experiment_id, variant.key, variant.index, variant.source)
            last = variants[-1]
            return Route(scenario, experiment_id, last.key, last.index, last.source)
        source = self.scenarios.get(scenario) or DEFAULT_SOURCE
        return Route(scenario, 0, "default", 0, source)


def erasure_pending(customer_id: str) -> bool:
    """Whether the customer was erased and the clean-up is not done (asks the database)."""
    return ErasedCustomer.objects.filter(customer_hash=erasure_hash(customer_id), cleaned_at__isnull=True).exists()


def recent_events_unless_erased(
    customer_id: str, *, since: datetime | None
) -> list[tuple[str, str, float | None, datetime]] | None:
    """The customer's latest events (``catalog.selectors.customer_recent_events``), or None if
    they were erased and the clean-up is not done (``erasure_pending``): one round trip."""
    events_sql, events_params = catalog_selectors.customer_recent_events_query(external_id=customer_id, since=since)
    sql = (
        "SELECT x.erased, r.external_id, r.type, r.value, r.timestamp FROM (SELECT EXISTS (SELECT 1 FROM "  # noqa: S608 - our tables
        f"{ErasedCustomer._meta.db_table} WHERE customer_hash = %s AND cleaned_at IS NULL) AS erased) x "
        f"LEFT JOIN LATERAL ({events_sql}) r ON NOT x.erased ORDER BY r.timestamp DESC, r.id DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [erasure_hash(customer_id), *events_params])
        rows = cursor.fetchall()
    if rows[0][0]:
        return None
    return [(item, kind, value, when) for _erased, item, kind, value, when in rows if item is not None]


def assignment_bucket(experiment_id: int, customer_id: str) -> int:
    """0..9999, stable for an (experiment, customer) pair and independent across experiments."""
    digest = hashlib.blake2b(f"{experiment_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def serving_stamp_key(tenant_id: int) -> str:
    return tenant_key(tenant_id, "serving")


# The stamp, read in a view's rate-limit call (shelfwise.http.ratelimit.RedisPrelude; KEYS[3]).
STAMP_PRELUDE_BODY = f"return redis.call('GET', KEYS[3]) or '{NO_STAMP}'"


def _current_stamp(tenant_id: int) -> str:
    unavailable = object()
    raw: Any = redis_call(lambda client: client.get(serving_stamp_key(tenant_id)), default=unavailable)
    if raw is unavailable:
        return UNKNOWN_STAMP
    return raw.decode() if raw else NO_STAMP


def _read(tenant_id: int) -> ServingConfig:
    # The stamp first: a change committed between the two reads then leaves an older stamp
    # with the newer rows (one needless re-read later), never the reverse.
    stamp = _current_stamp(tenant_id)
    usable = ModelVersion.objects.filter(
        status__in=[ModelVersion.Status.ACTIVE, ModelVersion.Status.READY, ModelVersion.Status.RETIRED],
        artifacts_purged_at__isnull=True,
        name="default",
    ).only("id", "version", "algorithm", "artifact_path", "status")
    versions, active = {}, None
    for row in usable:
        ref = VersionRef(row.pk, row.version, row.algorithm, row.artifact_path)
        versions[row.version] = ref
        if row.status == ModelVersion.Status.ACTIVE:
            active = ref
    scenarios = {row.key: row.default_source or DEFAULT_SOURCE for row in Scenario.objects.all()}
    experiments: dict[str, tuple[int, list[Variant]]] = {}
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING).select_related("scenario"):
        variants = [
            Variant(str(v["key"]), index, float(v["share"]), dict(v["source"]))
            for index, v in enumerate(experiment.variants)
        ]
        if variants:
            experiments[experiment.scenario.key] = (experiment.pk, variants)
    pending = list(
        ErasedCustomer.objects.filter(cleaned_at__isnull=True).values_list("customer_hash", flat=True)[
            : MAX_ERASED_IN_CONFIG + 1
        ]
    )
    erased = frozenset(pending) if len(pending) <= MAX_ERASED_IN_CONFIG else None
    return ServingConfig(tenant_id, active, versions, scenarios, experiments, stamp, erased, _exclude_seen(tenant_id))


def _exclude_seen(tenant_id: int) -> bool:
    from recommendations.training.settings import training_settings_for

    setting = training_settings_for(tenant_id).exclude_seen
    if setting != "auto":
        return bool(setting)
    measured = model_version_repeat_profile()
    return not (measured or {}).get("repeat_aware", False)


def _expires(_tenant_id: int, _config: ServingConfig, now: float) -> float:
    return now + settings.SHELFWISE_SERVING_CONFIG_SECONDS


# Per store, this process's routing for at most SHELFWISE_SERVING_CONFIG_SECONDS; and the last
# one read, whatever its age, for when PostgreSQL cannot be reached (cached answers go on).
_configs: TLRUCache[int, ServingConfig] = TLRUCache(maxsize=100_000, ttu=_expires, timer=time.monotonic)
_last_known: LRUCache[int, ServingConfig] = LRUCache(maxsize=100_000)
_lock = threading.Lock()


def serving_config(tenant_id: int, *, stamp: str | None = None) -> ServingConfig:
    """The store's serving configuration (from its schema; reused for a couple of seconds, or
    until ``stamp`` — the serving stamp as Redis has it now, when the caller read it — differs
    from the one it was read under)."""
    with _lock:
        cached = _configs.get(tenant_id)
    if cached is not None and (stamp is None or stamp == cached.stamp):
        return cached
    try:
        config = _read(tenant_id)
    except DatabaseError:
        with _lock:
            last = _last_known.get(tenant_id)
        if last is None:
            raise  # never read: what needs the database answers 503
        logger.warning("routing of store %s served as last read: the database is unavailable", tenant_id)
        return last
    with _lock:
        _configs[tenant_id] = config
        _last_known[tenant_id] = config
    from recommendations.serving.loader import model_cache

    model_cache().drop_tenant_versions(tenant_id, config.serving_bundles())
    return config


def serving_config_forget(tenant_id: int) -> None:
    """Re-read the configuration on the next request in this process."""
    with _lock:
        _configs.pop(tenant_id, None)  # (the last known copy stays, for a database outage)


def serving_changed(tenant_id: int) -> None:
    """What the store serves changed: this process re-reads its routing on its next request, and
    once the change is committed, every other one does before its next cached answer (a new
    serving stamp; this process re-reads once more, in case it read before the commit)."""
    serving_config_forget(tenant_id)

    def publish() -> None:
        serving_config_forget(tenant_id)
        stamp = uuid.uuid4().hex
        redis_call(lambda client: client.set(serving_stamp_key(tenant_id), stamp), default=None)

    transaction.on_commit(publish, robust=True)
