"""Erasure and events against real processes when Redis is there, and when it is not (issue 19,
items 1, 3 and 7): a gunicorn of two workers, the embedded Redis stopped and started under it,
the outbox drained as the beat drains it, the bundle clean-up run by a real Celery worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from catalog.models import OnlineBacklog
from catalog.online_features import customer_key, popularity_key
from recommendations.models import ErasedCustomer, ModelVersion, erasure_hash
from recommendations.tasks import outbox_drain_all
from shelfwise.datastores import redis_client
from shelfwise.dev import servers as devservers
from shelfwise.schedule import BEAT_SCHEDULE
from tenants.models import Tenant
from tests.factories import make_trained_store
from tests.fixtures.processes import (
    AppServer,
    WorkerProcess,
    call,
    eventually,
    recommend,
    redis_down_keeping_its_data,
    reset_this_process_pools,
    start_app_server,
    state_dir,
    stop_process,
)
from tests.helpers import TenantHandle

pytestmark = pytest.mark.slow

# A request for a new scenario name is a cache miss: computed in whichever process takes it.
MISSES = ("&scenario=probe-a", "&scenario=probe-b", "&scenario=probe-c&exclude_seen=false")


@pytest.fixture(scope="module")
def store(django_db_setup: None, django_db_blocker) -> Iterator[TenantHandle]:
    """A taste store with an active ALS model."""
    with django_db_blocker.unblock():
        yield make_trained_store("outbox")


@pytest.fixture
def server(live_db: None) -> Iterator[AppServer]:
    """Two gunicorn workers: each loads the model and routes on its own."""
    started = start_app_server("outbox", workers=2)
    yield started
    stop_process(started.process)


def traces(store: TenantHandle, customer: str) -> list[bytes]:
    """Every Redis key under the customer's prefix (cached lists, recent items, generation)."""
    client = redis_client.redis_client()
    return list(client.scan_iter(match=customer_key(store.tenant.pk, customer, "*"), count=1000))


def redis_back_in_every_worker(server: AppServer, store: TenantHandle) -> None:
    """Each worker's circuit breaker closes at its next request after REDIS_CIRCUIT_OPEN_SECONDS:
    wait that long (a run of requests may all be taken by the one worker whose breaker did not
    trip, while the other's is still open), then until a run of requests all used Redis."""
    time.sleep(settings.REDIS_CIRCUIT_OPEN_SECONDS + 0.2)
    eventually(lambda: all(recommend(server, store, "c40")[2] in {"hit", "miss"} for _ in range(8)), 20)


def drain() -> float:
    """What the beat runs every five seconds (shelfwise.schedule); returns its duration."""
    started = time.monotonic()
    outbox_drain_all()
    return time.monotonic() - started


def test_the_outbox_is_drained_every_five_seconds() -> None:
    entry = BEAT_SCHEDULE["outbox-drain"]
    assert entry["task"] == "recommendations.tasks.outbox_drain_all"
    assert entry["schedule"] == 5.0


def test_an_erased_shopper_gets_no_personal_list_from_any_process_from_the_next_request(
    store: TenantHandle, server: AppServer
) -> None:
    """Issue 19.1: every web process kept the model it had loaded and went on scoring an erased
    customer with their trained vector (``strategy: model`` on a cache miss) until restarted."""
    for query in ("", "", *MISSES, *MISSES):  # both workers load the model and know c41
        status, body, _cache = recommend(server, store, "c41", query)
        assert (status, body["strategy"]) == (200, "model")
    assert recommend(server, store, "c41")[2] == "hit"

    assert call(server, "DELETE", "/api/v1/customers/c41", key=store.key)[0] == 204
    assert traces(store, "c41") == []  # no cached list, no recent items left in Redis

    answers = [recommend(server, store, "c41", query) for query in ("", "", *MISSES, "", *MISSES, "")]
    # Declined (never from the cache) until the clean-up is done; then an unknown shopper, whose
    # list is the non-personal one, cached like anybody's (a session worker may run it at once).
    assert [(status, body["strategy"]) for status, body, _cache in answers] == [(200, "fallback")] * len(answers)
    assert answers[0][2] in {"none", "miss"}
    assert recommend(server, store, "c40")[1]["strategy"] == "model"  # nobody else is affected


