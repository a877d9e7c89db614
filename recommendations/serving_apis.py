"""The v1 recommendation API (``recommend`` scope; public keys may call it too)."""

from __future__ import annotations

import re
import threading
import time
from typing import Annotated, Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.event_settings import EventSettings, event_settings_for
from catalog.schemas import EXTERNAL_ID_RE, ExternalId, external_id_ok
from catalog.selectors import ITEM_FIELDS, items_fields
from recommendations.serving import engine
from recommendations.serving.filters import Filters, filters_from_mapping, filters_from_query, is_filter_param
from shelfwise.api import ApiView, parse_body
from shelfwise.errors import NOT_FOUND, VALIDATION_ERROR, Problem
from tenants import keys
from tenants.authentication import principal_of

SCENARIO_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_EXCLUDE = 100
BATCH_MAX = 100

_weights: dict[int, tuple[float, EventSettings]] = {}
_weights_lock = threading.Lock()


def _event_weights(principal: Any) -> EventSettings:
    """The store's event settings (for fold-in weights), reused for a few seconds."""
    cached = _weights.get(principal.tenant_id)
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    value = event_settings_for(principal.tenant)
    with _weights_lock:
        _weights[principal.tenant_id] = (time.monotonic(), value)
    return value


# --------------------------------------------------------------------------- output


class RecommendedItem(serializers.Serializer[Any]):
    item_id = serializers.CharField()
    score = serializers.FloatField()
    title = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    categories = serializers.ListField(child=serializers.CharField(), required=False)
    price = serializers.FloatField(required=False, allow_null=True)
    currency = serializers.CharField(required=False)
    in_stock = serializers.BooleanField(required=False)
    properties = serializers.DictField(required=False)


class RecommendationsOut(serializers.Serializer[Any]):
    recommendation_id = serializers.CharField(help_text="send it back with events that follow (attribution)")
    scenario = serializers.CharField()
    variant = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    strategy = serializers.ChoiceField(choices=["model", "fallback", "popularity"])
    items = RecommendedItem(many=True)


class BatchOut(serializers.Serializer[Any]):
    results = serializers.ListField(child=serializers.DictField())


