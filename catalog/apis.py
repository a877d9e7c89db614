"""The v1 catalog API: items, customers, events (thin views over services and selectors)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import Field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors
from catalog.contracts import (
    EVENT_TYPE_RE,
    MAX_BATCH_ROWS,
    NO_NUL_RE,
    CustomerBatch,
    CustomerBatchIn,
    CustomerIn,
    CustomerPut,
    EventBatch,
    EventBatchIn,
    EventBatchResult,
    ItemBatch,
    ItemBatchIn,
    ItemIn,
    ItemPut,
    RowError,
    UpsertBatchResult,
    external_id_ok,
    validate_rows,
)
from catalog.models import Customer, Event, Item
from catalog.services.context import IngestContext
from catalog.services.customers import customer_erase, customer_upsert, customers_upsert
from catalog.services.events import events_ingest
from catalog.services.items import item_delete, item_upsert, items_upsert
from catalog.services.rows import BatchResult
from shelfwise.http.errors import NOT_FOUND, VALIDATION_ERROR, Problem, problem_type
from shelfwise.http.input import OpenApiSchema, QueryDateTime, QueryModel, QueryOptionalBool, parse_body, parse_query
from shelfwise.http.openapi import query_parameters
from shelfwise.http.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shelfwise.http.views import ApiView, OutputSerializer
from tenants import keys

QUOTA_EXCEEDED = problem_type(
    "quota_exceeded", 403, "Quota exceeded", "The store's plan does not allow more; see the plan's limits."
)
BATCH_BODY_BYTES = 16 * 1024 * 1024


def _path_id(value: str) -> str:
    """A path id that cannot exist (bad characters, too long) is simply not found."""
    if not external_id_ok(value):
        raise Problem(NOT_FOUND)
    return value


def _row_error_problem(error: RowError) -> Problem:
    kind = QUOTA_EXCEEDED if error.code == "quota_exceeded" else VALIDATION_ERROR
    return Problem(kind, error.message, errors=[{**error.as_dict(), "index": None}])


# --------------------------------------------------------------------------- output shapes


class ItemOut(OutputSerializer):
    item_id = serializers.CharField(source="external_id")
    price = serializers.DecimalField(max_digits=16, decimal_places=4, coerce_to_string=False, allow_null=True)
    properties = serializers.DictField()
    categories = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Item
        fields: ClassVar[list[str]] = [
            "item_id",
            "title",
            "description",
            "categories",
            "price",
            "currency",
            "in_stock",
            "properties",
            "created_at",
            "updated_at",
            "deleted_at",
        ]


class CustomerOut(OutputSerializer):
    customer_id = serializers.CharField(source="external_id")
    properties = serializers.DictField()

    class Meta:
        model = Customer
        fields: ClassVar[list[str]] = ["customer_id", "anonymous", "properties", "created_at", "updated_at"]


class EventOut(OutputSerializer):
    item_id = serializers.CharField(source="item.external_id")
    properties = serializers.DictField()

    class Meta:
        model = Event
        fields: ClassVar[list[str]] = [
            "event_id",
            "item_id",
            "type",
            "value",
            "timestamp",
            "recommendation_id",
            "session_id",
            "order_id",
            "properties",
            "received_at",
        ]


def _page_serializer(name: str, item: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    return type(
        name,
        (serializers.Serializer,),
        {"results": item(many=True), "next_cursor": serializers.CharField(allow_null=True)},
    )


ItemPageOut = _page_serializer("ItemPage", ItemOut)
CustomerPageOut = _page_serializer("CustomerPage", CustomerOut)
EventPageOut = _page_serializer("EventPage", EventOut)


def _batch_response(result: BatchResult, *, events: bool) -> Response:
    """200 with per-row errors when anything was accepted; a problem when nothing was."""
    errors, truncated = result.errors_payload()
    if result.received and result.accepted == 0:
        codes = {error.code for error in result.errors}
        kind = QUOTA_EXCEEDED if codes == {"quota_exceeded"} else VALIDATION_ERROR
        raise Problem(kind, "No row of the batch was accepted; see `errors`.", errors=errors)
    body: dict[str, Any] = {
        "received": result.received,
        "rejected": result.rejected,
        "errors": errors,
        "errors_truncated": truncated,
    }
    if events:
        body |= {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "customers_created": result.extra.get("customers_created", 0),
            "items_created": result.extra.get("items_created", 0),
        }
    else:
        body |= {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    return Response(body)


# --------------------------------------------------------------------------- query shapes


# Documented exactly as when these were DRF serializers (docs/openapi.yaml is the contract).
_DATETIME_DOC = OpenApiSchema({"type": "string", "format": "date-time"})
_OPTIONAL_BOOL_DOC = OpenApiSchema({"type": ["boolean", "null"]})


class _PageQuery(QueryModel):
    limit: Annotated[
        int,
        Field(ge=1, le=MAX_LIMIT),
        OpenApiSchema({"type": "integer", "maximum": MAX_LIMIT, "minimum": 1, "default": DEFAULT_LIMIT}),
    ] = DEFAULT_LIMIT
    cursor: Annotated[
        str | None,
        Field(max_length=500, pattern=NO_NUL_RE),
        OpenApiSchema({"type": "string", "minLength": 1, "maxLength": 500}),
    ] = None


class ItemListQuery(_PageQuery):
    category: Annotated[
        str | None,
        Field(max_length=200, pattern=NO_NUL_RE),
        OpenApiSchema({"type": "string", "minLength": 1, "maxLength": 200}),
    ] = None
    in_stock: Annotated[QueryOptionalBool, _OPTIONAL_BOOL_DOC] = None
    updated_since: Annotated[QueryDateTime | None, _DATETIME_DOC] = None
    include_deleted: Annotated[bool, OpenApiSchema({"type": "boolean", "default": False})] = False


class CustomerListQuery(_PageQuery):
    updated_since: Annotated[QueryDateTime | None, _DATETIME_DOC] = None
    anonymous: Annotated[QueryOptionalBool, _OPTIONAL_BOOL_DOC] = None


class EventListQuery(_PageQuery):
    type: Annotated[
        str | None,
        Field(pattern=EVENT_TYPE_RE),
        OpenApiSchema({"type": "string", "minLength": 1, "pattern": EVENT_TYPE_RE}),
    ] = None
    since: Annotated[QueryDateTime | None, _DATETIME_DOC] = None
    until: Annotated[QueryDateTime | None, _DATETIME_DOC] = None


_ID_PARAM = {"type": str, "location": OpenApiParameter.PATH}


# --------------------------------------------------------------------------- items


class ItemDetailApi(ApiView):
    """GET / PUT (create or replace) / DELETE (soft) one item by the store's id."""

    required_scopes = keys.SCOPE_INGEST

    @extend_schema(operation_id="item_get", responses=ItemOut, tags=["items"])
    def get(self, request: Request, item_id: str) -> Response:
        parse_query(request)
        item = selectors.item_get(external_id=_path_id(item_id))
        if item is None:
            raise Problem(NOT_FOUND)
        return Response(ItemOut(item).data)

    @extend_schema(
        operation_id="item_put",
        request=ItemPut,
        responses={200: ItemOut, 201: ItemOut},
        tags=["items"],
        description="Create the item or replace all its fields (omitted fields reset to their defaults).",
    )
    def put(self, request: Request, item_id: str) -> Response:
        parse_query(request)
        external_id = _path_id(item_id)
        fields: ItemPut = parse_body(request, ItemPut)
        if fields.item_id is not None and fields.item_id != external_id:
            raise Problem(
                VALIDATION_ERROR,
                errors=[{"field": "item_id", "code": "mismatch", "message": "differs from the id in the path"}],
            )
        context = IngestContext.load()
        item, created, error = item_upsert(external_id=external_id, fields=fields, max_items=context.max_items)
        if error is not None:
            raise _row_error_problem(error)
        return Response(ItemOut(item).data, status=201 if created else 200)

    @extend_schema(operation_id="item_delete", responses={204: None}, tags=["items"])
    def delete(self, request: Request, item_id: str) -> Response:
        parse_query(request)
        if not item_delete(external_id=_path_id(item_id)):
            raise Problem(NOT_FOUND)
        return Response(status=204)


