"""Scenarios and experiments: create, change, start/stop, and results from attributed events."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from catalog.models import Event
from recommendations.models import Experiment, ImpressionCount, ModelVersion, Scenario
from recommendations.serving.cache import impressions_key
from recommendations.serving.config import serving_changed
from recommendations.training.algorithms import ALGORITHMS
from shelfwise.datastores.redis_client import redis_call
from tenants.current import tenant_current
from tenants.services import audit_record

SOURCE_KINDS = {"active", "version", "algorithm", "popularity", "trending"}


class ExperimentError(ValueError):
    """An experiment or scenario change that is not allowed (the message says why)."""


MAX_VERSION_NUMBER = 2**31 - 1  # the registry's column


def validate_source(source: Any) -> dict[str, Any]:
    """A variant's or scenario's source, checked against what the store has: a `version` must
    be a version that can serve (trained, files kept), an `algorithm` one the platform trains."""
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS:
        raise ExperimentError(f"a source needs a kind among {', '.join(sorted(SOURCE_KINDS))}")
    kind = source["kind"]
    allowed = {"kind", "version", "algorithm"}
    if set(source) - allowed:
        raise ExperimentError(f"unknown source fields: {', '.join(sorted(set(source) - allowed))}")
    if kind == "version":
        number = source.get("version")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_VERSION_NUMBER:
            raise ExperimentError("a version source needs a positive integer `version`")
        usable = ModelVersion.objects.filter(
            name="default",
            version=number,
            status__in=[ModelVersion.Status.READY, ModelVersion.Status.ACTIVE, ModelVersion.Status.RETIRED],
            artifacts_purged_at__isnull=True,
        ).exists()
        if not usable:
            raise ExperimentError(f"model version {number} does not exist or cannot serve (see GET /models)")
    if kind == "algorithm" and source.get("algorithm") not in ALGORITHMS:
        raise ExperimentError(f"an algorithm source needs `algorithm`, one of: {', '.join(ALGORITHMS)}")
    return dict(source)


def validate_variants(variants: Any) -> list[dict[str, Any]]:
    if not isinstance(variants, list) or not 2 <= len(variants) <= 10:
        raise ExperimentError("an experiment needs 2 to 10 variants")
    keys, total, out = set(), 0.0, []
    for variant in variants:
        if not isinstance(variant, dict) or set(variant) - {"key", "share", "source"}:
            raise ExperimentError("a variant is {key, share, source}")
        key = variant.get("key")
        share = variant.get("share")
        if not isinstance(key, str) or not 1 <= len(key) <= 40 or key in keys or "|" in key:
            raise ExperimentError("variant keys are unique strings of 1 to 40 characters (no |)")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 100:
            raise ExperimentError("a variant's share is a percentage above 0")
        keys.add(key)
        total += float(share)
        out.append({"key": key, "share": float(share), "source": validate_source(variant.get("source"))})
    if abs(total - 100.0) > 1e-6:
        raise ExperimentError(f"variant shares add up to {total:g}, not 100")
    return out


def scenario_save(*, key: str, name: str, default_source: dict[str, Any], actor: str) -> tuple[Scenario, bool]:
    source = validate_source(default_source)
    scenario, created = Scenario.objects.update_or_create(key=key, defaults={"name": name, "default_source": source})
    audit_record(
        action="scenario.save",
        actor=actor,
        tenant=tenant_current(),
        target=f"scenario:{key}",
        metadata={"source": source},
    )
    serving_changed(tenant_current().pk)
    return scenario, created


def scenario_delete(*, scenario: Scenario, actor: str) -> None:
    if scenario.experiments.filter(status=Experiment.Status.RUNNING).exists():
        raise ExperimentError("stop the scenario's running experiment first")
    key = scenario.key
    scenario.delete()
    audit_record(action="scenario.delete", actor=actor, tenant=tenant_current(), target=f"scenario:{key}")
    serving_changed(tenant_current().pk)


def experiment_create(*, name: str, scenario: Scenario, variants: Any, actor: str) -> Experiment:
    experiment = Experiment.objects.create(name=name, scenario=scenario, variants=validate_variants(variants))
    audit_record(action="experiment.create", actor=actor, tenant=tenant_current(), target=f"experiment:{experiment.pk}")
    return experiment


def experiment_update(*, experiment: Experiment, name: str | None, variants: Any | None, actor: str) -> Experiment:
    if experiment.status != Experiment.Status.DRAFT and variants is not None:
        raise ExperimentError("variants can only change while the experiment is a draft (stop it and start a new one)")
    if name is not None:
        experiment.name = name
    if variants is not None:
        experiment.variants = validate_variants(variants)
    experiment.save()
    audit_record(action="experiment.update", actor=actor, tenant=tenant_current(), target=f"experiment:{experiment.pk}")
    return experiment


def experiment_start(*, experiment: Experiment, actor: str) -> Experiment:
    if experiment.status != Experiment.Status.DRAFT:
        raise ExperimentError(f"only a draft can start (this one is {experiment.status})")
    validate_variants(experiment.variants)  # its versions may have lost their files since the draft
    experiment.status = Experiment.Status.RUNNING
    experiment.started_at = timezone.now()
    try:
        with transaction.atomic():
            experiment.save(update_fields=["status", "started_at"])
    except IntegrityError as exc:
        raise ExperimentError("the scenario already has a running experiment; stop it first") from exc
    audit_record(action="experiment.start", actor=actor, tenant=tenant_current(), target=f"experiment:{experiment.pk}")
    serving_changed(tenant_current().pk)
    return experiment


def experiment_stop(*, experiment: Experiment, actor: str) -> Experiment:
    if experiment.status != Experiment.Status.RUNNING:
        raise ExperimentError(f"only a running experiment can stop (this one is {experiment.status})")
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    audit_record(action="experiment.stop", actor=actor, tenant=tenant_current(), target=f"experiment:{experiment.pk}")
    serving_changed(tenant_current().pk)
    return experiment


# --------------------------------------------------------------------------- impressions


_FLUSH_LUA = """
local values = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return values
"""


def impressions_flush(*, day: date) -> int:
    """Move a day's impression counters from Redis into PostgreSQL (atomic read-and-reset)."""
    tenant = tenant_current()
    key = impressions_key(tenant.pk, f"{day:%Y%m%d}")
    flat = redis_call(lambda client: client.eval(_FLUSH_LUA, 1, key), default=None) or []
    pairs = dict(zip(flat[::2], flat[1::2], strict=True))
    moved = 0
    experiments = set(Experiment.objects.values_list("pk", flat=True))
    for raw_field, raw_count in pairs.items():
        scenario, experiment_id, variant = raw_field.decode().split("|", 2)
        count = int(raw_count)
        experiment = int(experiment_id) if int(experiment_id) in experiments else None
        row, _created = ImpressionCount.objects.get_or_create(
            day=day, scenario=scenario, experiment_id=experiment, variant=variant
        )
        ImpressionCount.objects.filter(pk=row.pk).update(count=row.count + count)
        moved += count
    return moved


