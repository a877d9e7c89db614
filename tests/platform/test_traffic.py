"""API traffic counters for the dashboard: counted in the process, flushed to Redis, read per day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shelfwise.observability import traffic
from tests.helpers import TenantHandle

pytestmark = pytest.mark.django_db


def test_requests_errors_and_percentiles_per_day() -> None:
    tenant_id, now = 987_654, datetime(2026, 11, 20, 12, tzinfo=UTC)
    for duration in [1] * 90 + [40] * 5 + [400] * 5:  # ms
        traffic.traffic_record(tenant_id=tenant_id, status=200, duration_ms=duration, now=now)
    traffic.traffic_record(tenant_id=tenant_id, status=404, duration_ms=1, now=now)
    traffic.traffic_record(tenant_id=tenant_id, status=503, duration_ms=1, now=now)
    traffic.traffic_flush()

    rows = traffic.traffic_daily(tenant_id, days=2, today=now.date())
    assert [row["day"] for row in rows] == ["2026-11-19", "2026-11-20"]
    assert rows[0]["requests"] == 0
    assert rows[0]["p95_ms"] is None
    day = rows[1]
    assert (day["requests"], day["client_errors"], day["server_errors"]) == (102, 1, 1)
    assert day["p50_ms"] == 1.0
    assert day["p95_ms"] == 50.0  # the 97th of 102 requests is in the (30, 50] ms bucket


def test_api_requests_are_counted_for_their_store(tenant_a: TenantHandle) -> None:
    before = traffic.traffic_daily(tenant_a.tenant.pk, days=1)[0]["requests"]
    for _ in range(3):
        assert tenant_a.client().get("/api/v1/whoami").status_code == 200
    traffic.traffic_flush()
    assert traffic.traffic_daily(tenant_a.tenant.pk, days=1)[0]["requests"] == before + 3