def test_erasure_during_a_redis_outage_is_a_204_and_honoured_before_redis_is_cleaned(
    store: TenantHandle, server: AppServer, celery_worker: WorkerProcess
) -> None:
    """Issues 19.3 and 19.1: ``DELETE /customers/{id}`` with Redis down answered 500 after the
    rows were gone, and the cached lists stayed (and were served once Redis was back)."""
    recommend(server, store, "c42")
    assert recommend(server, store, "c42")[2] == "hit"
    state = devservers.read_state(state_dir())
    assert state is not None

    redis_down_keeping_its_data(state)
    try:
        started = time.monotonic()
        erased = call(server, "DELETE", "/api/v1/customers/c42", key=store.key)
        erase_seconds = time.monotonic() - started
        during = [recommend(server, store, "c42", query) for query in ("", *MISSES)]
    finally:
        devservers.start(state_dir(), durable=False)
        reset_this_process_pools()

    assert erased[0] == 204, erased[1]
    assert erase_seconds < 10
    assert [(status, body["strategy"]) for status, body, _cache in during] == [(200, "fallback")] * len(during)
    with tenant_context(store.tenant):
        assert OnlineBacklog.objects.filter(kind=OnlineBacklog.Kind.FORGET).count() == 1  # recorded durably
    assert Tenant.objects.get(pk=store.tenant.pk).outbox_since is not None

    # Redis is back, not yet cleaned: the cached list is still there, and is not served.
    assert traces(store, "c42")
    redis_back_in_every_worker(server, store)
    after = [recommend(server, store, "c42", query) for query in ("", "", *MISSES)]
    assert [(body["strategy"], cache) for _status, body, cache in after] == [("fallback", "none")] * len(after)

    drained_in = drain()
    assert traces(store, "c42") == []
    with tenant_context(store.tenant):
        assert not OnlineBacklog.objects.exists()

    # The bundle clean-up (lost with the broker, sent again by the drain) runs on the worker.
    def cleaned() -> bool:
        with tenant_context(store.tenant):
            return ErasedCustomer.objects.filter(customer_hash=erasure_hash("c42"), cleaned_at__isnull=False).exists()

    def drained_and_cleaned() -> bool:
        drain()
        return cleaned()

    eventually(drained_and_cleaned, 60)
    with tenant_context(store.tenant):
        active = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert "/r" in active.artifact_path  # a new revision of the bundle, without c42
    assert (recommend(server, store, "c42")[1]["strategy"]) == "fallback"  # unknown now
    drain()
    assert Tenant.objects.get(pk=store.tenant.pk).outbox_since is None  # nothing left to do
    print(f"erasure during the outage answered in {erase_seconds:.2f}s; the drain took {drained_in:.2f}s")


def test_events_stored_during_a_redis_outage_catch_up_once_redis_is_back(
    store: TenantHandle, server: AppServer
) -> None:
    """Issue 19.7: events stored while Redis was down never invalidated the shopper's cached list
    (what they had just bought was still recommended, for up to 900 s) and never reached the
    online popularity."""
    _status, body, _cache = recommend(server, store, "c43")
    top = body["items"][0]["item_id"]
    assert recommend(server, store, "c43")[2] == "hit"
    client = redis_client.redis_client()
    popularity_before = client.zscore(popularity_key(store.tenant.pk, "pop"), top) or 0.0
    state = devservers.read_state(state_dir())
    assert state is not None

    redis_down_keeping_its_data(state)
    try:
        stored = call(
            server,
            "POST",
            "/api/v1/events",
            key=store.key,
            body={"events": [{"customer_id": "c43", "item_id": top, "type": "purchase", "event_id": "outbox-ev-1"}]},
        )
    finally:
        devservers.start(state_dir(), durable=False)
        reset_this_process_pools()

    assert stored[0] == 200, stored[1]
    assert json.loads(stored[1])["stored"] == 1
    with tenant_context(store.tenant):
        backlog = OnlineBacklog.objects.get(kind=OnlineBacklog.Kind.EVENTS)
    assert backlog.event_ids == ["outbox-ev-1"]
    client = redis_client.redis_client()

    # Before the drain, the list cached before the outage is what Redis holds.
    redis_back_in_every_worker(server, store)
    stale = recommend(server, store, "c43")
    assert stale[2] == "hit"
    assert top in [item["item_id"] for item in stale[1]["items"]]

    drained_in = drain()
    assert drained_in < 10
    fresh = recommend(server, store, "c43")
    assert fresh[2] == "miss"  # invalidated
    assert top not in [item["item_id"] for item in fresh[1]["items"]]  # bought: seen, left out
    popularity_after = client.zscore(popularity_key(store.tenant.pk, "pop"), top)
    assert popularity_after is not None
    assert popularity_after > popularity_before
    assert top.encode() in client.zrange(customer_key(store.tenant.pk, "c43", "recent"), 0, -1)

    # Its first application's answer lost (the batch kept, drained again): counted once.
    with tenant_context(store.tenant):
        OnlineBacklog.objects.create(kind=OnlineBacklog.Kind.EVENTS, batch=backlog.batch, event_ids=["outbox-ev-1"])
    Tenant.objects.filter(pk=store.tenant.pk).update(outbox_since=backlog.created_at)
    drain()
    assert client.zscore(popularity_key(store.tenant.pk, "pop"), top) == popularity_after
    with tenant_context(store.tenant):
        assert not OnlineBacklog.objects.exists()
    assert Tenant.objects.get(pk=store.tenant.pk).outbox_since is None
    print(f"the outbox caught up in {drained_in:.2f}s after Redis returned")
