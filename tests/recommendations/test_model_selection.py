"""Issue 20: the release gate compares with what the store serves without a model, the holdout
falls back to a per-customer one when time cannot separate the data, repeat-heavy stores are
evaluated counting repeats, and the search runs within a time budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommendations.registry.gate import release_gate
from recommendations.training.baselines import decayed_popularity, fallback_scorer
from recommendations.training.data import EventArrays, repeat_rate
from recommendations.training.pipeline import PipelineOptions, run
from recommendations.training.settings import TrainingSettings
from recommendations.training.split import MIN_TIME_HOLDOUT_CUSTOMERS, holdout_split, time_split
from tests.factories import arrays_from_rows, taste_events

START = datetime(2026, 6, 1, tzinfo=UTC)


def trend_store_rows(*, customers: int = 400, items: int = 60, seed: int = 5) -> list[dict[str, object]]:
    """A store where what sells is what sells *now*: customers buy at random (no shared tastes
    for collaborative filtering to learn), except that most purchases go to the season's few
    bestsellers, and the season changed 40 days before the end. The recent bestsellers (decayed
    popularity) are the best guess for what comes next; all-time counts still favour the old."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(customers):
        bought: set[int] = set()  # nobody buys the same thing twice here
        for n in range(12):
            day = int(rng.integers(0, 120))
            hot = [0, 1, 2, 3, 4, 5, 6, 7] if day >= 80 else [10, 11, 12, 13, 14, 15, 16, 17]
            item = int(rng.choice(hot)) if rng.random() < 0.6 else int(rng.integers(0, items))
            while item in bought:
                item = int(rng.integers(0, items))
            bought.add(item)
            when = START + timedelta(days=day, minutes=int(rng.integers(0, 1440)))
            rows.append(
                {
                    "event_id": f"t{customer}-{n}",
                    "customer_id": f"c{customer}",
                    "item_id": f"i{item}",
                    "type": "purchase",
                    "timestamp": when.isoformat(),
                }
            )
    return rows


