"""The v1 recommendation API (``recommend`` scope; public keys may call it too)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from cachetools import TTLCache
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.contracts import EXTERNAL_ID_RE, ExternalId, external_id_ok
from catalog.event_settings import EventSettings, event_settings_for
from catalog.selectors import ITEM_FIELDS, items_fields
from recommendations.serving import cache, engine
from recommendations.serving.config import STAMP_PRELUDE_BODY, serving_stamp_key
from recommendations.serving.filters import Filters, filters_from_mapping, filters_from_query, is_filter_param
from shelfwise.http.errors import NOT_FOUND, VALIDATION_ERROR, Problem
from shelfwise.http.input import QueryModel, parse_body, parse_query
from shelfwise.http.openapi import query_parameters
from shelfwise.http.ratelimit import RedisPrelude, accepts_plain_json, precharge
from shelfwise.http.views import ApiView
from tenants import customer_tokens, keys
from tenants.authentication import ApiKeyPrincipal, principal_activate, principal_of, remembered_principal
from tenants.customer_tokens import TokenCheck, token_check

SCENARIO_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_EXCLUDE = 100
BATCH_MAX = 100

# The stores' event settings (fold-in weights), reused for a few seconds per process.
_weights: TTLCache[int, EventSettings] = TTLCache(maxsize=10_000, ttl=5.0)
_weights_lock = threading.Lock()


def _event_weights(principal: Any) -> EventSettings:
    """The store's event settings (for fold-in weights), reused for a few seconds."""
    with _weights_lock:
        cached = _weights.get(principal.tenant_id)
    if cached is not None:
        return cached
    value = event_settings_for(principal.tenant)
    with _weights_lock:
        _weights[principal.tenant_id] = value
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


class ListQuery(QueryModel):
    count: Annotated[int, Field(ge=1, le=engine.MAX_COUNT, description="how many items (1-100)")] = 10
    exclude: Annotated[str | None, Field(description="comma-separated item ids to leave out (up to 100)")] = None
    fields: Annotated[
        str | None, Field(description=f"comma-separated item fields to include: {', '.join(ITEM_FIELDS)}")
    ] = None
    category: Annotated[str | None, Field(description="filter; repeat or comma-separate for several")] = None
    categories_match: Annotated[
        Literal["any", "all"], Field(description="items in any of the categories, or in all of them")
    ] = "any"
    price_min: Annotated[Decimal | None, Field(ge=0, max_digits=16, decimal_places=4)] = None
    price_max: Annotated[Decimal | None, Field(ge=0, max_digits=16, decimal_places=4)] = None
    in_stock: Annotated[bool | None, Field(description="only items in stock (true) or out of stock (false)")] = None


class CustomerQuery(ListQuery):
    scenario: Annotated[
        str, Field(pattern=SCENARIO_RE.pattern, description="where the list is shown (routing and experiments)")
    ] = "default"
    exclude_seen: Annotated[
        bool | None,
        Field(
            description="leave out what the customer already interacted with; unset: the store's default "
            "(settings `training.exclude_seen`: yes, unless repeat purchases are common in the store)"
        ),
    ] = None


class SimilarQuery(ListQuery):
    customer: Annotated[
        str | None, Field(pattern=EXTERNAL_ID_RE, max_length=255, description="personalise for this customer")
    ] = None


_Q = TypeVar("_Q", bound=ListQuery)

_PROPERTY_PARAMETER = OpenApiParameter(
    "prop.{name}",
    OpenApiTypes.STR,
    description="filter on a property: `prop.colour=red,blue` keeps items whose `colour` is one of them",
    required=False,
)


CUSTOMER_TOKEN_PARAMETER = OpenApiParameter(
    customer_tokens.HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="public keys: `ct1.<expiry>.<signature>`, minted by the store's server for this customer "
    "with the key's signing secret (see the README, API keys); secret keys need none",
)


def _parameters(model: type[ListQuery]) -> list[OpenApiParameter]:
    return [*query_parameters(model), _PROPERTY_PARAMETER]


def _parse(request: Request | HttpRequest, model: type[_Q]) -> tuple[_Q, Filters]:
    query = parse_query(request, model, also_allowed=is_filter_param)
    return query, filters_from_query(request.GET)


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


def _token_check(request: Request | HttpRequest, principal: ApiKeyPrincipal, customer_id: str) -> TokenCheck | None:
    """For a public key, whether the request holds a valid customer token for ``customer_id``
    (None for a secret key: it may read any customer's lists)."""
    if not principal.is_public_key:
        return None
    return _check(principal, request.META.get(customer_tokens.META_KEY), customer_id)


def _check(principal: ApiKeyPrincipal, token: str | None, customer_id: str) -> TokenCheck:
    return token_check(
        token, key_id=principal.record.key_id, secret_hash=principal.record.secret_hash, customer_id=customer_id
    )


def _token_headers(check: TokenCheck | None) -> dict[str, str]:
    return {} if check is None else {TOKEN_STATUS_HEADER: check.value}


