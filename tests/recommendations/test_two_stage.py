"""The ranker's features and its training (issue 21), offline: features are point-in-time (what
happens at or after the cut changes nothing), mean what their names say, and the stacked-window
training learns a ranker whose offline scorer ranks only the candidates."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ranking.features import Aggregates, feature_matrix, feature_names, select_features
from recommendations.ranking.sources import SourceContext, default_sources, gather
from recommendations.ranking.two_stage import (
    _label_windows,
    candidates_and_features,
    two_stage_fit,
    two_stage_scorer,
    window_cuts,
)
from recommendations.training import algorithms
from recommendations.training.baskets import co_occurrence
from recommendations.training.data import EventArrays, Indexer, ItemAttributes
from tests.factories import arrays_from_rows
from tests.recommendations.test_model_selection import basket_store_rows

DAY = 86400.0
NOW = 1_800_000_000.0


def events(rows: list[tuple[int, int, float]]) -> EventArrays:
    """(customer, item, days before NOW) rows; each event its own basket."""
    data = np.array(rows, dtype=np.float64)
    n = len(rows)
    return EventArrays(
        data[:, 0].astype(np.int64),
        data[:, 1].astype(np.int64),
        np.ones(n, dtype=np.float32),
        NOW - data[:, 2] * DAY,
        np.ones(n, dtype=bool),
        np.arange(n, dtype=np.int64),
    )


def features_at(
    arrays: EventArrays, indexer: Indexer, at: float, repeats: bool = True, attributes: ItemAttributes | None = None
) -> dict[str, np.ndarray]:
    before = arrays.take(arrays.times < at)
    context = SourceContext(before, indexer, at, repeats, together=co_occurrence(before, indexer))
    sources = default_sources()
    table = gather(context, indexer.rows(np.array([1])), sources)
    matrix = feature_matrix(table, Aggregates.at_cut(arrays, indexer, at, attributes), [s.name for s in sources])
    names = feature_names([s.name for s in sources])
    by_item = {int(indexer.item_ids[item]): matrix[position] for position, item in enumerate(table.items)}
    return {name: np.array([by_item[item][names.index(name)] for item in (10, 11)]) for name in names}


# Customer 1 bought 10 on days 30, 20 and 10 before NOW, and 11 once, 5 days before; others too.
HISTORY = [(1, 10, 30), (1, 10, 20), (1, 10, 10), (1, 11, 5), (2, 10, 3), (2, 11, 2), (3, 11, 1)]


def test_features_mean_what_their_names_say() -> None:
    arrays = events(HISTORY)
    indexer = Indexer.of(arrays)

    got = features_at(arrays, indexer, NOW)

    assert list(got["had_times"]) == [3, 1]
    assert list(got["had_days"]) == [3, 1]
    assert got["days_since_had"] == pytest.approx([10, 5], abs=1)
    assert got["repeat_interval_days"][0] == pytest.approx(10, abs=0.5)  # every 10 days
    assert np.isnan(got["repeat_interval_days"][1])  # bought once: no cycle yet
    assert got["repeat_due"][0] == pytest.approx(1.0, abs=0.1)  # due now
    assert got["item_idle_days"] == pytest.approx([3, 1])
    assert got["buy_again_rank"][0] == 1


def test_price_and_category_features_mean_what_their_names_say() -> None:
    arrays = events(HISTORY)
    indexer = Indexer.of(arrays)  # items 10 and 11
    catalog = ItemAttributes.of([10.0, 30.0], [["mugs", "kitchen"], ["lamps"]])

    got = features_at(arrays, indexer, NOW, attributes=catalog)
    without = features_at(arrays, indexer, NOW)

    assert got["price_log"] == pytest.approx(np.log1p([10.0, 30.0]))
    # Customer 1's counted events: 10 three times, 11 once.
    assert got["customer_price_log"] == pytest.approx(np.log1p([15.0, 15.0]))  # (3 × 10 + 30) / 4
    assert got["customer_value_log"] == pytest.approx(np.log1p([60.0, 60.0]))
    assert got["price_vs_usual"] == pytest.approx([10 / 15, 30 / 15])
    assert got["category_affinity"] == pytest.approx([0.75, 0.25])  # both of 10's categories: 3 of 4
    for name in ("price_log", "customer_price_log", "customer_value_log", "price_vs_usual", "category_affinity"):
        assert np.isnan(without[name]).all(), name  # no catalog read: missing, never 0


def test_an_item_without_a_price_or_category_leaves_those_features_missing() -> None:
    arrays = events(HISTORY)
    indexer = Indexer.of(arrays)

    got = features_at(arrays, indexer, NOW, attributes=ItemAttributes.of([None, 30.0], [[], ["lamps"]]))

    assert np.isnan(got["price_log"][0])
    assert got["customer_price_log"] == pytest.approx(np.log1p([30.0, 30.0]))  # the priced item's only
    assert np.isnan(got["category_affinity"][0])
    assert got["category_affinity"][1] == pytest.approx(0.25)


def test_item_attributes_follow_the_items_they_are_asked_for() -> None:
    catalog = ItemAttributes.of([1.0, None, -3.0, 4.0], [["a"], ["b", "a", "b"], [], ["c"]])
    ids = np.array([10, 20, 30, 40])

    part = catalog.subset(ids, np.array([20, 40, 99]))  # 99: an item the catalog does not know

    assert np.isnan(catalog.price[[1, 2]]).all()  # no price, and a negative one, are unknown
    assert part.price[1] == 4.0
    assert np.isnan(part.price[[0, 2]]).all()
    assert part.categories.toarray().tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]  # a, b, c; b once
    assert catalog.subset(np.array([], dtype=np.int64), np.array([1])).categories.shape == (1, 3)


def test_a_ranker_of_an_earlier_feature_version_gets_its_own_columns_in_its_order() -> None:
    sources = ["cf", "popular"]
    names = feature_names(sources)
    full = np.arange(2 * len(names), dtype=np.float32).reshape(2, len(names))
    wanted = [names[3], names[0], "a_feature_since_removed"]

    picked = select_features(full, sources, wanted)

    np.testing.assert_array_equal(picked[:, :2], full[:, [3, 0]])
    assert np.isnan(picked[:, 2]).all()
    assert select_features(full, sources, names) is full


def test_features_are_point_in_time_what_happens_at_or_after_the_cut_changes_nothing() -> None:
    cut = NOW - 4 * DAY
    past = events(HISTORY)
    indexer = Indexer.of(past)
    future = [(1, 10, 4), (1, 11, 0.5), (2, 10, 0.2), (3, 10, 4)]  # at the cut and after it
    with_future = events(HISTORY + future)

    before = features_at(past, indexer, cut)
    after = features_at(with_future, indexer, cut)

    for name, values in before.items():
        np.testing.assert_array_equal(values, after[name], err_msg=name)


def test_the_stacked_windows_cut_the_training_part_from_the_latest_back() -> None:
    arrays = events([(customer, item, day) for customer in range(5) for item in range(3) for day in range(100)])
    cuts = window_cuts(arrays)
    assert [quantile for quantile, _start, _end in cuts] == [0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5]
    assert all(start < end <= arrays.times.max() + 1 for _q, start, end in cuts)


def test_a_ranker_trained_on_a_repeat_heavy_store_ranks_only_candidates_and_learns_repeats() -> None:
    arrays = arrays_from_rows(basket_store_rows(customers=120, weeks=10))
    arrays.baskets = np.arange(len(arrays), dtype=np.int64)
    indexer = Indexer.of(arrays)
    cut = float(np.quantile(arrays.times, 0.8))
    train = arrays.take(arrays.times < cut)

    def fit(matrix: sp.csr_matrix) -> algorithms.Fitted:  # the collaborative model of each window
        return algorithms.fit("als", matrix, {**algorithms.params_for("als"), "factors": 8, "iterations": 5})

    model = two_stage_fit(train, indexer, repeats=True, fit=fit, seed=3)
    scorer = two_stage_scorer(model, train, indexer, repeats=True, fit=fit, at=cut)
    rows = np.arange(10)
    scores = scorer(rows)

    assert len(model.windows) >= 3
    assert all(window["customers"] > 0 for window in model.windows)
    importance = model.ranker.importance()
    own = {"buy_again_score", "buy_again_rank", "had_times", "had_days", "days_since_had", "repeat_interval_days"}
    assert max(importance, key=lambda name: importance[name]) in own | {"repeat_due"}  # staples: what they had
    ranked = (scores > -1e9).sum(axis=1)
    assert (ranked > 0).all()
    assert (ranked < len(indexer.item_ids)).any()  # only candidates are scored


def test_on_the_per_customer_protocol_the_labels_are_never_what_the_features_see() -> None:
    """Where time cannot separate the data, a seeded 20 % of each customer's events label the
    rest: the sources and the features see only the rest."""
    arrays = arrays_from_rows(basket_store_rows(customers=40, weeks=6))
    arrays.baskets = np.arange(len(arrays), dtype=np.int64)
    indexer = Indexer.of(arrays)

    [(_window, context, labels)] = _label_windows(arrays, indexer, repeats=True, fit=None, protocol="customer", seed=5)

    assert len(context.events) + len(labels) == len(arrays)
    seen = set(context.events.baskets.tolist())
    assert not seen & set(labels.baskets.tolist())
    assert set(np.unique(labels.customers)) <= set(np.unique(context.events.customers))
    rows = indexer.rows(np.unique(labels.customers))
    _table, features = candidates_and_features(context, rows, default_sources())
    had = feature_names([source.name for source in default_sources()]).index("had_times")
    assert features[:, had].sum() == context.counts[rows].sum()  # counted from the rest only


def test_a_ranker_that_loses_to_the_single_stage_on_the_holdout_is_not_kept() -> None:
    """On the taste store (one or two liked groups per customer, no repeats or trends to add)
    the ranker measures below ALS on the holdout: the version stays single-stage."""
    from recommendations.ranking.stage import second_stage
    from recommendations.training.pipeline import PipelineOptions, run
    from tests.factories import taste_events

    result = run(
        PipelineOptions(weights={}, algorithm="als"), events=arrays_from_rows(taste_events()), second_stage=second_stage
    )

    stages = result.metrics["stages"]
    assert stages["chosen"] == "single"
    assert stages["two"]["ndcg@10"] <= stages["single"]["ndcg@10"]
    assert "does not beat the single stage" in stages["reason"]
    assert result.two_stage is None
    assert result.metrics["model"] == stages["single"]


def test_only_the_benchmarks_setting_keeps_a_losing_ranker_and_it_says_so(settings) -> None:  # type: ignore[no-untyped-def]
    """bench/serving.py measures a two-stage version's serving cost on a store where the ranker
    may lose: its settings keep the ranker anyway, and the reason says why (the product's never do)."""
    from recommendations.ranking.stage import second_stage
    from recommendations.training.pipeline import PipelineOptions, run
    from tests.factories import taste_events

    assert not getattr(settings, "SHELFWISE_TWO_STAGE_ALWAYS", False)
    settings.SHELFWISE_TWO_STAGE_ALWAYS = True
    result = run(
        PipelineOptions(weights={}, algorithm="als"), events=arrays_from_rows(taste_events()), second_stage=second_stage
    )

    stages = result.metrics["stages"]
    assert stages["chosen"] == "two"
    assert stages["two"]["ndcg@10"] <= stages["single"]["ndcg@10"]
    assert stages["reason"].startswith("kept by SHELFWISE_TWO_STAGE_ALWAYS")
    assert result.two_stage is not None