def _payload(
    served: engine.Served, fields: tuple[str, ...], tenant_fields: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    items = []
    for item_id, score in served.items:
        entry: dict[str, Any] = {"item_id": item_id, "score": round(score, 6)}
        if fields:
            entry.update({name: value for name, value in tenant_fields.get(item_id, {}).items() if name in fields})
        items.append(entry)
    return {
        "recommendation_id": served.recommendation_id,
        "scenario": served.route.scenario,
        "variant": served.route.variant,
        "model_version": served.version,
        "strategy": served.strategy,
        "items": items,
    }


def _respond(served_list: list[engine.Served], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    looked_up: dict[str, dict[str, Any]] = {}
    if fields:
        ids = sorted({item for served in served_list for item, _ in served.items})
        looked_up = items_fields(external_ids=ids, fields=fields)
    return [_payload(served, fields, looked_up) for served in served_list]


# --------------------------------------------------------------------------- query parsing


class _ListQuery(serializers.Serializer[Any]):
    count = serializers.IntegerField(min_value=1, max_value=engine.MAX_COUNT, default=10)
    exclude = serializers.CharField(required=False, help_text="comma-separated item ids to leave out")
    category = serializers.CharField(required=False, help_text="filter; repeat or comma-separate for several")
    categories_match = serializers.ChoiceField(choices=["any", "all"], required=False, default="any")
    price_min = serializers.DecimalField(max_digits=16, decimal_places=4, min_value=0, required=False)
    price_max = serializers.DecimalField(max_digits=16, decimal_places=4, min_value=0, required=False)
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)


class CustomerQuery(_ListQuery):
    scenario = serializers.RegexField(SCENARIO_RE.pattern, required=False, default="default")
    exclude_seen = serializers.BooleanField(required=False, default=True)


class SimilarQuery(_ListQuery):
    customer = serializers.RegexField(EXTERNAL_ID_RE, required=False, help_text="personalise for this customer")


# `fields` cannot be a serializer field (it would shadow Serializer.fields): parsed on its own.
_FIELDS_PARAMETER = OpenApiParameter(
    "fields",
    OpenApiTypes.STR,
    description=f"comma-separated item fields to include: {', '.join(ITEM_FIELDS)}",
    required=False,
)
_PROPERTY_PARAMETER = OpenApiParameter(
    "prop.{name}",
    OpenApiTypes.STR,
    description="filter on a property: `prop.colour=red,blue` keeps items whose `colour` is one of them",
    required=False,
)


def _parse(request: Request, serializer_class: type[serializers.Serializer[Any]]) -> tuple[dict[str, Any], Filters]:
    allowed = set(serializer_class().fields)
    unknown = sorted(
        name for name in request.query_params if name not in allowed | {"fields"} and not is_filter_param(name)
    )
    if unknown:
        raise Problem(
            VALIDATION_ERROR,
            errors=[
                {"field": name, "code": "unknown_field", "message": "not a parameter of this endpoint"}
                for name in unknown
            ],
        )
    empty = sorted(name for name, value in request.query_params.items() if value == "")
    if empty:
        raise Problem(
            VALIDATION_ERROR, errors=[{"field": n, "code": "blank", "message": "must not be empty"} for n in empty]
        )
    data = {name: value for name, value in request.query_params.items() if name in allowed}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    query = dict(serializer.validated_data)
    query["fields"] = request.query_params.get("fields")
    return query, filters_from_query(request.query_params)


def _ids(raw: str | None, name: str) -> frozenset[str]:
    if not raw:
        return frozenset()
    values = [value for value in raw.split(",") if value]
    if len(values) > MAX_EXCLUDE or not all(external_id_ok(value) for value in values):
        raise Problem(
            VALIDATION_ERROR,
            errors=[{"field": name, "code": "invalid", "message": f"up to {MAX_EXCLUDE} comma-separated item ids"}],
        )
    return frozenset(values)


def _fields(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    names = tuple(dict.fromkeys(part for part in raw.split(",") if part))
    unknown = [name for name in names if name not in ITEM_FIELDS]
    if unknown:
        raise Problem(
            VALIDATION_ERROR,
            errors=[
                {
                    "field": "fields",
                    "code": "invalid",
                    "message": f"unknown field(s) {', '.join(unknown)}; use {', '.join(ITEM_FIELDS)}",
                }
            ],
        )
    return names


def _path_id(value: str) -> str:
    if not external_id_ok(value):
        raise Problem(NOT_FOUND)
    return value


# --------------------------------------------------------------------------- views


class CustomerRecommendationsApi(ApiView):
    """GET /customers/{customer_id}/recommendations"""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(
        operation_id="customer_recommendations",
        parameters=[CustomerQuery, _FIELDS_PARAMETER, _PROPERTY_PARAMETER],
        responses=RecommendationsOut,
        tags=["recommendations"],
        description="Personalised recommendations. Unknown customers (and stores without a model) get "
        "popular items, with `strategy: fallback`. `exclude_seen` (default true) leaves out what the "
        "customer already interacted with.",
    )
    def get(self, request: Request, customer_id: str) -> Response:
        query, filters = _parse(request, CustomerQuery)
        principal = principal_of(request)
        served = engine.recommend(
            engine.CustomerRequest(
                tenant_id=principal.tenant_id,
                customer_id=_path_id(customer_id),
                scenario=query["scenario"],
                count=query["count"],
                filters=filters,
                exclude=_ids(query.get("exclude"), "exclude"),
                exclude_seen=query["exclude_seen"],
            ),
            weights=_event_weights(principal),
        )
        response = Response(_respond([served], _fields(query.get("fields")))[0])
        response["X-Shelfwise-Cache"] = served.cache  # hit | miss | none (Redis unavailable)
        return response


class SimilarItemsApi(ApiView):
    """GET /items/{item_id}/similar"""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(
        operation_id="similar_items",
        parameters=[SimilarQuery, _FIELDS_PARAMETER, _PROPERTY_PARAMETER],
        responses=RecommendationsOut,
        tags=["recommendations"],
        description="Items similar to this one; with `customer`, re-ranked for that customer and without "
        "what they already interacted with.",
    )
    def get(self, request: Request, item_id: str) -> Response:
        query, filters = _parse(request, SimilarQuery)
        principal = principal_of(request)
        try:
            served = engine.similar(
                principal.tenant_id,
                item_id=_path_id(item_id),
                count=query["count"],
                filters=filters,
                exclude=_ids(query.get("exclude"), "exclude"),
                customer_id=query.get("customer"),
                weights=_event_weights(principal),
            )
        except LookupError:
            raise Problem(NOT_FOUND) from None
        return Response(_respond([served], _fields(query.get("fields")))[0])


class _PopularBase(ApiView):
    required_scopes = keys.SCOPE_RECOMMEND
    kind = "popular"

    def get(self, request: Request) -> Response:
        query, filters = _parse(request, _ListQuery)
        served = engine.popular(
            principal_of(request).tenant_id,
            kind=self.kind,
            count=query["count"],
            filters=filters,
            exclude=_ids(query.get("exclude"), "exclude"),
        )
        return Response(_respond([served], _fields(query.get("fields")))[0])


class PopularApi(_PopularBase):
    """GET /recommendations/popular — most popular items (time decay with a 30-day half-life)."""

    kind = "popular"

    @extend_schema(
        operation_id="popular_items",
        parameters=[_ListQuery, _FIELDS_PARAMETER, _PROPERTY_PARAMETER],
        responses=RecommendationsOut,
        tags=["recommendations"],
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class TrendingApi(_PopularBase):
    """GET /recommendations/trending — what is popular right now (1-day half-life)."""

    kind = "trending"

    @extend_schema(
        operation_id="trending_items",
        parameters=[_ListQuery, _FIELDS_PARAMETER, _PROPERTY_PARAMETER],
        responses=RecommendationsOut,
        tags=["recommendations"],
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class _Strict(BaseModel):
    # strict: JSON types as documented (a price is a number, not a numeric string)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FilterBody(_Strict):
    categories: Annotated[list[str], Field(max_length=50)] | None = None
    categories_match: str = "any"
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    in_stock: StrictBool | None = None
    properties: dict[str, list[str] | str] | None = None


class SessionIn(_Strict):
    items: Annotated[
        list[ExternalId], Field(min_length=1, max_length=100, description="the session's items, any order")
    ]
    count: Annotated[int, Field(ge=1, le=engine.MAX_COUNT)] = 10
    exclude: Annotated[list[ExternalId], Field(max_length=MAX_EXCLUDE)] = Field(default_factory=list)
    fields: Annotated[list[str], Field(max_length=len(ITEM_FIELDS))] = Field(default_factory=list)
    filters: FilterBody | None = None


class BatchRequest(_Strict):
    customer_id: ExternalId
    scenario: Annotated[str, Field(pattern=SCENARIO_RE.pattern)] = "default"
    count: Annotated[int, Field(ge=1, le=engine.MAX_COUNT)] = 10
    exclude: Annotated[list[ExternalId], Field(max_length=MAX_EXCLUDE)] = Field(default_factory=list)
    exclude_seen: StrictBool = True
    filters: FilterBody | None = None


class BatchIn(_Strict):
    requests: Annotated[list[BatchRequest], Field(min_length=1, max_length=BATCH_MAX)]
    fields: Annotated[list[str], Field(max_length=len(ITEM_FIELDS))] = Field(default_factory=list)


def _body_filters(body: FilterBody | None, prefix: str) -> Filters:
    if body is None:
        return Filters()
    return filters_from_mapping(body.model_dump(exclude_none=True), prefix=prefix)


class SessionRecommendationsApi(ApiView):
    """POST /recommendations/session — for an anonymous visitor, from the items they looked at."""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(
        operation_id="session_recommendations",
        request=SessionIn,
        responses=RecommendationsOut,
        tags=["recommendations"],
    )
    def post(self, request: Request) -> Response:
        body: SessionIn = parse_body(request, SessionIn)
        fields = _fields(",".join(body.fields))
        served = engine.session(
            principal_of(request).tenant_id,
            items=body.items,
            count=body.count,
            filters=_body_filters(body.filters, "filters."),
            exclude=frozenset(body.exclude),
        )
        return Response(_respond([served], fields)[0])


class BatchRecommendationsApi(ApiView):
    """POST /recommendations:batch — many customers in one call."""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(operation_id="batch_recommendations", request=BatchIn, responses=BatchOut, tags=["recommendations"])
    def post(self, request: Request) -> Response:
        body: BatchIn = parse_body(request, BatchIn)
        fields = _fields(",".join(body.fields))
        principal = principal_of(request)
        weights = _event_weights(principal)
        served = [
            engine.recommend(
                engine.CustomerRequest(
                    tenant_id=principal.tenant_id,
                    customer_id=entry.customer_id,
                    scenario=entry.scenario,
                    count=entry.count,
                    filters=_body_filters(entry.filters, f"requests.{index}.filters."),
                    exclude=frozenset(entry.exclude),
                    exclude_seen=entry.exclude_seen,
                ),
                weights=weights,
            )
            for index, entry in enumerate(body.requests)
        ]
        results = _respond(served, fields)
        for entry, result in zip(body.requests, results, strict=True):
            result["customer_id"] = entry.customer_id
        return Response({"results": results})
