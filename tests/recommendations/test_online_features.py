"""The ranker's features online and offline (issue 21): events replayed into the real Redis as
ingestion sends them give, at the same instant, exactly the features a training computes from
the same events at a cut (point-in-time) — and what serving seeds neighbours with is what
training seeds them with."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import astuple

import numpy as np
import pytest

from catalog.online_features import (
    HALF_LIVES,
    EventFeature,
    customer_key_hash,
    features_forget_customer,
    features_record_events,
    item_stats,
    ranking_state,
)
from recommendations.ranking import online
from recommendations.ranking.features import Aggregates, feature_matrix, feature_names
from recommendations.ranking.sources import CandidateTable, SourceContext, default_sources, gather
from recommendations.training.baskets import co_occurrence
from recommendations.training.data import EventArrays, Indexer, ItemAttributes
from shelfwise.datastores.redis_client import redis_client, tenant_key_pattern

DAY = 86400.0
START = 1_780_000_000.0
TENANT = 987_021  # no store: only the keys carry it


def generated(seed: int = 4) -> list[EventFeature]:
    """40 customers, 30 items, 900 events over 60 days, in time order; weights 0, 1 and 3."""
    rng = np.random.default_rng(seed)
    times = np.sort(START + rng.uniform(0, 60 * DAY, size=900))
    return [
        EventFeature(
            customer_id=f"c{int(rng.integers(0, 40))}",
            item_id=f"i{int(rng.integers(0, 30) if rng.random() < 0.5 else rng.integers(0, 8))}",  # a popular few
            timestamp=round(float(when), 3),
            weight=float(rng.choice([0.0, 1.0, 3.0], p=[0.1, 0.6, 0.3])),
        )
        for when in times
    ]


def arrays(events: list[EventFeature]) -> EventArrays:
    """What a training extracts: the events with a non-zero weight."""
    kept = [event for event in events if event.weight]
    return EventArrays(
        np.array([int(event.customer_id[1:]) for event in kept]),
        np.array([int(event.item_id[1:]) for event in kept]),
        np.array([event.weight for event in kept], dtype=np.float32),
        np.array([event.timestamp for event in kept]),
        np.ones(len(kept), dtype=bool),
    )


@pytest.fixture
def replayed(django_db_setup: None) -> Iterator[list[EventFeature]]:
    """The events, replayed into Redis (each test starts with an empty Redis)."""
    events = generated()
    for start in range(0, len(events), 64):  # as ingestion sends them, batch by batch
        assert features_record_events(TENANT, events[start : start + 64], batch=uuid.uuid4().hex)
    yield events
    client = redis_client()
    keys = list(client.scan_iter(match=tenant_key_pattern(TENANT), count=1000))
    if keys:
        client.unlink(*keys)


def catalog_of(indexer: Indexer) -> ItemAttributes:
    """Prices and categories as a catalog might have them: some items unpriced, some in no
    category, some in two."""
    ids = [int(item) for item in indexer.item_ids]
    return ItemAttributes.of(
        [None if item % 5 == 0 else 2.5 * (1 + item % 7) for item in ids],
        [[] if item % 4 == 0 else [f"c{item % 3}", *(["even"] if item % 2 == 0 else [])] for item in ids],
    )


def offline_and_online(events: list[EventFeature], customer: int, at: float) -> tuple[np.ndarray, np.ndarray]:
    """One customer's candidates with their features, computed offline at the cut ``at`` and
    from what Redis holds (asked at the same instant); the catalog's side from the same item
    attributes (serving has them in the version's bundle, in its item order)."""
    data = arrays(events)
    indexer = Indexer.of(data)
    context = SourceContext(data, indexer, at, True, together=co_occurrence(data, indexer))
    sources = [source.name for source in default_sources()]
    table = gather(context, indexer.rows(np.array([customer])), default_sources())
    attributes = catalog_of(indexer)
    offline = feature_matrix(table, Aggregates.at_cut(data, indexer, at, attributes), sources)
    catalog = (attributes, {f"i{int(item)}": position for position, item in enumerate(indexer.item_ids)})

    item_ids = [f"i{int(indexer.item_ids[item])}" for item in table.items]
    state = ranking_state(TENANT, f"c{customer}", recent=20, popular=5, trending=5)
    stats = item_stats(TENANT, item_ids)
    assert state is not None
    assert stats is not None
    local = CandidateTable(np.zeros(len(item_ids), dtype=np.int64), np.arange(len(item_ids)), table.scores, table.ranks)
    return offline, feature_matrix(local, online.online_aggregates(state, item_ids, stats, at, catalog), sources)


@pytest.mark.parametrize("customer", [0, 7, 19, 33])
def test_features_from_redis_equal_the_offline_ones_at_the_same_instant(
    replayed: list[EventFeature], customer: int
) -> None:
    at = replayed[-1].timestamp + 3 * 3600.0
    offline, live = offline_and_online(replayed, customer, at)

    assert offline.shape == live.shape
    assert len(offline) > 20
    names = feature_names([source.name for source in default_sources()])
    for name in ("price_vs_usual", "category_affinity", "customer_value_log"):  # the catalog's side was read
        assert np.isfinite(offline[:, names.index(name)]).any(), name
    for column, name in enumerate(names):
        np.testing.assert_allclose(live[:, column], offline[:, column], rtol=1e-5, atol=1e-5, err_msg=name)


def test_the_popular_and_trending_heads_from_redis_are_the_training_sources_scores(
    replayed: list[EventFeature],
) -> None:
    """The popular and trending sources' scores are ranker features: Redis keeps the sums
    forward-decayed against an epoch (days before the events: 2^8 and more times the sums at the
    instant asked), serving brings them to that instant, as a training computes them at a cut."""
    at = replayed[-1].timestamp + 3 * 3600.0
    data = arrays(replayed)
    indexer = Indexer.of(data)
    context = SourceContext(data, indexer, at, True)
    state = ranking_state(TENANT, "c0", recent=20, popular=30, trending=30)
    assert state is not None
    for kind, head in (("pop", state.popular), ("trend", state.trending)):
        offline = context.decayed_popularity(HALF_LIVES[kind])
        live = [(item, score * state.decay_factor(kind, at)) for item, score in head]
        assert len(live) == len(head) == 30
        columns = indexer.cols(np.array([int(item[1:]) for item, _score in live]))
        np.testing.assert_allclose([score for _item, score in live], offline[columns], rtol=1e-6, err_msg=kind)
        assert head[0][1] > 100 * live[0][1]  # what Redis holds is on another scale


def test_a_historical_stores_features_describe_its_newest_event_not_today(replayed: list[EventFeature]) -> None:
    """These events ended months before today (an imported history): the ranker's features
    describe the instant after the newest event known, as a training's last cut would, with the
    popularity sources' scores decayed to it; a live store's describe now."""
    from types import SimpleNamespace

    from recommendations.serving import engine

    newest = replayed[-1].timestamp
    assert newest < time.time() - 30 * DAY
    state = ranking_state(TENANT, "c0", recent=20, popular=10, trending=10)
    stats = item_stats(TENANT, [f"i{n}" for n in range(30)])
    assert state is not None
    assert stats is not None
    at = engine._features_instant(SimpleNamespace(last_event_time=newest - 5 * DAY), state, stats)  # type: ignore[arg-type]
    assert at == pytest.approx(newest + 1.0)

    found = online.candidates({"popular": state.popular, "trending": state.trending})
    engine._popularity_at(found, state, at)
    data = arrays(replayed)
    indexer = Indexer.of(data)
    context = SourceContext(data, indexer, at, True)
    columns = indexer.cols(np.array([int(item[1:]) for item in found.item_ids]))
    for name, kind in (("popular", "pop"), ("trending", "trend")):
        proposed = found.table.ranks[name] > 0
        expected = context.decayed_popularity(HALF_LIVES[kind])[columns]
        np.testing.assert_allclose(found.table.scores[name][proposed], expected[proposed], rtol=1e-6, err_msg=name)

    live = engine._features_instant(SimpleNamespace(last_event_time=time.time() - 60), None, None)  # type: ignore[arg-type]
    assert live == pytest.approx(time.time() - 59, abs=5)  # a minute's quiet: as of the last event
    ahead = engine._features_instant(SimpleNamespace(last_event_time=time.time() + 3600), None, None)  # type: ignore[arg-type]
    assert ahead == pytest.approx(time.time(), abs=5)  # never later than now (clocks ahead)


def test_serving_seeds_neighbours_with_the_recent_items_training_uses(replayed: list[EventFeature]) -> None:
    data = arrays(replayed)
    indexer = Indexer.of(data)
    context = SourceContext(data, indexer, replayed[-1].timestamp + 1, True)
    for customer in (0, 7, 19):
        row = int(indexer.rows(np.array([customer]))[0])
        seeds = {f"i{int(indexer.item_ids[c])}" for c in context.recent[row].indices}
        assert (
            set(online.recent_seeds(ranking_state(TENANT, f"c{customer}", recent=20, popular=1, trending=1))) == seeds
        )


def test_erasing_a_customer_removes_their_aggregates(replayed: list[EventFeature]) -> None:
    state = ranking_state(TENANT, "c39", recent=20, popular=1, trending=1)
    assert state is not None
    assert state.events > 0
    assert state.pairs

    features_forget_customer(TENANT, customer_key_hash("c39"))

    gone = ranking_state(TENANT, "c39", recent=20, popular=1, trending=1)
    assert gone is not None
    assert gone.events == 0
    assert not gone.pairs
    assert not gone.recent


def _snapshot(tenant: int, customers: list[str], items: list[str]) -> tuple[object, ...]:
    """What the features read of a tenant: popularity, item stats, each customer's state."""
    from catalog.online_features import popular_items

    states = [ranking_state(tenant, customer, recent=10, popular=50, trending=50) for customer in customers]
    stats = item_stats(tenant, items)
    return (
        popular_items(tenant, "pop", 50),
        None if stats is None else [np.nan_to_num(column, nan=-1.0).tolist() for column in astuple(stats)],
        [(s.events, s.first, s.last, sorted(s.pairs.items()), s.recent) for s in states if s is not None],
    )


def _forget(tenant: int) -> None:
    client = redis_client()
    keys = list(client.scan_iter(match=tenant_key_pattern(tenant), count=1000))
    if keys:
        client.unlink(*keys)


def test_a_large_batch_is_applied_in_slices_each_exactly_once(django_db_setup: None) -> None:
    """A batch larger than one transaction goes in slices with their own markers: applied again
    after only its first slice went through (the answer to the rest was lost), it ends exactly
    as if it had been applied once."""
    from catalog.online_features import RECORD_SLICE, features_apply_once

    events = generated(seed=5) + generated(seed=6)
    assert len(events) > 2 * RECORD_SLICE
    customers = sorted({event.customer_id for event in events})
    items = sorted({event.item_id for event in events})
    once, twice = TENANT + 1, TENANT + 2
    try:
        assert features_record_events(once, events, batch="b1")
        expected = _snapshot(once, customers, items)
        assert features_record_events(twice, events[:RECORD_SLICE], batch="b2")  # slice 0 only
        assert features_apply_once(twice, events, batch="b2")  # the others
        assert not features_apply_once(twice, events, batch="b2")  # nothing left to apply

        assert _snapshot(twice, customers, items) == expected
    finally:
        _forget(once)
        _forget(twice)


def test_a_batch_of_twenty_thousand_events_fits_the_redis_timeout(django_db_setup: None) -> None:
    """REDIS_SOCKET_TIMEOUT (0.25 s) bounds every call; one transaction for 20,000 events (a
    rebuild's chunk, a large API batch) took longer and timed out, tripping the breaker."""
    from django.conf import settings

    from shelfwise.datastores.redis_client import circuit_open

    assert settings.REDIS_SOCKET_TIMEOUT <= 0.25
    rng = np.random.default_rng(7)
    events = [
        EventFeature(f"c{int(rng.integers(0, 20_000))}", f"i{int(rng.integers(0, 5_000))}", START + n, 1.0)
        for n in range(20_000)
    ]
    try:
        assert features_record_events(TENANT + 3, events, batch=uuid.uuid4().hex)
        assert not circuit_open()
        stats = item_stats(TENANT + 3, ["i1", "i2"])
        assert stats is not None
        assert sum(stats.events) > 0
    finally:
        _forget(TENANT + 3)
