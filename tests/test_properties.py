"""Properties (Hypothesis) of event weighting, recommendation filters and list pagination.

Each test states an invariant — a bound, a monotonicity, an algebraic law, a round trip or the
agreement of two code paths that must agree — never a second implementation of the rule.
Database-backed properties run in a store of their own, each example's rows rolled back.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pydantic
import pytest
from django.db import connection, transaction
from django.http import QueryDict
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from catalog.contracts import EVENT_TYPE_RE
from catalog.event_settings import ADD_TO_CART, DEFAULT_WEIGHTS, PURCHASE, RATING, REMOVE_FROM_CART, VIEW, EventSettings
from catalog.models import Customer, Event, Item
from catalog.selectors import customer_events, item_list
from recommendations.serving.filters import NO_FILTERS, filters_from_mapping, filters_from_query
from recommendations.training.data import EventArrays, Indexer, apply_time_decay, build_matrix, extract_events
from shelfwise.http.errors import Problem
from shelfwise.http.pagination import cursor_decode, cursor_encode
from tenants.models import Tenant
from tenants.services import tenant_delete
from tests.conftest import make_tenant

PURE = settings(max_examples=150, deadline=None)
# Database properties: fewer examples, each a few queries in a savepoint; the store fixture is
# module-scoped (committed once), so the function-scoped-fixture check does not apply.
DB = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(django_db_setup: None, django_db_blocker: Any) -> Iterator[Tenant]:
    """A store of its own for the database properties (deleted afterwards)."""
    with django_db_blocker.unblock():
        handle = make_tenant("prop")
    yield handle.tenant
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")


@contextmanager
def scratch(store: Tenant) -> Iterator[None]:
    """The store's schema for one example; everything written in it is rolled back."""
    with tenant_context(store), transaction.atomic():
        yield
        transaction.set_rollback(True)


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
    customer = Customer.objects.create(external_id="shopper", created_at=NOW, updated_at=NOW)
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
    store: Tenant, rows: list[tuple[str, float | None]], weights: dict[str, float]
) -> None:
    """Training computes weights in SQL, ingestion (popularity) and serving (fold-in) in Python:
    for every event and setting they agree, and zero-weight events are dropped."""
    chosen = EventSettings.model_validate({"weights": weights})
    with scratch(store):
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
def test_every_accepted_event_has_a_finite_training_weight(store: Tenant, value: float, rating_weight: float) -> None:
    chosen = EventSettings.model_validate({"weights": {RATING: rating_weight}})
    with scratch(store):
        _store_events([(RATING, value)])

        extracted = extract_events(chosen.weights)

    assert np.isfinite(extracted.weights).all()


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
def test_any_price_bound_the_api_accepts_can_be_applied(store: Tenant, raw: float | Decimal) -> None:
    bounds = filters_from_mapping({"price_min": raw, "price_max": raw})

    with scratch(store):
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
    store: Tenant, rows: list[dict[str, Any]], mapping: dict[str, Any], among: list[str]
) -> None:
    with scratch(store):
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
    store: Tenant, rows: list[dict[str, Any]], categories: list[str]
) -> None:
    with scratch(store):
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
    store: Tenant, rows: list[dict[str, Any]], values: list[str]
) -> None:
    with scratch(store):
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
    store: Tenant, rows: list[dict[str, Any]], low: Decimal, high: Decimal, wider: Decimal
) -> None:
    with scratch(store):
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
def test_a_list_property_matches_where_the_same_scalar_does(store: Tenant, value: Any) -> None:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    with scratch(store):
        _catalog(
            [
                {"categories": [], "price": None, "in_stock": True, "deleted": False, "properties": {"p": value}},
                {"categories": [], "price": None, "in_stock": True, "deleted": False, "properties": {"p": [value]}},
            ]
        )

        matched = _matching({"properties": {"p": [text]}})

    assert matched in ({"i0", "i1"}, set())  # both or neither
    assert "i0" in matched  # (the scalar form matches: the values are equal)


# =========================================================================== pagination

