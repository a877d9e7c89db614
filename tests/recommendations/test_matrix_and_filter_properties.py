"""Properties (Hypothesis) of the training matrix and its time decay, and of recommendation
filters (query and body forms, cache keys, and what they select in a real catalog).

Each test states an invariant, never a second implementation of the rule. Database-backed
properties run in a store of their own, each example's rows rolled back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog.models import Item
from recommendations.serving.filters import NO_FILTERS, filters_from_mapping, filters_from_query
from recommendations.training.data import EventArrays, Indexer, apply_time_decay, build_matrix
from shelfwise.http.errors import Problem
from tenants.models import Tenant
from tests.helpers import DB_EXAMPLES, PURE_EXAMPLES, scratch

PURE = settings(**PURE_EXAMPLES)
DB = settings(**DB_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- matrix and decay

# Multiples of 0.5 are exact in float32, so sums do not depend on the order they are added in.
halves = st.integers(min_value=-200, max_value=200).map(lambda n: n / 2)
event_arrays = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), halves, st.floats(0, 1e6)), min_size=0, max_size=40
)


def _arrays(rows: list[tuple[int, int, float, float]]) -> EventArrays:
    columns = list(zip(*rows, strict=True)) or [(), (), (), ()]
    return EventArrays(
        np.array(columns[0], dtype=np.int64),
        np.array(columns[1], dtype=np.int64),
        np.array(columns[2], dtype=np.float32),
        np.array(columns[3], dtype=np.float64),
    )


def _cells(events: EventArrays, indexer: Indexer) -> dict[tuple[int, int], float]:
    matrix = build_matrix(events, indexer).tocoo()
    return {
        (int(indexer.customer_ids[r]), int(indexer.item_ids[c])): float(v)
        for r, c, v in zip(matrix.row, matrix.col, matrix.data, strict=True)
    }


@PURE
@given(event_arrays, st.randoms(use_true_random=False))
def test_the_matrix_is_positive_bounded_and_independent_of_event_order(rows: list[Any], rnd: Any) -> None:
    events = _arrays(rows)
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    indexer = Indexer.of(events)

    cells = _cells(events, indexer)

    assert cells == _cells(_arrays(shuffled), indexer)
    assert build_matrix(events, indexer).shape == (len(set(events.customers)), len(set(events.items)))
    for (customer, item), value in cells.items():
        positive = sum(w for c, i, w, _t in rows if (c, i) == (customer, item) and w > 0)
        assert 0 < value <= positive  # removals never go below zero; no cell exceeds what was added


@PURE
@given(event_arrays, st.tuples(st.integers(0, 4), st.integers(0, 4), halves, st.floats(0, 1e6)))
def test_one_more_event_moves_only_its_own_cell_in_the_direction_of_its_weight(
    rows: list[Any], extra: tuple[int, int, float, float]
) -> None:
    both = _arrays([*rows, extra])
    indexer = Indexer.of(both)  # the same rows and columns for both matrices

    before, after = _cells(_arrays(rows), indexer), _cells(both, indexer)

    pair = (extra[0], extra[1])
    assert {k: v for k, v in before.items() if k != pair} == {k: v for k, v in after.items() if k != pair}
    if extra[2] >= 0:
        assert after.get(pair, 0.0) >= before.get(pair, 0.0)
    else:
        assert after.get(pair, 0.0) <= before.get(pair, 0.0)


@PURE
@given(
    st.lists(st.tuples(halves, st.floats(0, 1e8)), min_size=1, max_size=30),
    st.floats(min_value=0.01, max_value=3650),
    st.floats(min_value=0.01, max_value=3650),
)
def test_time_decay_shrinks_older_events_more_and_keeps_signs(
    rows: list[tuple[float, float]], half_life: float, longer_by: float
) -> None:
    events = _arrays([(0, 0, w, t) for w, t in rows])
    now = float(events.times.max())

    decayed = apply_time_decay(events, half_life, now=now)
    slower = apply_time_decay(events, half_life + longer_by, now=now)

    original, shrunk, kept_more = np.abs(events.weights), np.abs(decayed.weights), np.abs(slower.weights)
    assert (shrunk <= original).all()
    assert (kept_more >= shrunk).all()  # a longer half-life forgets less
    assert (np.sign(decayed.weights) * np.sign(events.weights) >= 0).all()
    newest = events.times == now
    assert (decayed.weights[newest] == events.weights[newest]).all()
    # For equal weights, the older event never counts more than the newer one.
    order = np.argsort(events.times, kind="stable")
    unit = apply_time_decay(_arrays([(0, 0, 1.0, t) for _w, t in rows]), half_life, now=now).weights[order]
    assert (np.diff(unit) >= 0).all()
    assert apply_time_decay(events, None, now=now) is events


# =========================================================================== filters

category_names = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=","), min_size=1, max_size=20
)
prices = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def filter_mappings(draw: st.DrawFn, categories: st.SearchStrategy[str] = category_names) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    if draw(st.booleans()):
        mapping["categories"] = draw(st.lists(categories, min_size=1, max_size=4))
        mapping["categories_match"] = draw(st.sampled_from(["any", "all"]))
    for bound in ("price_min", "price_max"):
        if draw(st.booleans()):
            mapping[bound] = str(draw(prices))
    if draw(st.booleans()):
        mapping["in_stock"] = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(["color", "size", "brand"]), unique=True, max_size=2))
    if names:
        mapping["properties"] = {
            name: draw(st.lists(st.sampled_from(["red", "blue", "1", "2", "x y"]), min_size=1, max_size=3))
            for name in names
        }
    return mapping


def _query(mapping: dict[str, Any], *, comma_joined: bool) -> QueryDict:
    query = QueryDict(mutable=True)
    if "categories" in mapping:
        if comma_joined:
            query["category"] = ",".join(mapping["categories"])
        else:
            query.setlist("category", mapping["categories"])
    for name in ("categories_match", "price_min", "price_max"):
        if name in mapping:
            query[name] = mapping[name]
    if "in_stock" in mapping:
        query["in_stock"] = "true" if mapping["in_stock"] else "false"
    for name, values in mapping.get("properties", {}).items():
        query[f"prop.{name}"] = ",".join(values)
    return query


@PURE
@given(filter_mappings(), st.booleans())
def test_query_parameters_and_a_json_body_give_the_same_filters(mapping: dict[str, Any], comma_joined: bool) -> None:
    from_body = filters_from_mapping(mapping)

    assert filters_from_query(_query(mapping, comma_joined=comma_joined)) == from_body
    assert from_body.empty == (from_body.key() == "all") == (from_body == NO_FILTERS)


@PURE
@given(filter_mappings(), st.randoms(use_true_random=False))
def test_the_cache_key_ignores_the_order_of_categories_and_values(mapping: dict[str, Any], rnd: Any) -> None:
    shuffled = dict(mapping)
    if "categories" in mapping:
        shuffled["categories"] = rnd.sample(mapping["categories"], len(mapping["categories"]))
    if "properties" in mapping:
        items = list(mapping["properties"].items())
        rnd.shuffle(items)
        shuffled["properties"] = {name: rnd.sample(values, len(values)) for name, values in items}

    assert filters_from_mapping(shuffled).key() == filters_from_mapping(mapping).key()


@PURE
@given(filter_mappings())
def test_filters_that_select_differently_have_different_cache_keys(mapping: dict[str, Any]) -> None:
    base = {k: v for k, v in mapping.items() if k != "in_stock"}
    variants = [filters_from_mapping(base if s is None else {**base, "in_stock": s}) for s in (None, True, False)]

    assert len({f.key() for f in variants}) == 3


@PURE
@given(st.decimals(allow_nan=True, allow_infinity=True) | st.floats() | st.text(max_size=12) | st.booleans())
def test_a_price_bound_is_a_non_negative_number_or_a_400(raw: Any) -> None:
    try:
        parsed, status = filters_from_mapping({"price_min": raw}), 200
    except Problem as problem:
        parsed, status = None, problem.status_code

    assert status in {200, 400}
    if parsed is not None:
        assert parsed.price_min is not None
        assert parsed.price_min.is_finite()
        assert parsed.price_min >= 0
        assert parsed.price_min == Decimal(str(raw))


# What the API lets through to the filters: a JSON number (any finite float) or a query parameter
# of at most 16 digits and 4 places. (filters_from_mapping alone takes any finite Decimal, e.g.
# 1e999999, which PostgreSQL's numeric cannot hold; the API's schemas stop it first.)
api_prices = st.floats(min_value=0, allow_nan=False, allow_infinity=False) | st.decimals(
    min_value=0, max_value=Decimal("999999999999.9999"), places=4
)


@pytest.mark.django_db
@DB
@given(raw=api_prices)
def test_any_price_bound_the_api_accepts_can_be_applied(module_store: Tenant, raw: float | Decimal) -> None:
    bounds = filters_from_mapping({"price_min": raw, "price_max": raw})

    with scratch(module_store):
        _catalog([{"categories": [], "price": Decimal(0), "in_stock": True, "deleted": False, "properties": {}}])

        matched = bounds.matching()

    assert matched == ({"i0"} if Decimal(str(raw)) == 0 else set())


# --------------------------------------------------------------------------- filters on a catalog

POOL = ["a", "b", "c", "d"]
item_rows = st.lists(
    st.fixed_dictionaries(
        {
            "categories": st.lists(st.sampled_from(POOL), unique=True, max_size=3),
            "price": st.none() | st.sampled_from([Decimal(0), Decimal("1.5"), Decimal(10), Decimal("99.99")]),
            "in_stock": st.booleans(),
            "deleted": st.sampled_from([False, False, False, True]),
            "properties": st.fixed_dictionaries(
                {},
                optional={
                    "color": st.sampled_from(["red", "blue"]) | st.lists(st.sampled_from(["red", "blue"]), max_size=2),
                    "size": st.sampled_from(["1", "2"]) | st.lists(st.sampled_from(["1", "2"]), max_size=2),
                },
            ),
        }
    ),
    max_size=12,
)
catalog_filters = filter_mappings(st.sampled_from(POOL)).filter(
    lambda m: "x y" not in str(m.get("properties"))  # (values without spaces: comma-free query form)
)


def _catalog(rows: list[dict[str, Any]]) -> set[str]:
    """Store the items; the external ids of the live ones."""
    Item.objects.bulk_create(
        Item(
            external_id=f"i{n}",
            categories=row["categories"],
            price=row["price"],
            in_stock=row["in_stock"],
            properties=row["properties"],
            created_at=NOW,
            updated_at=NOW,
            deleted_at=NOW if row["deleted"] else None,
        )
        for n, row in enumerate(rows)
    )
    return {f"i{n}" for n, row in enumerate(rows) if not row["deleted"]}


def _each_constraint(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """The filter split into one-constraint filters (their conjunction is the filter)."""
    parts: list[dict[str, Any]] = []
    if "categories" in mapping:
        parts.append({"categories": mapping["categories"], "categories_match": mapping["categories_match"]})
    parts += [{name: mapping[name]} for name in ("price_min", "price_max", "in_stock") if name in mapping]
    parts += [{"properties": {name: values}} for name, values in mapping.get("properties", {}).items()]
    return parts


def _matching(mapping: dict[str, Any], among: list[str] | None = None) -> set[str]:
    return filters_from_mapping(mapping).matching(among)


@pytest.mark.django_db
@DB
@given(rows=item_rows, mapping=catalog_filters, among=st.lists(st.sampled_from([f"i{n}" for n in range(14)])))
def test_a_filter_is_the_conjunction_of_its_constraints_over_live_items(
    module_store: Tenant, rows: list[dict[str, Any]], mapping: dict[str, Any], among: list[str]
) -> None:
    with scratch(module_store):
        live = _catalog(rows)

        everything = NO_FILTERS.matching()
        matched = _matching(mapping)
        separately = [_matching(part) for part in _each_constraint(mapping)]
        restricted = _matching(mapping, among)

    assert everything == live  # deleted items never match, not even with no filter
    assert matched == everything.intersection(*separately)
    assert restricted == matched & set(among)


@pytest.mark.django_db
@DB
@given(rows=item_rows, categories=st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
def test_any_is_the_union_and_all_the_intersection_of_single_categories(
    module_store: Tenant, rows: list[dict[str, Any]], categories: list[str]
) -> None:
    with scratch(module_store):
        _catalog(rows)

        singles = [_matching({"categories": [c]}) for c in categories]
        any_of = _matching({"categories": categories, "categories_match": "any"})
        all_of = _matching({"categories": categories, "categories_match": "all"})

    assert any_of == set().union(*singles)
    assert all_of == singles[0].intersection(*singles[1:])


@pytest.mark.django_db
@DB
@given(rows=item_rows, values=st.lists(st.sampled_from(["red", "blue", "green"]), min_size=1, max_size=3, unique=True))
def test_property_values_are_alternatives_and_stock_splits_the_catalog(
    module_store: Tenant, rows: list[dict[str, Any]], values: list[str]
) -> None:
    with scratch(module_store):
        live = _catalog(rows)

        either = _matching({"properties": {"color": values}})
        each = [_matching({"properties": {"color": [v]}}) for v in values]
        in_stock, out_of_stock = _matching({"in_stock": True}), _matching({"in_stock": False})

    assert either == set().union(*each)
    assert in_stock | out_of_stock == live
    assert not in_stock & out_of_stock


@pytest.mark.django_db
@DB
@given(rows=item_rows, low=prices, high=prices, wider=prices)
def test_a_price_range_is_both_bounds_and_widening_it_never_loses_items(
    module_store: Tenant, rows: list[dict[str, Any]], low: Decimal, high: Decimal, wider: Decimal
) -> None:
    with scratch(module_store):
        _catalog(rows)

        both = _matching({"price_min": low, "price_max": high})
        at_least, at_most = _matching({"price_min": low}), _matching({"price_max": high})
        widened = _matching({"price_min": max(low - wider, Decimal(0)), "price_max": high + wider})

    assert both == at_least & at_most
    assert both <= widened
    if low > high:
        assert both == set()


@pytest.mark.django_db
@settings(max_examples=20, deadline=None)
@example(value=5)
@given(value=st.integers(-1000, 1000) | st.booleans() | st.text(st.characters(categories=("L", "N")), min_size=1))
def test_a_list_property_matches_where_the_same_scalar_does(module_store: Tenant, value: Any) -> None:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    with scratch(module_store):
        _catalog(
            [
                {"categories": [], "price": None, "in_stock": True, "deleted": False, "properties": {"p": value}},
                {"categories": [], "price": None, "in_stock": True, "deleted": False, "properties": {"p": [value]}},
            ]
        )

        matched = _matching({"properties": {"p": [text]}})

    assert matched in ({"i0", "i1"}, set())  # both or neither
    assert "i0" in matched  # (the scalar form matches: the values are equal)
