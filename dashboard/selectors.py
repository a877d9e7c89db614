"""What the dashboard shows: read-only queries over the current store's schema and Redis."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Max, Min

from catalog.models import Customer, Event, Item
from recommendations.models import ImpressionCount
from recommendations.serving.cache import daily_stats, impressions_key
from shelfwise.datastores.redis_client import redis_call
from shelfwise.observability.traffic import traffic_daily

PERIODS = (7, 30, 90, 365)


@dataclass(frozen=True)
class Period:
    days: int
    start: date
    end: date  # inclusive
    shifted: bool  # the store's latest event is before today: the period ends there instead

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range(self.days)]


def period_for(days: int, *, latest: datetime | None) -> Period:
    """The last ``days`` days up to today — or up to the store's latest event (``latest``, from
    ``catalog_counts``) if it has none in that window (an imported history, like the demo's)."""
    today = datetime.now(UTC).date()
    end = today
    if latest is not None and latest.date() < today - timedelta(days=days - 1):
        end = latest.astimezone(UTC).date()
    return Period(days, end - timedelta(days=days - 1), end, end != today)


def events_per_day(period: Period) -> dict[str, Any]:
    """{"days": [...], "series": {type: [count per day]}} for a stacked chart."""
    start = datetime.combine(period.start, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, type, count(*) FROM {Event._meta.db_table} "  # noqa: S608
            "WHERE timestamp >= %s AND timestamp < %s GROUP BY 1, 2",
            [start, end],
        )
        rows = cursor.fetchall()
    index = {day: position for position, day in enumerate(period.dates)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * period.days)
    for day, kind, count in rows:
        if day in index:
            series[kind][index[day]] = int(count)
    return {"days": [day.isoformat() for day in period.dates], "series": dict(sorted(series.items()))}


def _hgetall(key: str) -> Callable[[Any], Any]:
    return lambda client: client.hgetall(key)


def _impressions_per_day(tenant_id: int, period: Period) -> list[int]:
    counts = dict.fromkeys(period.dates, 0)
    for day, count in ImpressionCount.objects.filter(day__gte=period.start, day__lte=period.end).values_list(
        "day", "count"
    ):
        counts[day] += int(count)
    today = datetime.now(UTC).date()
    for day in (today - timedelta(days=1), today):  # not flushed yet
        if day in counts:
            raw: Any = redis_call(_hgetall(impressions_key(tenant_id, f"{day:%Y%m%d}")), default=None)
            counts[day] += sum(int(value) for value in (raw or {}).values())
    return [counts[day] for day in period.dates]


def recommendation_outcomes(tenant_id: int, period: Period) -> dict[str, Any]:
    """Per day: lists served (impressions), attributed clicks (views), purchases and revenue,
    and the period's CTR and conversion."""
    start = datetime.combine(period.start, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with connection.cursor() as cursor:
        sql = (
            "SELECT (e.timestamp AT TIME ZONE 'UTC')::date, e.type, count(*), "  # noqa: S608 - our tables
            "coalesce(sum(coalesce((e.properties->>'price')::numeric, i.price, 0) * coalesce(e.value, 1)), 0) "
            f"FROM {Event._meta.db_table} e JOIN {Item._meta.db_table} i ON i.id = e.item_id "
            "WHERE e.recommendation_id IS NOT NULL AND e.recommendation_id <> '' "
            "AND e.timestamp >= %s AND e.timestamp < %s AND e.type IN ('view', 'purchase') GROUP BY 1, 2"
        )
        cursor.execute(sql, [start, end])
        rows = cursor.fetchall()
    index = {day: position for position, day in enumerate(period.dates)}
    clicks, purchases, revenue = [0] * period.days, [0] * period.days, [0.0] * period.days
    for day, kind, count, amount in rows:
        if day not in index:
            continue
        if kind == "view":
            clicks[index[day]] = int(count)
        else:
            purchases[index[day]] = int(count)
            revenue[index[day]] = round(float(amount), 2)
    impressions = _impressions_per_day(tenant_id, period)
    shown, clicked, bought = sum(impressions), sum(clicks), sum(purchases)
    return {
        "days": [day.isoformat() for day in period.dates],
        "impressions": impressions,
        "clicks": clicks,
        "purchases": purchases,
        "revenue": revenue,
        "ctr": clicked / shown if shown else None,
        "conversion": bought / shown if shown else None,
        "revenue_total": round(sum(revenue), 2),
    }


def cache_per_day(tenant_id: int, period: Period) -> dict[str, Any]:
    hits, misses = [], []
    for day in period.dates:
        stats = daily_stats(tenant_id, f"{day:%Y%m%d}")
        hits.append(stats.get("hit", 0))
        misses.append(stats.get("miss", 0))
    rate = [round(h / (h + m), 4) if h + m else None for h, m in zip(hits, misses, strict=True)]
    return {"days": [d.isoformat() for d in period.dates], "hits": hits, "misses": misses, "hit_rate": rate}


def api_traffic(tenant_id: int, period: Period) -> dict[str, Any]:
    # Traffic is counted by calendar day, so it is always the days up to today.
    rows = traffic_daily(tenant_id, days=period.days)
    return {
        "days": [row["day"] for row in rows],
        "requests": [row["requests"] for row in rows],
        "errors": [row["client_errors"] + row["server_errors"] for row in rows],
        "p95_ms": [row["p95_ms"] for row in rows],
    }


def catalog_counts() -> dict[str, Any]:
    span = Event.objects.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    return {
        "items": Item.objects.filter(deleted_at__isnull=True).count(),
        "customers": Customer.objects.count(),
        "events": Event.objects.count(),
        "first_event": span["first"],
        "last_event": span["last"],
    }