def basket_store_rows(*, customers: int = 300, items: int = 80, weeks: int = 12, seed: int = 9) -> list[dict]:
    """A grocery-like store: each customer buys their own basket of 4-6 staples most weeks, and
    now and then something else."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(customers):
        basket = rng.choice(items, size=int(rng.integers(4, 7)), replace=False)
        for week in range(weeks):
            when = START + timedelta(weeks=week, days=int(rng.integers(0, 7)), minutes=int(rng.integers(0, 1440)))
            bought = [int(i) for i in basket if rng.random() < 0.7]
            if rng.random() < 0.3:
                bought.append(int(rng.integers(0, items)))
            for n, item in enumerate(bought):
                rows.append(
                    {
                        "event_id": f"b{customer}-{week}-{n}",
                        "customer_id": f"c{customer}",
                        "item_id": f"i{item}",
                        "type": "purchase",
                        "timestamp": when.isoformat(),
                    }
                )
    return rows


def defaults(**overrides: object) -> PipelineOptions:
    """The pipeline as a store's first training with default settings runs it."""
    settings = TrainingSettings()
    options = {
        "weights": {},
        "algorithm": settings.algorithm,
        "tune": settings.tune,
        "tuning_budget_seconds": settings.tuning_budget_seconds,
        "holdout": settings.holdout_fraction,
        "min_customers": 5,
        **overrides,
    }
    return PipelineOptions(**options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the gate


def test_gate_refuses_a_model_that_loses_to_the_served_fallback() -> None:
    """On a store where the season's bestsellers win, no recipe beats decayed popularity: the
    gate refuses, naming both figures."""
    result = run(defaults(), events=arrays_from_rows(trend_store_rows()))
    metrics = result.metrics

    assert metrics["fallback"]["name"] == "decayed popularity"
    assert metrics["fallback"]["ndcg@10"] > metrics["model"]["ndcg@10"]
    passed, reason = release_gate(algorithm=result.algorithm, metrics=metrics, tolerance=0.02)
    assert not passed
    assert f"NDCG@10 {metrics['model']['ndcg@10']:.4f} does not beat" in reason
    assert f"(decayed popularity: {metrics['fallback']['ndcg@10']:.4f})" in reason


def test_decayed_popularity_is_what_serving_counts_at_the_cut() -> None:
    """The fallback's scores are the event weights decayed with serving's 30-day half-life to
    the end of the training part."""
    day = 86400.0
    events = EventArrays(
        np.array([1, 2, 3, 1, 2, 3]),
        np.array([10, 10, 20, 20, 30, 30]),
        np.array([1, 1, 1, 10, 1, 1], dtype=np.float32),
        np.array([0, 0, 30 * day, 60 * day, 90 * day, 91 * day]),
    )
    split = time_split(events, 0.2)  # the cut falls on day 90: trains on the first four events
    scores = decayed_popularity(split)
    cut = split.cut_time
    assert cut == 90 * day
    expected = {
        10: 2 * 2 ** (-cut / (30 * day)),
        20: 2 ** (-(cut - 30 * day) / (30 * day)) + 10 * 2 ** (-(cut - 60 * day) / (30 * day)),
    }
    for item, value in expected.items():
        assert scores[split.indexer.cols(np.array([item]))[0]] == pytest.approx(value, rel=1e-6)


# --------------------------------------------------------------------------- holdouts


def test_a_store_whose_events_share_one_timestamp_trains_on_a_per_customer_holdout() -> None:
    rows = taste_events()
    for row in rows:
        row["timestamp"] = "2026-07-01T00:00:00+00:00"  # an import sent without timestamps

    result = run(defaults(), events=arrays_from_rows(rows))

    assert result.metrics["holdout"] == "customer"
    assert "every event has the same time" in result.metrics["protocol"]
    assert result.metrics["model"]["users"] > 100
    assert result.metrics["model"]["ndcg@10"] > result.metrics["fallback"]["ndcg@10"]


def test_too_few_customers_on_both_sides_of_the_cut_fall_back_to_a_per_customer_holdout() -> None:
    """Customers who each come once (on one day): a time cut separates customers, not their
    past from their future."""
    rows = taste_events(customers=300)
    rng = np.random.default_rng(1)
    for row in rows:
        customer = int(str(row["customer_id"]).lstrip("c"))
        when = START + timedelta(days=customer % 60, minutes=int(rng.integers(0, 600)))
        row["timestamp"] = when.isoformat()
    events = arrays_from_rows(rows)

    assert len(time_split(events, 0.2).test_users) < MIN_TIME_HOLDOUT_CUSTOMERS
    split = holdout_split(events, 0.2, 42)
    assert split.kind == "customer"
    assert "customers with events on both sides" in split.protocol
    assert len(split.test_users) > 250
    held = split.test.multiply(split.train)
    assert held.nnz == 0  # nothing a customer is tested on was trained on


def test_a_time_cut_with_enough_customers_on_both_sides_is_kept() -> None:
    split = holdout_split(arrays_from_rows(taste_events(customers=300)), 0.2, 42)

    assert split.kind == "time"
    assert len(split.test_users) >= MIN_TIME_HOLDOUT_CUSTOMERS


# --------------------------------------------------------------------------- repeats


def test_repeat_rate_counts_returns_on_later_days() -> None:
    day = 86400.0
    events = EventArrays(
        np.array([1, 1, 1, 1, 2]),
        np.array([5, 5, 5, 6, 5]),
        np.ones(5, dtype=np.float32),
        np.array([0, 3600, 2 * day, 0, 0]),  # c1 buys i5 twice on day 0 and again on day 2
        np.ones(5, dtype=bool),
    )
    # distinct (customer, item, day): (1,5,0) (1,5,2) (1,6,0) (2,5,0): one of four is a return
    assert repeat_rate(events) == pytest.approx(0.25)
    assert repeat_rate(arrays_from_rows(taste_events())) < 0.2  # views and varied purchases
    assert repeat_rate(arrays_from_rows(basket_store_rows())) > 0.5


def test_a_repeat_heavy_store_is_evaluated_counting_repeats_against_buy_again() -> None:
    result = run(defaults(), events=arrays_from_rows(basket_store_rows()))

    assert result.data_counts["repeat_aware"] is True
    assert result.metrics["repeats_count"] is True
    assert result.metrics["fallback"]["name"] == "buy again, then decayed popularity"
    # Counting repeats, the customer's own staples are most of what comes next.
    assert result.metrics["fallback"]["ndcg@10"] > 2 * result.metrics["popularity"]["ndcg@10"]
    assert result.metrics["model"]["ndcg@10"] >= result.metrics["fallback"]["ndcg@10"] - 0.01  # own items first


def test_a_store_with_varied_purchases_is_evaluated_on_new_items() -> None:
    result = run(defaults(), events=arrays_from_rows(taste_events()))

    assert result.data_counts["repeat_aware"] is False
    assert result.metrics["repeats_count"] is False
    assert result.metrics["fallback"]["name"] == "decayed popularity"


def test_buy_again_ranks_the_customers_own_items_by_how_much_they_had_them() -> None:
    rows = basket_store_rows(customers=40)
    split = holdout_split(arrays_from_rows(rows), 0.2, 42, repeats=True)
    _name, scorer = fallback_scorer(split)
    scores = scorer(np.array([0]))[0]
    own = split.train[0].toarray()[0]
    ranked = np.argsort(-scores, kind="stable")
    n_own = int((own > 0).sum())
    assert set(ranked[:n_own]) == set(np.flatnonzero(own > 0))
    assert list(own[ranked[:n_own]]) == sorted(own[own > 0], reverse=True)


# --------------------------------------------------------------------------- the search


def test_the_search_stops_at_its_budget_after_each_candidates_defaults(taste: EventArrays) -> None:
    budgeted = run(defaults(tuning_budget_seconds=0), events=taste)
    tuning = budgeted.tuning

    assert tuning["stopped_by_budget"] is True
    assert {name: c["configs"] for name, c in tuning["candidates"].items()} == {
        "als": 1,
        "bpr": 1,
        "itemknn_bm25": 1,
        "ease": 1,
    }


def test_the_search_tries_several_parameter_sets_within_the_budget(taste: EventArrays) -> None:
    tuning = run(defaults(), events=taste).tuning

    assert tuning["stopped_by_budget"] is False
    assert tuning["tuned"] is True
    assert all(c["configs"] > 1 for name, c in tuning["candidates"].items() if name != "popularity")
    assert tuning["seconds"] < tuning["budget_seconds"]


@pytest.fixture(scope="module")
def taste() -> EventArrays:
    return arrays_from_rows(taste_events())
