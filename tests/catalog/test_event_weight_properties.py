"""Properties (Hypothesis) of event weighting: the weights a store may set, how an event is weighed,
and training weighing every stored event exactly as ingestion and serving do.

Each test states an invariant — a bound, a monotonicity, an algebraic law, a round trip or the
agreement of two code paths that must agree — never a second implementation of the rule.
Database-backed properties run in a store of their own, each example's rows rolled back.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from catalog.contracts import EVENT_TYPE_RE
from catalog.event_settings import ADD_TO_CART, DEFAULT_WEIGHTS, PURCHASE, RATING, REMOVE_FROM_CART, VIEW, EventSettings
from catalog.models import Event, Item
from recommendations.training.data import extract_events
from tenants.models import Tenant
from tests.factories import CustomerFactory
from tests.helpers import DB_EXAMPLES, PURE_EXAMPLES, scratch

PURE = settings(**PURE_EXAMPLES)
DB = settings(**DB_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# =========================================================================== event weighting

event_types = st.from_regex(EVENT_TYPE_RE, fullmatch=True)
weights_in_range = st.floats(min_value=-100, max_value=100, allow_nan=False)
weight_maps = st.dictionaries(st.sampled_from(sorted(DEFAULT_WEIGHTS)) | event_types, weights_in_range, max_size=8)
finite = st.floats(allow_nan=False, allow_infinity=False)
ratings = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)  # far beyond any rating scale


@PURE
@given(weight_maps)
def test_accepted_weights_keep_every_built_in_type_and_stay_in_range(weights: dict[str, float]) -> None:
    chosen = EventSettings.model_validate({"weights": weights})

    assert set(DEFAULT_WEIGHTS) <= set(chosen.weights)  # built-ins can be re-weighted, not removed
    assert all(-100 <= w <= 100 for w in chosen.weights.values())
    assert {t: chosen.weights[t] for t in weights} == weights  # what the store set is what it gets
    # Stored as JSON on the tenant and read back: the same settings (validation is idempotent).
    assert EventSettings.model_validate(orjson.loads(orjson.dumps(chosen.model_dump()))) == chosen


out_of_range = (
    st.floats(min_value=100, exclude_min=True) | st.floats(max_value=-100, exclude_max=True) | st.just(math.nan)
)


@PURE
@given(weight_maps, event_types, out_of_range)
def test_weights_outside_the_range_are_refused(weights: dict[str, float], event_type: str, bad: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        EventSettings.model_validate({"weights": {**weights, event_type: bad}})


@PURE
@given(weight_maps, event_types, st.none() | finite, st.none() | finite)
def test_only_a_rating_weight_depends_on_the_events_value(
    weights: dict[str, float], event_type: str, value: float | None, other: float | None
) -> None:
    assume(event_type != RATING)
    chosen = EventSettings.model_validate({"weights": weights})

    assert chosen.weight(event_type, value) == chosen.weight(event_type, other)
    assert abs(chosen.weight(event_type, value)) <= 100
    if event_type not in chosen.weights:
        assert chosen.weight(event_type, value) == 0  # an unknown type expresses nothing


@PURE
@given(weight_maps, ratings, ratings)
def test_a_rating_weight_is_monotone_in_the_rating(weights: dict[str, float], low: float, high: float) -> None:
    low, high = sorted((low, high))
    chosen = EventSettings.model_validate({"weights": weights})
    base = chosen.weights[RATING]

    lower, upper = chosen.weight(RATING, low), chosen.weight(RATING, high)

    if base >= 0:
        assert lower <= upper
    else:
        assert lower >= upper
    assert chosen.weight(RATING, None) == 0
    assert abs(upper) <= 100 * abs(high)


@PURE
@given(st.floats(min_value=1e-6, max_value=1e6))
def test_default_weights_rank_purchase_over_cart_over_view_and_removal_below_zero(rating: float) -> None:
    default = EventSettings()
    weight = default.weight

    assert weight(PURCHASE, None) > weight(ADD_TO_CART, None) > weight(VIEW, None) > 0 > weight(REMOVE_FROM_CART, None)
    assert weight(RATING, rating) > 0


# Weights and ratings of a realistic size (any stored value is bounded when weighed: see the
# finite-weight test below).
sized = st.just(0.0) | st.floats(min_value=1e-6, max_value=100) | st.floats(min_value=-100, max_value=-1e-6)
sized_weight_maps = st.dictionaries(st.sampled_from(sorted(DEFAULT_WEIGHTS)) | event_types, sized, max_size=8)
event_rows = st.lists(
    st.tuples(st.sampled_from([*sorted(DEFAULT_WEIGHTS), "wishlist", "share", "unknown_type"]), st.none() | sized),
    min_size=1,
    max_size=12,
)


def _store_events(rows: list[tuple[str, float | None]]) -> dict[int, tuple[str, float | None]]:
    """One customer, one item per row (the matrix keeps one cell per row); id -> (type, value)."""
    customer = CustomerFactory(external_id="shopper")
    items = Item.objects.bulk_create(
        Item(external_id=f"item-{i}", created_at=NOW, updated_at=NOW) for i in range(len(rows))
    )
    Event.objects.bulk_create(
        Event(
            event_id=f"e-{i}",
            customer=customer,
            item=item,
            type=kind,
            value=value,
            timestamp=NOW,
            received_at=NOW,
        )
        for i, (item, (kind, value)) in enumerate(zip(items, rows, strict=True))
    )
    return {item.id: row for item, row in zip(items, rows, strict=True)}


@pytest.mark.django_db
@DB
@given(rows=event_rows, weights=sized_weight_maps | st.just({"wishlist": 3.0, "share": -0.5}))
def test_training_weighs_every_event_as_ingestion_and_serving_do(
    module_store: Tenant, rows: list[tuple[str, float | None]], weights: dict[str, float]
) -> None:
    """Training computes weights in SQL, ingestion (popularity) and serving (fold-in) in Python:
    for every event and setting they agree, and zero-weight events are dropped."""
    chosen = EventSettings.model_validate({"weights": weights})
    with scratch(module_store):
        stored = _store_events(rows)

        extracted = extract_events(chosen.weights)

    expected = {
        item: float(np.float32(chosen.weight(kind, value)))
        for item, (kind, value) in stored.items()
        if chosen.weight(kind, value) != 0
    }
    assert dict(zip(extracted.items.tolist(), extracted.weights.tolist(), strict=True)) == expected


@pytest.mark.django_db
@settings(max_examples=20, deadline=None)
@example(value=1e307, rating_weight=100.0)  # float8 overflow in the SQL: every training fails
@example(value=5e-324, rating_weight=0.25)  # float8 underflow in the SQL
@example(value=1e39, rating_weight=1.0)  # the default weight: +inf in the float32 matrix
@given(value=finite, rating_weight=weights_in_range)
def test_every_accepted_event_has_a_finite_training_weight(
    module_store: Tenant, value: float, rating_weight: float
) -> None:
    chosen = EventSettings.model_validate({"weights": {RATING: rating_weight}})
    with scratch(module_store):
        _store_events([(RATING, value)])

        extracted = extract_events(chosen.weights)

    assert np.isfinite(extracted.weights).all()