def _hgetall(key: str) -> Any:
    return lambda client: client.hgetall(key)


def _live_impressions(experiment_id: int, days: list[date]) -> dict[str, int]:
    tenant = tenant_current()
    out: dict[str, int] = defaultdict(int)
    for day in days:
        key = impressions_key(tenant.pk, f"{day:%Y%m%d}")
        raw: Any = redis_call(_hgetall(key), default=None)
        for raw_field, raw_count in (raw or {}).items():
            _scenario, experiment, variant = raw_field.decode().split("|", 2)
            if int(experiment) == experiment_id:
                out[variant] += int(raw_count)
    return out


# --------------------------------------------------------------------------- results


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 0) without trials."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def experiment_results(*, experiment: Experiment) -> dict[str, Any]:
    """Per variant: impressions, clicks (views), add-to-carts, purchases, revenue, CTR and
    conversion with 95 % Wilson intervals, from events carrying the variant's recommendation ids."""
    started = experiment.started_at or experiment.created_at
    today = timezone.now().date()
    days = [date.fromordinal(d) for d in range(started.date().toordinal(), today.toordinal() + 1)][-60:]
    impressions: dict[str, int] = defaultdict(int)
    for row in ImpressionCount.objects.filter(experiment=experiment):
        impressions[row.variant] += row.count
    for variant, count in _live_impressions(experiment.pk, days).items():
        impressions[variant] += count

    prefix = f"rec_{experiment.pk}_"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT split_part(recommendation_id, '_', 3) AS variant, type,
                   count(DISTINCT recommendation_id) AS lists, count(*) AS events,
                   COALESCE(sum(COALESCE(value, 1) * COALESCE((properties ->> 'unit_price')::float8, 0)), 0)
            FROM {Event._meta.db_table}
            WHERE recommendation_id LIKE %s
            GROUP BY 1, 2
            """,  # noqa: S608 - our table
            [prefix.replace("_", r"\_") + "%"],
        )
        rows = cursor.fetchall()
    by_index: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    for variant_index, event_type, lists, events, revenue in rows:
        if not str(variant_index).isdigit():
            continue
        stats = by_index[int(variant_index)]
        stats[f"{event_type}_lists"] += int(lists)
        stats[f"{event_type}_events"] += int(events)
        if event_type == "purchase":
            stats["revenue"] += float(revenue)
    variants = []
    for index, variant in enumerate(experiment.variants):
        stats = by_index.get(index, {})
        shown = impressions.get(variant["key"], 0)
        clicks = int(stats.get("view_lists", 0))
        carts = int(stats.get("add_to_cart_lists", 0))
        purchases = int(stats.get("purchase_lists", 0))
        variants.append(
            {
                "key": variant["key"],
                "share": variant["share"],
                "source": variant["source"],
                "impressions": shown,
                "clicks": clicks,
                "add_to_carts": carts,
                "purchases": purchases,
                "revenue": round(float(stats.get("revenue", 0.0)), 2),
                "ctr": round(clicks / shown, 6) if shown else 0.0,
                "ctr_ci95": [round(v, 6) for v in wilson_interval(min(clicks, shown), shown)],
                "conversion": round(purchases / shown, 6) if shown else 0.0,
                "conversion_ci95": [round(v, 6) for v in wilson_interval(min(purchases, shown), shown)],
            }
        )
    return {
        "experiment_id": experiment.pk,
        "name": experiment.name,
        "scenario": experiment.scenario.key,
        "status": experiment.status,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
        "variants": variants,
        "note": "clicks, add-to-carts and purchases count recommendation lists that led to at least one such event",
    }