# Says, to a public key's caller, whether its customer token was used (valid) or why not:
# missing | invalid | expired — never anything about the shopper.
TOKEN_STATUS_HEADER = "X-Shelfwise-Customer-Token"  # noqa: S105 - a header name


@dataclass(frozen=True)
class _Planned:
    request: engine.CustomerRequest
    fields: tuple[str, ...]
    plan: engine.CustomerPlan
    token: TokenCheck | None


def _customer_plan(request: Request | HttpRequest, customer_id: str, principal: ApiKeyPrincipal) -> _Planned:
    """Parse and route a customer request (no I/O beyond the routing table): what to serve,
    which fields to add, the cache entry to look up, and (for a public key) whether its customer
    token allows the personal list."""
    query, filters = _parse(request, CustomerQuery)
    customer_id = _path_id(customer_id)
    check = _token_check(request, principal, customer_id)
    customer_request = engine.CustomerRequest(
        tenant_id=principal.tenant_id,
        customer_id=customer_id,
        scenario=query.scenario,
        count=query.count,
        filters=filters,
        exclude=_ids(query.exclude, "exclude"),
        exclude_seen=query.exclude_seen,
        personal=check in {None, TokenCheck.VALID},
    )
    return _Planned(customer_request, _fields(query.fields), engine.plan(customer_request), check)


def _lookup_prelude(planned: engine.CustomerPlan) -> RedisPrelude:
    """The cache lookup, run in the rate limit's Redis call."""
    return RedisPrelude(cache.PRELUDE_LOOKUP_BODY, planned.lookup.keys, planned.lookup.args)


class CustomerRecommendationsApi(ApiView):
    """GET /customers/{customer_id}/recommendations"""

    required_scopes = keys.SCOPE_RECOMMEND

    @classmethod
    def fast_answer(cls, request: HttpRequest, customer_id: str) -> HttpResponse | None:
        """A cache hit for a key this process knows, answered before Django's routing and DRF's
        machinery (``shelfwise.http.fastpath``; the hot path: the key's confirmation, the rate limit
        and the cached list in one Redis call, at a fraction of the full path's cost). Anything
        else — an unknown key, an error, a miss, a 429 — returns None and goes through DRF,
        which then reuses the charge and the Redis reply obtained here."""
        if not accepts_plain_json(request):
            return None
        principal = remembered_principal(request)
        if principal is None or not principal.has_scope(cls.required_scopes):
            return None
        principal_activate(request, principal)
        try:
            planned = _customer_plan(request, customer_id, principal)
        except Problem:
            return None  # DRF answers with the same problem
        result = precharge(request, principal, _lookup_prelude(planned.plan))
        if result is None or result.reconfirmed or not result.prelude_ran:
            return None
        served = engine.served_from_cache(planned.request, planned.plan, planned.plan.lookup.result(result.prelude))
        if served is None:
            return None
        headers = {"X-Shelfwise-Cache": "hit", **_token_headers(planned.token)}
        return cls.fast_response(_respond([served], planned.fields)[0], result.state, headers)

    def redis_prelude(self, request: Request) -> RedisPrelude:
        # Parsed and routed before the rate limit, so that its Redis call also reads the cache.
        self._planned = _customer_plan(request, self.kwargs["customer_id"], principal_of(request))
        return _lookup_prelude(self._planned.plan)

    @extend_schema(
        operation_id="customer_recommendations",
        responses=RecommendationsOut,
        tags=["recommendations"],
        description="Personalised recommendations. Unknown customers (and stores without a model) get "
        "popular items, with `strategy: fallback`. `exclude_seen` leaves out what the customer already "
        "interacted with; unset, the store's default applies (yes, unless repeat purchases are common in the "
        "store: then a customer's own items come first, even without a model). A public key gets the "
        "personal list only with a valid `Shelfwise-Customer-Token` for the customer (minted by the "
        "store's server); without one, the non-personal answer, the same whether or not the customer exists.",
        parameters=[*_parameters(CustomerQuery), CUSTOMER_TOKEN_PARAMETER],
    )
    def get(self, request: Request, customer_id: str) -> Response:
        planned = self._planned
        found = None
        if self.prelude is not None and self.prelude.prelude_ran:
            found = planned.plan.lookup.result(self.prelude.prelude)
        served = engine.recommend(
            planned.request, weights=lambda: _event_weights(principal_of(request)), planned=planned.plan, found=found
        )
        response = Response(_respond([served], planned.fields)[0])
        response["X-Shelfwise-Cache"] = served.cache  # hit | miss | none (not cached, or Redis unavailable)
        for name, value in _token_headers(planned.token).items():
            response[name] = value
        return response


