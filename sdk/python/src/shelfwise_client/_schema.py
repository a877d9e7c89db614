# Generated from docs/openapi.yaml by datamodel-code-generator 0.89.0: do not edit by hand.
# Regenerate with `make sdk` (sdk/python/scripts/generate_schema.py); tests/e2e/test_sdk_python.py
# fails when this file and the schema differ.

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

AlgorithmEnum: TypeAlias = Literal["als", "bpr", "itemknn_cosine", "itemknn_bm25", "ease", "popularity", "auto"]
"""
* `als` - als
* `bpr` - bpr
* `itemknn_cosine` - itemknn_cosine
* `itemknn_bm25` - itemknn_bm25
* `ease` - ease
* `popularity` - popularity
* `auto` - auto
"""


class BatchOut(TypedDict):
    results: list[dict[str, Any]]


ExcludeItem: TypeAlias = str


class CustomerIn(TypedDict):
    anonymous: NotRequired[bool]
    """
    an anonymous/session id rather than a known shopper
    """
    properties: NotRequired[dict[str, str | float | bool | list[str | float | bool | None] | None]]
    """
    Typed free-form attributes: strings, numbers, booleans, null, or lists of those.
    """
    customer_id: str


class CustomerOut(TypedDict):
    customer_id: str
    anonymous: bool
    properties: dict[str, Any]
    created_at: str
    updated_at: str


class CustomerPage(TypedDict):
    results: list[CustomerOut]
    next_cursor: str | None


class CustomerPutRequest(TypedDict):
    anonymous: NotRequired[bool]
    """
    an anonymous/session id rather than a known shopper
    """
    properties: NotRequired[dict[str, str | float | bool | list[str | float | bool | None] | None]]
    """
    Typed free-form attributes: strings, numbers, booleans, null, or lists of those.
    """
    customer_id: NotRequired[str | None]


class EventIn(TypedDict):
    """
    One shopper event.
    """

    event_id: NotRequired[str | None]
    """
    your id for this event; re-sending the same id never counts twice
    """
    customer_id: str
    item_id: str
    type: str
    """
    view, add_to_cart, purchase, rating, remove_from_cart or a custom type
    """
    value: NotRequired[float | None]
    """
    the rating for `rating` events; free otherwise
    """
    timestamp: NotRequired[str | None]
    """
    ISO 8601 with offset; defaults to now
    """
    recommendation_id: NotRequired[str | None]
    """
    the recommendation this event follows from (attribution)
    """
    session_id: NotRequired[str | None]
    """
    your id of the shopper's visit: events of one session belong together
    """
    order_id: NotRequired[str | None]
    """
    your id of the order (basket) a purchase belongs to: what was bought together
    """
    properties: NotRequired[dict[str, str | float | bool | list[str | float | bool | None] | None]]
    """
    Typed free-form attributes: strings, numbers, booleans, null, or lists of those.
    """


class EventOut(TypedDict):
    event_id: str
    item_id: str
    type: str
    value: float | None
    timestamp: str
    recommendation_id: str | None
    session_id: str | None
    order_id: str | None
    properties: dict[str, Any]
    received_at: str


class EventPage(TypedDict):
    results: list[EventOut]
    next_cursor: str | None


ExperimentOutStatusEnum: TypeAlias = Literal["draft", "running", "stopped"]
"""
* `draft` - Draft
* `running` - Running
* `stopped` - Stopped
"""


class FilterBody(TypedDict):
    categories: NotRequired[list[str] | None]
    categories_match: NotRequired[str]
    price_min: NotRequired[float | None]
    price_max: NotRequired[float | None]
    in_stock: NotRequired[bool | None]
    properties: NotRequired[dict[str, list[str] | str] | None]


Category: TypeAlias = str


