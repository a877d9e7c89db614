"""Recommendation filters: categories (any/all), price range, stock, property equals/in.

They are evaluated in SQL against the catalog's current items, and turned into a mask over a
model version's items (−∞ for the items ruled out) that the ONNX graph adds to its scores, so a
filtered answer is ranked among the matching items only and stays full-length when it can.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.db import connection

from catalog.models import Item
from shelfwise.http.errors import VALIDATION_ERROR, Problem

PROPERTY_PREFIX = "prop."
MAX_FILTER_VALUES = 50
_NAME_RE = re.compile(r"^[^\x00]{1,100}$")


@dataclass(frozen=True)
class Filters:
    categories: tuple[str, ...] = ()
    categories_match: str = "any"  # any | all
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool | None = None
    properties: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.categories or self.price_min is not None or self.price_max is not None
                    or self.in_stock is not None or self.properties)  # fmt: skip

    def key(self) -> str:
        """A short stable hash (part of cache keys)."""
        if self.empty:
            return "all"
        canonical = orjson.dumps(
            [sorted(self.categories), self.categories_match, str(self.price_min), str(self.price_max),
             self.in_stock, sorted((name, sorted(values)) for name, values in self.properties)]
        )  # fmt: skip
        return hashlib.blake2b(canonical, digest_size=8).hexdigest()

    def where(self, alias: str = "i") -> tuple[str, list[Any]]:
        """SQL conditions on the items table (always excluding deleted items)."""
        clauses = [f"{alias}.deleted_at IS NULL"]
        params: list[Any] = []
        if self.categories:
            operator = "&&" if self.categories_match == "any" else "@>"
            clauses.append(f"{alias}.categories {operator} %s::varchar[]")
            params.append(list(self.categories))
        if self.price_min is not None:
            clauses.append(f"{alias}.price >= %s")
            params.append(self.price_min)
        if self.price_max is not None:
            clauses.append(f"{alias}.price <= %s")
            params.append(self.price_max)
        if self.in_stock is not None:
            clauses.append(f"{alias}.in_stock = %s")
            params.append(self.in_stock)
        for name, values in self.properties:
            # A scalar property equal to one of the values, or a list property containing one —
            # compared as text either way, so 5 and true match in lists as they do as scalars.
            value = f"{alias}.properties -> %s"
            in_list = f"SELECT 1 FROM jsonb_array_elements_text({value}) AS element WHERE element = ANY(%s)"  # noqa: S608
            is_list = f"jsonb_typeof({value}) = 'array'"
            clauses.append(
                f"({alias}.properties ->> %s = ANY(%s) OR CASE WHEN {is_list} THEN EXISTS ({in_list}) ELSE false END)"
            )
            params += [name, list(values), name, name, list(values)]
        return " AND ".join(clauses), params

    def matching(self, external_ids: list[str] | None = None) -> set[str]:
        """External ids of live items matching the filters (optionally among ``external_ids``)."""
        where, params = self.where()
        sql = f"SELECT i.external_id FROM {Item._meta.db_table} i WHERE {where}"  # noqa: S608 - our table and clauses
        if external_ids is not None:
            sql += " AND i.external_id = ANY(%s)"
            params.append(list(external_ids))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row[0] for row in cursor.fetchall()}


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
        return value.lower() in {"true", "1"}
    raise _bad(name, "must be true or false")


def _price(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise _bad(name, "must be a number")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise _bad(name, "must be a number") from None
    if not price.is_finite() or price < 0:
        raise _bad(name, "must be a non-negative number")
    return price


def _bad(name: str, message: str) -> Problem:
    return Problem(VALIDATION_ERROR, errors=[{"field": name, "code": "invalid", "message": message}])


def _strings(values: Any, name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [part for part in values.split(",") if part]
    if not isinstance(values, list) or not values or len(values) > MAX_FILTER_VALUES:
        raise _bad(name, f"give 1 to {MAX_FILTER_VALUES} values")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _bad(name, "values must be strings or numbers")
        text = str(value)
        if not _NAME_RE.match(text):
            raise _bad(name, "values must have 1 to 100 characters")
        out.append(text)
    return tuple(out)


def filters_from_mapping(data: dict[str, Any], *, prefix: str = "") -> Filters:
    """Filters from a JSON body's ``filters`` object."""
    allowed = {"categories", "categories_match", "price_min", "price_max", "in_stock", "properties"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Problem(
            VALIDATION_ERROR,
            errors=[
                {"field": f"{prefix}{name}", "code": "unknown_field", "message": "not a filter"} for name in unknown
            ],
        )
    categories = _strings(data["categories"], f"{prefix}categories") if "categories" in data else ()
    match = data.get("categories_match", "any")
    if match not in {"any", "all"}:
        raise _bad(f"{prefix}categories_match", "must be any or all")
    properties = data.get("properties", {})
    if not isinstance(properties, dict) or len(properties) > 20:
        raise _bad(f"{prefix}properties", "must be an object of at most 20 properties")
    props = []
    for name, values in sorted(properties.items()):
        if not _NAME_RE.match(name):
            raise _bad(f"{prefix}properties", "property names have 1 to 100 characters")
        props.append((name, _strings(values if isinstance(values, list) else [values], f"{prefix}properties.{name}")))
    return Filters(
        categories=categories,
        categories_match=match,
        price_min=_price(data["price_min"], f"{prefix}price_min") if data.get("price_min") is not None else None,
        price_max=_price(data["price_max"], f"{prefix}price_max") if data.get("price_max") is not None else None,
        in_stock=_bool(data["in_stock"], f"{prefix}in_stock") if data.get("in_stock") is not None else None,
        properties=tuple(props),
    )


def filters_from_query(query: Any) -> Filters:
    """Filters from query parameters: ``category`` (repeatable or comma-separated),
    ``categories_match``, ``price_min``, ``price_max``, ``in_stock``, ``prop.<name>=v1,v2``."""
    if not query:
        return NO_FILTERS  # the common case, on the hot path
    data: dict[str, Any] = {}
    categories = [value for raw in query.getlist("category") for value in raw.split(",") if value]
    if categories:
        data["categories"] = categories
    for name in ("categories_match", "price_min", "price_max", "in_stock"):
        if name in query:
            data[name] = query.get(name)
    properties = {
        name.removeprefix(PROPERTY_PREFIX): [value for raw in query.getlist(name) for value in raw.split(",") if value]
        for name in query
        if name.startswith(PROPERTY_PREFIX)
    }
    if properties:
        data["properties"] = properties
    return filters_from_mapping(data)


NO_FILTERS = Filters()
FILTER_QUERY_PARAMS = {"category", "categories_match", "price_min", "price_max", "in_stock"}


def is_filter_param(name: str) -> bool:
    return name in FILTER_QUERY_PARAMS or name.startswith(PROPERTY_PREFIX)
