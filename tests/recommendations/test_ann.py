"""The ANN index of large catalogs (issue 21, docs/adr/0009), on real bundles with the threshold
lowered: a factor model's version carries an index verified against exact search before it can
be written; serving answers from it what exact scoring would (exclusions and filters included),
and scores exactly when a filter leaves the index too few; similar items of a large catalog
come from a verified cosine index, searched at request time, and match the exact table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from recommendations.registry.bundles import BundleError, bundle_delete, bundle_write
from recommendations.scoring import ann
from recommendations.serving import engine
from recommendations.serving.loader import LoadedModel, ModelCache
from recommendations.training import algorithms
from recommendations.training.pipeline import PipelineOptions, PipelineResult, run
from tests.factories import arrays_from_rows, taste_events

TENANT = 987_655


@pytest.fixture(scope="module")
def als_result() -> PipelineResult:
    events = arrays_from_rows(taste_events(customers=400, items=600, groups=12, events_per_customer=20))
    return run(PipelineOptions(weights={}, algorithm="als", min_customers=5, min_items=5), events=events)


@pytest.fixture
def ann_bundle(als_result: PipelineResult, settings) -> Iterator[tuple[str, dict, LoadedModel]]:  # type: ignore[no-untyped-def]
    settings.SHELFWISE_ANN_MIN_ITEMS = 100
    prefix = f"models/ann-test-{uuid.uuid4().hex[:8]}/default/1"
    manifest = bundle_write(
        prefix=prefix, result=als_result, meta={"tenant": "ann-test", "model": "default", "version": 1}
    )
    model = ModelCache(10**12).get(tenant_id=TENANT, version_id=1, version=1, artifact_path=prefix)
    assert model is not None
    yield prefix, manifest, model
    bundle_delete(prefix)


def exact(model: LoadedModel, vector: np.ndarray, ruled_out: set[int], k: int) -> list[str]:
    assert model.item_factors is not None
    scores = model.item_factors @ vector
    order = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in ruled_out]
    return [model.item_ids[i] for i in order[:k]]


def test_a_large_catalogs_version_carries_a_verified_index(ann_bundle) -> None:  # type: ignore[no-untyped-def]
    _prefix, manifest, model = ann_bundle

    assert ann.FILE in manifest["files"]
    found = manifest["scoring"]["ann"]
    assert (found["library"], found["index"]) == ("faiss", "IVFFlat")
    assert manifest["verification"]["ann"]["recall_at_100"] >= ann.RECALL_TARGET
    assert manifest["verification"]["ann"]["queries"] == min(ann.VERIFY_QUERIES, 400)
    assert model.ann is not None
    assert model.ann.nprobe == found["nprobe"]


def test_a_large_catalogs_similar_items_are_searched_at_request_time(  # type: ignore[no-untyped-def]
    ann_bundle, als_result: PipelineResult, settings
) -> None:
    _prefix, manifest, model = ann_bundle
    settings.SHELFWISE_ANN_MIN_ITEMS = 10**9
    exact_ids, _exact_scores = algorithms.similar_items(als_result.fitted)

    assert ann.SIMILAR_FILE in manifest["files"]
    assert "similar.onnx" not in manifest["files"]  # no table of every item's neighbours
    assert manifest["verification"]["similar_ann"]["recall_at_100"] >= ann.RECALL_TARGET
    assert model.similar is None
    assert model.similar_index is not None
    assert model.similar_index.index.nprobe == manifest["scoring"]["similar_ann"]["nprobe"]
    rows = list(range(0, model.n_items, 5))
    ids, scores = model.neighbours(rows)
    assert ids.shape == (len(rows), algorithms.NEIGHBOURS_FOR_SIMILAR)
    assert not (ids == np.array(rows)[:, None]).any()  # never the item itself
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    overlap = [len(set(a) & set(b)) / len(b) for a, b in zip(ids.tolist(), exact_ids[rows].tolist(), strict=True)]
    assert np.mean(overlap) >= ann.RECALL_TARGET


def test_serving_answers_from_the_index_what_exact_scoring_would(ann_bundle) -> None:  # type: ignore[no-untyped-def]
    _prefix, _manifest, model = ann_bundle
    assert model.customer_factors is not None
    overlaps = []
    for row in range(0, 400, 7):
        vector = model.customer_factors[row]
        excluded = [int(i) for i in model.history[row].indices]
        mask = np.zeros((1, model.n_items), dtype=np.float32)
        mask[0, ::3] = -np.inf  # a filter that rules out every third item
        got = engine._ann_score(model, vector, excluded, mask, 20)
        assert got is not None
        ids = [item for item, _score in got]
        ruled_out = set(excluded) | set(range(0, model.n_items, 3))
        assert not {model.item_index[item] for item in ids} & ruled_out
        assert [score for _item, score in got] == sorted((score for _item, score in got), reverse=True)
        overlaps.append(len(set(ids) & set(exact(model, vector, ruled_out, 20))) / 20)
    assert np.mean(overlaps) >= ann.RECALL_TARGET


def test_a_filter_leaving_the_index_too_few_is_scored_exactly(ann_bundle) -> None:  # type: ignore[no-untyped-def]
    _prefix, _manifest, model = ann_bundle
    assert model.customer_factors is not None
    mask = np.full((1, model.n_items), -np.inf, dtype=np.float32)
    mask[0, :5] = 0.0  # five items allowed, far from what the index finds first
    assert engine._ann_score(model, model.customer_factors[0], [], mask, 20) is None


def test_an_index_below_the_recall_target_is_refused(als_result: PipelineResult, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.SHELFWISE_ANN_MIN_ITEMS = 100
    monkeypatch.setattr(ann, "RECALL_TARGET", 1.01)  # no index can meet it
    prefix = f"models/ann-test-{uuid.uuid4().hex[:8]}/default/1"
    with pytest.raises((BundleError, ValueError), match="index found"):  # the similar items' or the scoring one
        bundle_write(prefix=prefix, result=als_result, meta={"tenant": "ann-test", "model": "default", "version": 1})
    bundle_delete(prefix)


def test_the_scoring_indexs_check_is_against_exact_search(als_result: PipelineResult) -> None:
    fitted = als_result.fitted
    assert fitted.item_factors is not None
    assert fitted.user_factors is not None
    right = ann.ann_build(fitted.item_factors)
    shuffled = fitted.item_factors[np.random.default_rng(1).permutation(len(fitted.item_factors))]
    wrong = ann.ann_build(shuffled)  # finds the best rows of other vectors: not the exact top-100

    checked = ann.ann_verify(right, fitted.item_factors, fitted.user_factors[:100])
    refused = ann.ann_verify(wrong, fitted.item_factors, fitted.user_factors[:100])

    assert checked.ok
    assert checked.recall >= ann.RECALL_TARGET
    assert not refused.ok
    assert refused.nprobe == wrong.index.nlist  # tried every number of lists first


def test_more_lists_are_searched_until_the_recall_target_is_met() -> None:
    rng = np.random.default_rng(4)
    items = rng.normal(size=(20_000, 16)).astype(np.float32)  # no structure: a hard case
    index = ann.ann_build(items)
    first = index.nprobe
    check = ann.ann_verify(index, items, rng.normal(size=(200, 16)).astype(np.float32))

    assert check.ok
    assert check.nprobe > first
    assert index.nprobe == check.nprobe


def test_similar_items_of_a_large_catalog_come_from_a_cosine_index(als_result: PipelineResult, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SHELFWISE_ANN_MIN_ITEMS = 10**9
    exact_ids, exact_scores = algorithms.similar_items(als_result.fitted, k=20)
    settings.SHELFWISE_ANN_MIN_ITEMS = 100
    ids, scores = algorithms.similar_items(als_result.fitted, k=20)

    assert ids.shape == exact_ids.shape
    assert not (ids == np.arange(len(ids))[:, None]).any()  # never the item itself
    overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(ids.tolist(), exact_ids.tolist(), strict=True)])
    assert overlap >= ann.RECALL_TARGET
    both = ids[:, 0] == exact_ids[:, 0]
    np.testing.assert_allclose(scores[both, 0], exact_scores[both, 0], atol=1e-4)
    rows = np.array([5, 1, 5])
    some_ids, some_scores = algorithms.similar_items(als_result.fitted, k=20, rows=rows)  # the seeds' rows only
    np.testing.assert_array_equal(some_ids, ids[rows])
    np.testing.assert_allclose(some_scores, scores[rows], atol=1e-6)


def test_a_trainings_repeated_similar_rows_share_one_verified_index(  # type: ignore[no-untyped-def]
    als_result: PipelineResult, settings, monkeypatch
) -> None:
    settings.SHELFWISE_ANN_MIN_ITEMS = 100
    built = []
    real = ann.ann_build

    def counted(vectors: np.ndarray, *, seed: int = 0) -> ann.AnnIndex:
        built.append(len(vectors))
        return real(vectors, seed=seed)

    monkeypatch.setattr(ann, "ann_build", counted)
    ids, scores = algorithms.similar_items(als_result.fitted, rows=np.arange(50))
    similar = algorithms.SimilarRows(als_result.fitted)
    first = similar(np.array([3, 1]))
    second = similar(np.array([40, 3]))

    assert len(built) == 1 + 1  # similar_items' own, then one for every SimilarRows call
    np.testing.assert_array_equal(first[0], ids[[3, 1]])
    np.testing.assert_array_equal(second[0], ids[[40, 3]])
    np.testing.assert_allclose(second[1], scores[[40, 3]], atol=1e-6)
