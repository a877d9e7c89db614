"""Properties (Hypothesis) of the store settings: whatever `PATCH /settings` accepts, no later API
call fails with a 5xx (issue 19.9: a `min_interactions` beyond PostgreSQL's bigint was accepted
with 200 and failed every `models:train` with a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.event_settings import EventSettings
from recommendations.training.settings import TrainingSettings
from tenants.models import Tenant
from tenants.services import tenant_delete
from tests.factories import event, make_tenant
from tests.helpers import TenantHandle


@pytest.fixture(scope="module")
def store(django_db_setup: None, django_db_blocker: Any) -> Iterator[TenantHandle]:
    """A store with enough events to train on (so `models:train` gets past the data check)."""
    with django_db_blocker.unblock():
        handle = make_tenant("settings-props")
        rows = [event(n, customer_id=f"c-{n % 40}", item_id=f"sku-{n % 30}") for n in range(600)]
        assert handle.client().post("/api/v1/events", {"events": rows}, format="json").status_code == 200
        connection.set_schema_to_public()
    yield handle
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")


def _fields(model: type[Any]) -> list[str]:
    return list(model.model_fields)


# Values at and far beyond every bound, of every JSON type.
anything = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63 - 1, 2**63, 10**18, 10**100]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1e-300, 1e308, -1e308, 0.5, 1.5]),
    st.booleans(),
    st.text(max_size=8),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["als", "ease", "zzz"]), st.dictionaries(st.text(max_size=8), st.integers())),
)
changes = st.one_of(
    st.fixed_dictionaries(
        {"training": st.dictionaries(st.sampled_from(_fields(TrainingSettings)), anything, max_size=3)}
    ),
    st.fixed_dictionaries(
        {
            "events": st.dictionaries(
                st.sampled_from(_fields(EventSettings)),
                anything | st.dictionaries(st.sampled_from(["view", "purchase", "wish"]), anything),
                max_size=2,
            )
        }
    ),
)

LATER_CALLS = [
    ("post", "/api/v1/models:train"),
    ("get", "/api/v1/settings"),
    ("get", "/api/v1/models"),
    ("get", "/api/v1/customers/c-1/recommendations"),
    ("get", "/api/v1/recommendations/popular"),
    ("post", "/api/v1/events"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=changes)
def test_nothing_the_settings_accept_makes_a_later_call_fail(
    store: TenantHandle, live_db: None, change: dict[str, Any]
) -> None:
    api = store.client()
    api.raise_request_exception = False  # a 500 is an answer here, as a real client sees it
    before = Tenant.objects.get(pk=store.tenant.pk).settings
    try:
        patched = api.patch("/api/v1/settings", change, format="json")
        assert patched.status_code in {200, 400}, patched.content
        if patched.status_code == 200:
            for method, path in LATER_CALLS:
                body = {"events": [event(999, event_id="after-settings")]} if path.endswith("events") else {}
                answer = getattr(api, method)(path, body, format="json")
                assert answer.status_code < 500, (path, change, answer.content[:300])
    finally:
        Tenant.objects.filter(pk=store.tenant.pk).update(settings=before)
        connection.set_schema_to_public()


def test_a_count_beyond_the_databases_range_is_refused_at_once(store: TenantHandle, live_db: None) -> None:
    api = store.client()
    answer = api.patch("/api/v1/settings", {"training": {"min_interactions": 9223372036854775808}}, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "training.min_interactions"