class _StampedApi(ApiView):
    """A list computed per request: its rate-limit call also reads the store's serving stamp, so
    the routing used is never older than the last committed change (see serving.config)."""

    def redis_prelude(self, request: Request) -> RedisPrelude:
        return RedisPrelude(STAMP_PRELUDE_BODY, (serving_stamp_key(principal_of(request).tenant_id),), ())

    def serving_stamp(self) -> str | None:
        if self.prelude is None or not self.prelude.prelude_ran:
            return None  # Redis unavailable: the routing read in the last few seconds
        raw = self.prelude.prelude
        return raw.decode() if isinstance(raw, bytes) else str(raw)


class SimilarItemsApi(_StampedApi):
    """GET /items/{item_id}/similar"""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(
        operation_id="similar_items",
        parameters=[*_parameters(SimilarQuery), CUSTOMER_TOKEN_PARAMETER],
        responses=RecommendationsOut,
        tags=["recommendations"],
        description="Items similar to this one; with `customer`, re-ranked for that customer and without "
        "what they already interacted with (for a public key, only with the customer's "
        "`Shelfwise-Customer-Token`; without it `customer` is ignored).",
    )
    def get(self, request: Request, item_id: str) -> Response:
        query, filters = _parse(request, SimilarQuery)
        principal = principal_of(request)
        check = _token_check(request, principal, query.customer) if query.customer else None
        try:
            served = engine.similar(
                principal.tenant_id,
                item_id=_path_id(item_id),
                count=query.count,
                filters=filters,
                exclude=_ids(query.exclude, "exclude"),
                # A public key re-ranks for a customer only with their token (else: ignored).
                customer_id=query.customer if check in {None, TokenCheck.VALID} else None,
                weights=_event_weights(principal),
                stamp=self.serving_stamp(),
            )
        except LookupError:
            raise Problem(NOT_FOUND) from None
        response = Response(_respond([served], _fields(query.fields))[0])
        for name, value in _token_headers(check).items():
            response[name] = value
        return response


class _PopularBase(_StampedApi):
    required_scopes = keys.SCOPE_RECOMMEND
    kind = "popular"

    def get(self, request: Request) -> Response:
        query, filters = _parse(request, ListQuery)
        served = engine.popular(
            principal_of(request).tenant_id,
            kind=self.kind,
            count=query.count,
            filters=filters,
            exclude=_ids(query.exclude, "exclude"),
            stamp=self.serving_stamp(),
        )
        return Response(_respond([served], _fields(query.fields))[0])


class PopularApi(_PopularBase):
    """GET /recommendations/popular — most popular items (time decay with a 30-day half-life)."""

    kind = "popular"

    @extend_schema(
        operation_id="popular_items",
        parameters=_parameters(ListQuery),
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
        parameters=_parameters(ListQuery),
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
    exclude_seen: StrictBool | None = None  # None: the store's default
    filters: FilterBody | None = None
    customer_token: Annotated[
        str | None,
        Field(
            max_length=customer_tokens.MAX_TOKEN_LENGTH,
            description="public keys: the customer's token (else this row gets the non-personal answer)",
        ),
    ] = None


class BatchIn(_Strict):
    requests: Annotated[list[BatchRequest], Field(min_length=1, max_length=BATCH_MAX)]
    fields: Annotated[list[str], Field(max_length=len(ITEM_FIELDS))] = Field(default_factory=list)


def _batch_row_personal(principal: ApiKeyPrincipal, entry: BatchRequest) -> bool:
    return not principal.is_public_key or _check(principal, entry.customer_token, entry.customer_id) == TokenCheck.VALID


def _body_filters(body: FilterBody | None, prefix: str) -> Filters:
    if body is None:
        return Filters()
    return filters_from_mapping(body.model_dump(exclude_none=True), prefix=prefix)


class SessionRecommendationsApi(_StampedApi):
    """POST /recommendations/session — for an anonymous visitor, from the items they looked at."""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(
        operation_id="session_recommendations",
        request=SessionIn,
        responses=RecommendationsOut,
        tags=["recommendations"],
    )
    def post(self, request: Request) -> Response:
        parse_query(request)  # everything is in the body
        body: SessionIn = parse_body(request, SessionIn)
        fields = _fields(",".join(body.fields))
        served = engine.session(
            principal_of(request).tenant_id,
            items=body.items,
            count=body.count,
            filters=_body_filters(body.filters, "filters."),
            exclude=frozenset(body.exclude),
            stamp=self.serving_stamp(),
        )
        return Response(_respond([served], fields)[0])


class BatchRecommendationsApi(ApiView):
    """POST /recommendations:batch — many customers in one call."""

    required_scopes = keys.SCOPE_RECOMMEND

    @extend_schema(operation_id="batch_recommendations", request=BatchIn, responses=BatchOut, tags=["recommendations"])
    def post(self, request: Request) -> Response:
        parse_query(request)
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
                    personal=_batch_row_personal(principal, entry),
                ),
                weights=weights,
            )
            for index, entry in enumerate(body.requests)
        ]
        results = _respond(served, fields)
        for entry, result in zip(body.requests, results, strict=True):
            result["customer_id"] = entry.customer_id
        return Response({"results": results})