class ItemBatchApi(ApiView):
    """POST /items:batch — upsert up to 10,000 items."""

    required_scopes = keys.SCOPE_INGEST
    max_body_bytes = BATCH_BODY_BYTES

    @extend_schema(operation_id="items_batch", request=ItemBatch, responses=UpsertBatchResult, tags=["items"])
    def post(self, request: Request) -> Response:
        parse_query(request)
        batch: ItemBatchIn = parse_body(request, ItemBatchIn)
        valid, errors = validate_rows(ItemIn, batch.items)
        context = IngestContext.load()
        result = items_upsert(
            rows=[(index, row.item_id, row) for index, row in valid],
            max_items=context.max_items,
        )
        result.received = len(batch.items)
        result.errors.extend(errors)
        return _batch_response(result, events=False)


class ItemListApi(ApiView):
    """GET /items — keyset-paginated, filterable by category, stock and update time."""

    required_scopes = keys.SCOPE_INGEST

    @extend_schema(
        operation_id="items_list", parameters=query_parameters(ItemListQuery), responses=ItemPageOut, tags=["items"]
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, ItemListQuery)
        page = selectors.item_list(
            category=query.category,
            in_stock=query.in_stock,
            updated_since=query.updated_since,
            include_deleted=query.include_deleted,
            cursor=query.cursor,
            limit=query.limit,
        )
        return Response({"results": ItemOut(page.results, many=True).data, "next_cursor": page.next_cursor})


# --------------------------------------------------------------------------- customers


