"""The per-process cache of loaded model versions (real bundles on the model storage): bounded by
bytes with the least recently used version out first, a version larger than the whole budget
still served (kept alone), a damaged bundle not retried within the minute, versions no longer
served dropped."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from recommendations.registry.bundles import bundle_delete, bundle_drop_customers, bundle_write
from recommendations.serving.loader import ModelCache
from recommendations.training.pipeline import PipelineOptions, run
from shelfwise.observability.metrics import MODEL_LOAD_FAILURES, tenant_label
from tests.factories import arrays_from_rows, taste_events

TENANT = 987_654  # no store: only the cache's keys carry it


@pytest.fixture(scope="module")
def bundles() -> Iterator[dict[int, tuple[str, int]]]:
    """Three small versions written as real bundles: version -> (artifact path, bytes loaded)."""
    events = arrays_from_rows(taste_events(customers=60, items=30, events_per_customer=10))
    written: dict[int, tuple[str, int]] = {}
    root = f"models/cache-test-{uuid.uuid4().hex[:8]}/default"
    for version, algorithm in ((1, "popularity"), (2, "als"), (3, "popularity")):
        result = run(PipelineOptions(weights={}, algorithm=algorithm, min_customers=5, min_items=5), events=events)
        prefix = f"{root}/{version}"
        bundle_write(
            prefix=prefix, result=result, meta={"tenant": "cache-test", "model": "default", "version": version}
        )
        loaded = ModelCache(10**12).get(tenant_id=TENANT, version_id=version, version=version, artifact_path=prefix)
        assert loaded is not None
        written[version] = (prefix, loaded.size_bytes)
    yield written
    for prefix, _size in written.values():
        bundle_delete(prefix)


def _get(cache: ModelCache, bundles: dict[int, tuple[str, int]], version: int):  # type: ignore[no-untyped-def]
    return cache.get(tenant_id=TENANT, version_id=version, version=version, artifact_path=bundles[version][0])


def test_the_least_recently_used_version_leaves_when_the_bytes_run_out(bundles: dict[int, tuple[str, int]]) -> None:
    sizes = {version: size for version, (_path, size) in bundles.items()}
    cache = ModelCache(sizes[1] + sizes[2] - 1)  # room for either, not both

    first = _get(cache, bundles, 1)
    assert _get(cache, bundles, 1) is first  # kept
    second = _get(cache, bundles, 2)

    assert second is not None
    assert cache.loaded() == [(TENANT, 2)]
    assert _get(cache, bundles, 1) is not first  # loaded again
    assert cache.loaded() == [(TENANT, 1)]


def test_using_a_version_keeps_it_when_another_needs_room(bundles: dict[int, tuple[str, int]]) -> None:
    sizes = {version: size for version, (_path, size) in bundles.items()}
    cache = ModelCache(max(sizes[1] + sizes[2], sizes[1] + sizes[3], sizes[2] + sizes[3]))  # any two
    first = _get(cache, bundles, 1)
    _get(cache, bundles, 2)

    assert _get(cache, bundles, 1) is first  # 1 is now the most recently used
    _get(cache, bundles, 3)  # needs room: 2 leaves, not 1

    assert sorted(cache.loaded()) == [(TENANT, 1), (TENANT, 3)]
    assert _get(cache, bundles, 1) is first


def test_a_version_larger_than_the_budget_is_served_alone(bundles: dict[int, tuple[str, int]]) -> None:
    cache = ModelCache(1)

    first = _get(cache, bundles, 1)
    assert first is not None
    assert _get(cache, bundles, 1) is first
    assert _get(cache, bundles, 2) is not None

    assert cache.loaded() == [(TENANT, 2)]


def test_versions_no_longer_served_are_dropped(bundles: dict[int, tuple[str, int]]) -> None:
    cache = ModelCache(10**12)
    _get(cache, bundles, 1)
    _get(cache, bundles, 2)

    cache.drop_tenant_versions(TENANT, keep={2: bundles[2][0]})

    assert cache.loaded() == [(TENANT, 2)]


def test_a_rewritten_bundle_replaces_the_loaded_revision(bundles: dict[int, tuple[str, int]]) -> None:
    """An erasure rewrites a bundle as a new revision: the copy loaded from the old one is
    dropped when the routing names the new one, and the new one is loaded instead."""
    cache = ModelCache(10**12)
    old = _get(cache, bundles, 2)
    assert old is not None
    customers = list(old.customer_index)
    new_prefix = bundle_drop_customers(bundles[2][0], lambda customer: customer == customers[0])
    assert new_prefix is not None
    assert new_prefix != bundles[2][0]
    try:
        cache.drop_tenant_versions(TENANT, keep={2: new_prefix})
        assert cache.loaded() == []
        new = cache.get(tenant_id=TENANT, version_id=2, version=2, artifact_path=new_prefix)
        assert new is not None
        assert new is not old
        assert customers[0] not in new.customer_index
        assert len(new.customer_index) == len(customers) - 1
        # Asked for by the new path directly (no routing re-read in between): the same.
        assert cache.get(tenant_id=TENANT, version_id=2, version=2, artifact_path=new_prefix) is new
    finally:
        bundle_delete(new_prefix)


def test_a_loaded_copy_forgets_an_erased_customer_at_once(bundles: dict[int, tuple[str, int]]) -> None:
    model = ModelCache(10**12).get(tenant_id=TENANT, version_id=22, version=2, artifact_path=bundles[2][0])
    assert model is not None
    assert model.customer_factors is not None
    customer = next(iter(model.customer_index))
    row = model.customer_index[customer]
    assert model.history_of(customer)[0].size > 0

    model.forget_customer(customer)

    assert customer not in model.customer_index
    assert model.history_of(customer)[0].size == 0
    assert not model.customer_factors[row].any()
    assert not model.history[row].data.any()


def test_a_loaded_version_is_kept_out_of_full_garbage_collections(bundles: dict[int, tuple[str, int]]) -> None:
    gc.unfreeze()
    model = ModelCache(10**12).get(tenant_id=TENANT, version_id=23, version=2, artifact_path=bundles[2][0])
    assert model is not None

    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert not any(gc.is_tracked(obj) and obj is model.item_ids for obj in gc.get_objects(generation=2))
    dropped = weakref.ref(model.history)
    del model
    assert dropped() is None  # still freed by reference counting once the version is gone
    gc.unfreeze()


def test_a_loaded_copys_popularity_is_computed_once_and_again_after_an_erasure(
    bundles: dict[int, tuple[str, int]],
) -> None:
    model = ModelCache(10**12).get(tenant_id=TENANT, version_id=24, version=2, artifact_path=bundles[2][0])
    assert model is not None
    order, counts = model.by_popularity()
    expected = np.bincount(model.history.indices, minlength=model.n_items)
    assert counts.tolist() == sorted(expected.tolist(), reverse=True)
    assert expected[order].tolist() == counts.tolist()
    assert model.by_popularity()[0] is order  # kept

    customer = next(iter(model.customer_index))
    had = model.history_of(customer)[0]
    model.forget_customer(customer)

    order_after, counts_after = model.by_popularity()
    assert dict(zip(order_after.tolist(), counts_after.tolist(), strict=True)) == {
        item: float(count - (item in set(had.tolist()))) for item, count in enumerate(expected.tolist())
    }


def test_a_damaged_bundle_costs_one_attempt_per_minute() -> None:
    cache = ModelCache(10**12)
    failures = MODEL_LOAD_FAILURES.labels(tenant=tenant_label(TENANT))
    before = failures._value.get()

    first = cache.get(tenant_id=TENANT, version_id=99, version=99, artifact_path="models/nowhere/default/99")
    second = cache.get(tenant_id=TENANT, version_id=99, version=99, artifact_path="models/nowhere/default/99")

    assert first is None
    assert second is None
    assert failures._value.get() - before == 1