class ItemIn(TypedDict):
    """
    An item in POST /items:batch.
    """

    title: NotRequired[str]
    description: NotRequired[str]
    categories: NotRequired[list[Category]]
    price: NotRequired[float | None]
    currency: NotRequired[str | None]
    """
    ISO 4217 code, e.g. GBP
    """
    in_stock: NotRequired[bool]
    properties: NotRequired[dict[str, str | float | bool | list[str | float | bool | None] | None]]
    """
    Typed free-form attributes: strings, numbers, booleans, null, or lists of those.
    """
    item_id: str


class ItemOut(TypedDict):
    item_id: str
    title: str
    description: str
    categories: list[str]
    price: float | None
    currency: str
    in_stock: bool
    properties: dict[str, Any]
    created_at: str
    updated_at: str
    deleted_at: str | None


class ItemPage(TypedDict):
    results: list[ItemOut]
    next_cursor: str | None


class ItemPutRequest(TypedDict):
    """
    PUT /items/{item_id}: ``item_id`` may be repeated in the body but must match the path.
    """

    title: NotRequired[str]
    description: NotRequired[str]
    categories: NotRequired[list[Category]]
    price: NotRequired[float | None]
    currency: NotRequired[str | None]
    """
    ISO 4217 code, e.g. GBP
    """
    in_stock: NotRequired[bool]
    properties: NotRequired[dict[str, str | float | bool | list[str | float | bool | None] | None]]
    """
    Typed free-form attributes: strings, numbers, booleans, null, or lists of those.
    """
    item_id: NotRequired[str | None]


JobOutStatusEnum: TypeAlias = Literal["queued", "running", "succeeded", "failed"]
"""
* `queued` - Queued
* `running` - Running
* `succeeded` - Succeeded
* `failed` - Failed
"""


class Output(TypedDict):
    tenant: str
    tenant_name: str
    key_prefix: str
    key_kind: str
    scopes: list[str]


class Error(TypedDict):
    index: NotRequired[int]
    """
    row of the batch
    """
    field: str | None
    code: str
    message: str


class Problem(TypedDict):
    """
    RFC 9457 problem details; `code` is stable and machine-readable.
    """

    type: str
    """
    URI reference documenting the problem type
    """
    title: str
    status: int
    detail: str
    code: str
    """
    stable machine-readable error code
    """
    request_id: NotRequired[str | None]
    errors: NotRequired[list[Error]]
    """
    per-field (and, in batches, per-row) errors
    """


class PromoteInRequest(TypedDict):
    reason: NotRequired[str]


class RecommendedItem(TypedDict):
    item_id: str
    score: float
    title: NotRequired[str]
    description: NotRequired[str]
    categories: NotRequired[list[str]]
    price: NotRequired[float | None]
    currency: NotRequired[str]
    in_stock: NotRequired[bool]
    properties: NotRequired[dict[str, Any]]


class RowErrorOut(TypedDict):
    index: int
    """
    the row of the batch
    """
    field: str | None
    """
    the field, dotted for nested values; null for the whole row
    """
    code: str
    """
    stable error code, e.g. required, invalid_format, unknown_event_type
    """
    message: str


class ScenarioOut(TypedDict):
    key: str
    name: str
    default_source: dict[str, Any]
    created_at: str
    updated_at: str


Item: TypeAlias = str


class SessionInRequest(TypedDict):
    items: list[Item]
    """
    the session's items, any order
    """
    count: NotRequired[int]
    exclude: NotRequired[list[ExcludeItem]]
    fields: NotRequired[list[str]]
    filters: NotRequired[FilterBody | None]


class Source(TypedDict):
    kind: str
    """
    active | version | algorithm | popularity | trending
    """
    version: NotRequired[int | None]
    algorithm: NotRequired[str | None]


StrategyEnum: TypeAlias = Literal["model", "fallback", "popularity"]
"""
* `model` - model
* `fallback` - fallback
* `popularity` - popularity
"""


class TrainInRequest(TypedDict):
    algorithm: NotRequired[AlgorithmEnum]
    tune: NotRequired[bool]
    two_stage: NotRequired[bool]
    """
    also train the two-stage recommender (default: training.two_stage)
    """