aware_datetimes = st.datetimes(
    # (Hypothesis takes naive bounds and attaches the zone; a day's margin keeps UTC in range.)
    min_value=datetime(1, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.timezones() | st.just(UTC),
)
row_ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@PURE
@given(aware_datetimes, row_ids)
def test_a_cursor_decodes_to_the_position_it_encodes(at: datetime, row_id: int) -> None:
    token = cursor_encode(at, row_id)

    decoded_at, decoded_id = cursor_decode(token, (datetime, int))

    assert decoded_at - at == timedelta(0)  # the same instant (== is False across zones in a DST fold)
    assert decoded_id == row_id
    assert token.isascii()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # URL-safe


def _b64(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
# PostgreSQL holds UTC offsets up to 15:59; Python's go to 23:59 (cursors are turned to UTC).
offsets = st.integers(-(16 * 60 - 1), 16 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
odd_timestamps = st.builds(lambda at, zone: at.replace(tzinfo=zone).isoformat(), st.datetimes(), offsets)
tokens = (
    st.text(max_size=40)
    | json_values.map(_b64)
    | st.tuples(odd_timestamps | st.text(max_size=30), json_values).map(lambda pair: _b64(list(pair)))
)


@pytest.mark.django_db
@DB
@given(token=tokens)
def test_any_cursor_is_a_page_or_a_400_never_an_error(store: Tenant, token: str) -> None:
    with scratch(store):
        try:
            results, status = item_list(cursor=token, limit=5).results, 200
        except Problem as problem:
            results, status = [], problem.status_code

    assert status in {200, 400}
    assert results == []


@pytest.mark.django_db
@settings(max_examples=10, deadline=None)
@example(minutes=16 * 60)
@given(minutes=st.integers(16 * 60, 24 * 60 - 1) | st.integers(-(24 * 60 - 1), -16 * 60))
def test_a_cursor_with_an_offset_postgres_cannot_hold_is_a_400(store: Tenant, minutes: int) -> None:
    stamp = datetime(2000, 1, 1, tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    with scratch(store):
        try:
            item_list(cursor=_b64([stamp, 1]), limit=5)
        except Problem as problem:
            status = problem.status_code
        else:
            status = 200

    assert status in {200, 400}


# Few distinct instants, so many rows share one: the tie-breaking id must carry the order.
instants = st.sampled_from([NOW - timedelta(microseconds=n) for n in (0, 1, 2, 1_000_000, 86_400_000_000)])


@pytest.mark.django_db
@DB
@given(
    rows=st.lists(st.tuples(instants, st.booleans(), st.booleans()), max_size=30),
    limit=st.integers(1, 8),
    include_deleted=st.booleans(),
    arrivals=st.lists(st.integers(0, 3), max_size=5),
)
def test_walking_item_pages_sees_every_item_once_in_order_even_as_items_arrive(
    store: Tenant,
    rows: list[tuple[datetime, bool, bool]],
    limit: int,
    include_deleted: bool,
    arrivals: list[int],
) -> None:
    with scratch(store):
        Item.objects.bulk_create(
            Item(external_id=f"i{n}", in_stock=stock, created_at=at, updated_at=at, deleted_at=at if gone else None)
            for n, (at, stock, gone) in enumerate(rows)
        )
        present = list(
            Item.objects.filter(**({} if include_deleted else {"deleted_at__isnull": True})).values_list(
                "updated_at", "id"
            )
        )
        seen: list[tuple[datetime, int]] = []
        pages, cursor = 0, None
        while True:
            page = item_list(include_deleted=include_deleted, cursor=cursor, limit=limit)
            pages += 1
            seen += [(item.updated_at, item.id) for item in page.results]
            assert len(page.results) == limit or page.next_cursor is None
            if page.next_cursor is None:
                break
            # New items arrive between the first pages (stamped later than everything listed so far).
            count = arrivals[pages - 1] if pages <= len(arrivals) else 0
            stamp = NOW + timedelta(seconds=pages)
            Item.objects.bulk_create(
                Item(external_id=f"new-{pages}-{k}", created_at=stamp, updated_at=stamp) for k in range(count)
            )
            cursor = page.next_cursor

    assert len(seen) == len(set(seen))  # no item twice
    assert seen == sorted(seen)  # in (updated_at, id) order
    assert set(present) <= set(seen)  # no item that was there all along is skipped
    assert pages == max(1, math.ceil(len(seen) / limit))  # full pages, and no empty one at the end


@pytest.mark.django_db
@DB
@given(events=st.lists(instants, max_size=25), limit=st.integers(1, 6))
def test_walking_a_customers_history_sees_every_event_once_newest_first(
    store: Tenant, events: list[datetime], limit: int
) -> None:
    with scratch(store):
        shopper = Customer.objects.create(external_id="shopper", created_at=NOW, updated_at=NOW)
        other = Customer.objects.create(external_id="other", created_at=NOW, updated_at=NOW)
        item = Item.objects.create(external_id="item", created_at=NOW, updated_at=NOW)
        Event.objects.bulk_create(
            Event(
                event_id=f"e{n}",
                customer=shopper if n % 3 else other,
                item=item,
                type="view",
                timestamp=at,
                received_at=NOW,
            )
            for n, at in enumerate(events)
        )
        expected = set(Event.objects.filter(customer=shopper).values_list("timestamp", "id"))
        seen: list[tuple[datetime, int]] = []
        cursor = None
        while True:
            page = customer_events(customer=shopper, cursor=cursor, limit=limit)
            seen += [(event.timestamp, event.id) for event in page.results]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert seen == sorted(seen, reverse=True)