class CustomerDetailApi(ApiView):
    """GET / PUT / DELETE (erasure) one customer by the store's id."""

    required_scopes = keys.SCOPE_INGEST

    @extend_schema(operation_id="customer_get", responses=CustomerOut, tags=["customers"])
    def get(self, request: Request, customer_id: str) -> Response:
        parse_query(request)
        customer = selectors.customer_get(external_id=_path_id(customer_id))
        if customer is None:
            raise Problem(NOT_FOUND)
        return Response(CustomerOut(customer).data)

    @extend_schema(
        operation_id="customer_put",
        request=CustomerPut,
        responses={200: CustomerOut, 201: CustomerOut},
        tags=["customers"],
    )
    def put(self, request: Request, customer_id: str) -> Response:
        parse_query(request)
        external_id = _path_id(customer_id)
        fields: CustomerPut = parse_body(request, CustomerPut)
        if fields.customer_id is not None and fields.customer_id != external_id:
            raise Problem(
                VALIDATION_ERROR,
                errors=[{"field": "customer_id", "code": "mismatch", "message": "differs from the id in the path"}],
            )
        context = IngestContext.load()
        customer, created, error = customer_upsert(
            external_id=external_id, fields=fields, max_customers=context.max_customers
        )
        if error is not None:
            raise _row_error_problem(error)
        return Response(CustomerOut(customer).data, status=201 if created else 200)

    @extend_schema(
        operation_id="customer_erase",
        responses={204: None},
        tags=["customers"],
        description="Erase the customer, their events and every cached or derived trace of them. "
        "Answers 204 also when there is nothing (left) to erase.",
    )
    def delete(self, request: Request, customer_id: str) -> Response:
        parse_query(request)
        if external_id_ok(customer_id):
            customer_erase(external_id=customer_id)
        return Response(status=204)


class CustomerBatchApi(ApiView):
    required_scopes = keys.SCOPE_INGEST
    max_body_bytes = BATCH_BODY_BYTES

    @extend_schema(
        operation_id="customers_batch", request=CustomerBatch, responses=UpsertBatchResult, tags=["customers"]
    )
    def post(self, request: Request) -> Response:
        parse_query(request)
        batch: CustomerBatchIn = parse_body(request, CustomerBatchIn)
        valid, errors = validate_rows(CustomerIn, batch.customers)
        context = IngestContext.load()
        result = customers_upsert(
            rows=[(index, row.customer_id, row) for index, row in valid], max_customers=context.max_customers
        )
        result.received = len(batch.customers)
        result.errors.extend(errors)
        return _batch_response(result, events=False)


class CustomerListApi(ApiView):
    required_scopes = keys.SCOPE_INGEST

    @extend_schema(
        operation_id="customers_list",
        parameters=query_parameters(CustomerListQuery),
        responses=CustomerPageOut,
        tags=["customers"],
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, CustomerListQuery)
        page = selectors.customer_list(
            updated_since=query.updated_since,
            anonymous=query.anonymous,
            cursor=query.cursor,
            limit=query.limit,
        )
        return Response({"results": CustomerOut(page.results, many=True).data, "next_cursor": page.next_cursor})


class CustomerEventsApi(ApiView):
    """GET /customers/{id}/events — the customer's history, newest first."""

    required_scopes = keys.SCOPE_INGEST

    @extend_schema(
        operation_id="customer_events",
        parameters=query_parameters(EventListQuery),
        responses=EventPageOut,
        tags=["customers"],
    )
    def get(self, request: Request, customer_id: str) -> Response:
        query = parse_query(request, EventListQuery)
        customer = selectors.customer_get(external_id=_path_id(customer_id))
        if customer is None:
            raise Problem(NOT_FOUND)
        page = selectors.customer_events(
            customer=customer,
            event_type=query.type,
            since=query.since,
            until=query.until,
            cursor=query.cursor,
            limit=query.limit,
        )
        return Response({"results": EventOut(page.results, many=True).data, "next_cursor": page.next_cursor})


# --------------------------------------------------------------------------- events


class EventCreateApi(ApiView):
    """POST /events — 1 to 10,000 events; idempotent by event_id."""

    required_scopes = keys.SCOPE_EVENTS
    max_body_bytes = BATCH_BODY_BYTES

    @extend_schema(
        operation_id="events_create",
        request=EventBatch,
        responses={200: OpenApiResponse(EventBatchResult, description="the batch was processed; see per-row errors")},
        tags=["events"],
        description=f"Store 1 to {MAX_BATCH_ROWS} events. Valid rows are stored and the rest reported by index; "
        "re-sent `event_id`s count as duplicates, never twice. Unknown customers and items are created unless "
        "the store's settings turn that off.",
    )
    def post(self, request: Request) -> Response:
        parse_query(request)
        batch: EventBatchIn = parse_body(request, EventBatchIn)
        context = IngestContext.load()
        result = events_ingest(rows=batch.events, context=context)
        return _batch_response(result, events=True)