TriggerEnum: TypeAlias = Literal["manual", "schedule", "growth", "cli"]
"""
* `manual` - Manual (API or dashboard)
* `schedule` - Schedule
* `growth` - Event growth
* `cli` - Command line
"""


class UpsertBatchResult(TypedDict):
    received: int
    created: int
    updated: int
    unchanged: int
    """
    rows identical to what was stored (not rewritten)
    """
    rejected: int
    errors: list[RowErrorOut]
    """
    per-row errors (at most 1,000)
    """
    errors_truncated: bool


class VariantIn(TypedDict):
    key: str
    share: float
    """
    percentage of the scenario's traffic
    """
    source: Source


VersionOutStatusEnum: TypeAlias = Literal["queued", "training", "ready", "failed", "active", "retired"]
"""
* `queued` - Queued
* `training` - Training
* `ready` - Ready
* `failed` - Failed
* `active` - Active
* `retired` - Retired
"""


class BatchRequest(TypedDict):
    customer_id: str
    scenario: NotRequired[str]
    count: NotRequired[int]
    exclude: NotRequired[list[ExcludeItem]]
    exclude_seen: NotRequired[bool | None]
    filters: NotRequired[FilterBody | None]
    customer_token: NotRequired[str | None]
    """
    public keys: the customer's token (else this row gets the non-personal answer)
    """


class CustomerBatchRequest(TypedDict):
    customers: list[CustomerIn]


class EventBatchRequest(TypedDict):
    events: list[EventIn]


class EventBatchResult(TypedDict):
    received: int
    stored: int
    duplicates: int
    """
    events already stored (same event_id); never counted twice
    """
    rejected: int
    customers_created: int
    items_created: int
    errors: list[RowErrorOut]
    """
    per-row errors (at most 1,000)
    """
    errors_truncated: bool


class ExperimentInRequest(TypedDict):
    name: str
    scenario: str
    variants: list[VariantIn]


class ExperimentOut(TypedDict):
    experiment_id: int
    name: str
    scenario: str
    status: ExperimentOutStatusEnum
    variants: list[dict[str, Any]]
    created_at: str
    started_at: str | None
    stopped_at: str | None


class ItemBatchRequest(TypedDict):
    items: list[ItemIn]


class JobOut(TypedDict):
    job_id: str
    status: JobOutStatusEnum
    stage: str
    progress: int
    trigger: TriggerEnum
    requested_by: str
    options: Any
    version: int | None
    promoted: bool | None
    """
    once the job succeeded: whether its version was promoted (see `promotion_reason`)
    """
    promotion_reason: str | None
    """
    the release gate's reason, naming the figures it compared
    """
    error: str
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None


class PatchedExperimentPatchRequest(TypedDict):
    name: NotRequired[str | None]
    variants: NotRequired[list[VariantIn] | None]


class RecommendationsOut(TypedDict):
    recommendation_id: str
    """
    send it back with events that follow (attribution)
    """
    scenario: str
    variant: str
    model_version: int | None
    strategy: StrategyEnum
    items: list[RecommendedItem]


class ScenarioInRequest(TypedDict):
    name: NotRequired[str]
    default_source: NotRequired[Source]


class VersionOut(TypedDict):
    name: str
    version: int
    algorithm: str
    params: dict[str, Any]
    status: VersionOutStatusEnum
    trigger: TriggerEnum
    metrics: dict[str, Any]
    gate: dict[str, Any]
    timings: dict[str, Any]
    data_counts: dict[str, Any]
    failure_reason: str
    promotable: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    promoted_at: str | None
    retired_at: str | None
    artifacts_purged_at: str | None
    serving_problem: str
    serving_problem_at: str | None


class BatchInRequest(TypedDict):
    requests: list[BatchRequest]
    fields: NotRequired[list[str]]
