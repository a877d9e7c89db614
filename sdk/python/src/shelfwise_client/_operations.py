"""Every API operation, written once as a sans-IO operation over :class:`~._core.Core`.

Each function's first parameter is the core; the rest is the public signature that
``Shelfwise`` (sync) and ``AsyncShelfwise`` (async) expose unchanged (see ``_client.py``), so the
docstrings here are the client's documentation. Parameter and return types are the generated
TypedDicts of ``_schema.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from . import _core
from ._core import Core, Op, path_segment, query
from ._schema import (
    AlgorithmEnum,
    BatchOut,
    BatchRequest,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    EventBatchResult,
    EventIn,
    EventPage,
    ExperimentOut,
    FilterBody,
    ItemIn,
    ItemOut,
    ItemPage,
    JobOut,
    Output,
    RecommendationsOut,
    ScenarioOut,
    Source,
    UpsertBatchResult,
    VariantIn,
    VersionOut,
    VersionOutStatusEnum,
)
from .errors import APIError, JobTimeoutError

# --------------------------------------------------------------------------- store


def whoami(core: Core) -> Op[Output]:
    """The key's store, prefix, kind and scopes (any scope)."""
    found: Output = yield from core.call("GET", "/whoami")
    return found


def settings_get(core: Core) -> Op[dict[str, Any]]:
    """The store's settings by section (``events``, ``training``…); ``admin`` scope."""
    found: dict[str, Any] = yield from core.call("GET", "/settings")
    return found


def settings_update(core: Core, changes: Mapping[str, Any]) -> Op[dict[str, Any]]:
    """Change settings by section, e.g. ``{"events": {"weights": {"wishlist": 3}}}``; returns
    them all. ``admin`` scope."""
    found: dict[str, Any] = yield from core.call("PATCH", "/settings", body=changes)
    return found


# --------------------------------------------------------------------------- items


def item_upsert(core: Core, item: ItemIn) -> Op[ItemOut]:
    """Create or replace one item (``PUT /items/{item_id}``; a deleted item is restored)."""
    stored: ItemOut = yield from core.call("PUT", f"/items/{path_segment(item['item_id'])}", body=item)
    return stored


def item_get(core: Core, item_id: str) -> Op[ItemOut]:
    """One item; :class:`NotFoundError` if it does not exist."""
    found: ItemOut = yield from core.call("GET", f"/items/{path_segment(item_id)}")
    return found


def item_delete(core: Core, item_id: str) -> Op[None]:
    """Soft-delete an item (never recommended again; ``upsert`` restores it)."""
    yield from core.call("DELETE", f"/items/{path_segment(item_id)}")


def items_list(
    core: Core,
    *,
    category: str | None = None,
    in_stock: bool | None = None,
    updated_since: str | datetime | None = None,
    include_deleted: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[ItemPage]:
    """A page of items (``limit`` ≤ 1000); pass ``next_cursor`` back as ``cursor`` for the next."""
    params = query(
        category=category,
        in_stock=in_stock,
        updated_since=updated_since,
        include_deleted=include_deleted,
        limit=limit,
        cursor=cursor,
    )
    page: ItemPage = yield from core.call("GET", "/items", params=params)
    return page


def items_batch(core: Core, items: Iterable[ItemIn]) -> Op[UpsertBatchResult]:
    """Upsert any number of items: sent 10,000 (or 15 MiB) at a time, answers merged — counts
    summed, per-row ``errors`` indexed by position in ``items``."""
    merged = yield from _core.upsert_batch(core, "/items:batch", "items", items, _UPSERT_COUNTS)
    return cast(UpsertBatchResult, merged)


_UPSERT_COUNTS = ("received", "created", "updated", "unchanged", "rejected")
_EVENT_COUNTS = ("received", "stored", "duplicates", "rejected", "customers_created", "items_created")


# --------------------------------------------------------------------------- customers


def customer_upsert(core: Core, customer: CustomerIn) -> Op[CustomerOut]:
    """Create or replace one customer (``anonymous``, ``properties``)."""
    path = f"/customers/{path_segment(customer['customer_id'])}"
    stored: CustomerOut = yield from core.call("PUT", path, body=customer)
    return stored


def customer_get(core: Core, customer_id: str) -> Op[CustomerOut]:
    """One customer; :class:`NotFoundError` if unknown."""
    found: CustomerOut = yield from core.call("GET", f"/customers/{path_segment(customer_id)}")
    return found


def customer_erase(core: Core, customer_id: str) -> Op[None]:
    """Erase a customer, their events and every derived trace (also when already gone)."""
    yield from core.call("DELETE", f"/customers/{path_segment(customer_id)}")


def customers_list(
    core: Core,
    *,
    anonymous: bool | None = None,
    updated_since: str | datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[CustomerPage]:
    """A page of customers; pass ``next_cursor`` back as ``cursor`` for the next."""
    params = query(anonymous=anonymous, updated_since=updated_since, limit=limit, cursor=cursor)
    page: CustomerPage = yield from core.call("GET", "/customers", params=params)
    return page


def customer_events(
    core: Core,
    customer_id: str,
    *,
    type: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[EventPage]:
    """A customer's events, newest first."""
    params = query(type=type, since=since, until=until, limit=limit, cursor=cursor)
    page: EventPage = yield from core.call("GET", f"/customers/{path_segment(customer_id)}/events", params=params)
    return page


def customers_batch(core: Core, customers: Iterable[CustomerIn]) -> Op[UpsertBatchResult]:
    """Upsert any number of customers, chunked and merged like :meth:`items.batch`."""
    merged = yield from _core.upsert_batch(core, "/customers:batch", "customers", customers, _UPSERT_COUNTS)
    return cast(UpsertBatchResult, merged)


# --------------------------------------------------------------------------- events


def event_track(core: Core, event: EventIn) -> Op[EventBatchResult]:
    """Send one event; :class:`ValidationError` (with ``errors``) if it is refused."""
    result: EventBatchResult = yield from core.call("POST", "/events", body={"events": [event]})
    return result


def events_batch(core: Core, events: Iterable[EventIn]) -> Op[EventBatchResult]:
    """Send any number of events: 10,000 (or 15 MiB) per request, answers merged — counts
    summed, per-row ``errors`` indexed by position in ``events``. Re-sent ``event_id``s count as
    ``duplicates``, never twice, so re-sending a batch after a failure is safe."""
    merged = yield from _core.upsert_batch(core, "/events", "events", events, _EVENT_COUNTS)
    return cast(EventBatchResult, merged)


# --------------------------------------------------------------------------- recommendations


def filter_params(filters: FilterBody | None) -> list[tuple[str, str]]:
    """A filter (the body's shape) as the GET endpoints' query parameters."""
    if not filters:
        return []
    params = [("category", category) for category in filters.get("categories") or ()]
    params += query(
        categories_match=filters.get("categories_match"),
        price_min=filters.get("price_min"),
        price_max=filters.get("price_max"),
        in_stock=filters.get("in_stock"),
    )
    for name, values in (filters.get("properties") or {}).items():
        params.append((f"prop.{name}", _core.query_value(name, values)))
    return params


def _list_params(
    *,
    count: int | None,
    exclude: Sequence[str] | None,
    fields: Sequence[str] | None,
    filters: FilterBody | None,
    **more: object,
) -> list[tuple[str, str]]:
    return query(count=count, exclude=exclude, fields=fields, **more) + filter_params(filters)


def recommend_for_customer(
    core: Core,
    customer_id: str,
    *,
    scenario: str | None = None,
    count: int | None = None,
    exclude: Sequence[str] | None = None,
    exclude_seen: bool | None = None,
    fields: Sequence[str] | None = None,
    filters: FilterBody | None = None,
) -> Op[RecommendationsOut]:
    """Personalised recommendations for a customer (popular items, ``strategy: fallback``, for an
    unknown one). ``fields`` adds item fields (``title``, ``price``…) to each item; ``filters``
    restricts the candidates (categories, price range, stock, properties)."""
    params = _list_params(
        count=count, exclude=exclude, fields=fields, filters=filters, scenario=scenario, exclude_seen=exclude_seen
    )
    found: RecommendationsOut = yield from core.call(
        "GET", f"/customers/{path_segment(customer_id)}/recommendations", params=params
    )
    return found


def recommend_similar(
    core: Core,
    item_id: str,
    *,
    customer: str | None = None,
    count: int | None = None,
    exclude: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    filters: FilterBody | None = None,
) -> Op[RecommendationsOut]:
    """Items similar to ``item_id`` (re-ranked for ``customer`` if given); :class:`NotFoundError`
    for an unknown item."""
    params = _list_params(count=count, exclude=exclude, fields=fields, filters=filters, customer=customer)
    found: RecommendationsOut = yield from core.call("GET", f"/items/{path_segment(item_id)}/similar", params=params)
    return found


def recommend_popular(
    core: Core,
    *,
    count: int | None = None,
    exclude: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    filters: FilterBody | None = None,
) -> Op[RecommendationsOut]:
    """The store's most popular items (time-decayed, 30-day half-life)."""
    params = _list_params(count=count, exclude=exclude, fields=fields, filters=filters)
    found: RecommendationsOut = yield from core.call("GET", "/recommendations/popular", params=params)
    return found


def recommend_trending(
    core: Core,
    *,
    count: int | None = None,
    exclude: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    filters: FilterBody | None = None,
) -> Op[RecommendationsOut]:
    """What is popular right now (1-day half-life)."""
    params = _list_params(count=count, exclude=exclude, fields=fields, filters=filters)
    found: RecommendationsOut = yield from core.call("GET", "/recommendations/trending", params=params)
    return found


def recommend_session(
    core: Core,
    items: Sequence[str],
    *,
    count: int | None = None,
    exclude: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    filters: FilterBody | None = None,
) -> Op[RecommendationsOut]:
    """For an anonymous visitor, from the items of their session (1–100 item ids)."""
    body: dict[str, Any] = {"items": list(items)}
    if count is not None:
        body["count"] = count
    if exclude is not None:
        body["exclude"] = list(exclude)
    if fields is not None:
        body["fields"] = list(fields)
    if filters is not None:
        body["filters"] = filters
    found: RecommendationsOut = yield from core.call("POST", "/recommendations/session", body=body)
    return found


def recommend_batch(
    core: Core, requests: Iterable[BatchRequest], *, fields: Sequence[str] | None = None
) -> Op[BatchOut]:
    """Recommendations for many customers: ``results`` in the order of ``requests`` (each with
    its ``customer_id``), sent 100 requests at a time (the API's limit)."""
    rows = list(requests)
    results: list[dict[str, Any]] = []
    for start in range(0, len(rows), _core.MAX_RECOMMENDATION_BATCH):
        body: dict[str, Any] = {"requests": rows[start : start + _core.MAX_RECOMMENDATION_BATCH]}
        if fields is not None:
            body["fields"] = list(fields)
        try:
            part: BatchOut = yield from core.call("POST", "/recommendations:batch", body=body)
        except APIError as error:
            moved = error.with_errors(_core.reindex(error.errors, start, "requests"))
            moved.partial_result = {"results": results} if results else None
            raise moved from error
        results.extend(part["results"])
    return {"results": results}


# --------------------------------------------------------------------------- models and jobs


def models_list(
    core: Core, *, status: VersionOutStatusEnum | None = None, limit: int | None = None
) -> Op[list[VersionOut]]:
    """Model versions, newest first, with metrics next to popularity and the gate's decision."""
    found: list[VersionOut] = yield from core.call("GET", "/models", params=query(status=status, limit=limit))
    return found


def model_get(core: Core, version: int) -> Op[VersionOut]:
    """One model version."""
    found: VersionOut = yield from core.call("GET", f"/models/{path_segment(version)}")
    return found


def models_train(core: Core, *, algorithm: AlgorithmEnum | None = None, tune: bool | None = None) -> Op[JobOut]:
    """Queue a training; returns the job (follow it with :meth:`jobs.wait`). :class:`ConflictError`
    ``training_in_progress`` while one runs; :class:`ValidationError` ``insufficient_data``."""
    body: dict[str, Any] = {}
    if algorithm is not None:
        body["algorithm"] = algorithm
    if tune is not None:
        body["tune"] = tune
    job: JobOut = yield from core.call("POST", "/models:train", body=body)
    return job


def model_promote(core: Core, version: int, *, reason: str | None = None) -> Op[VersionOut]:
    """Serve this version; :class:`ConflictError` ``promotion_refused`` says why not."""
    body = {} if reason is None else {"reason": reason}
    found: VersionOut = yield from core.call("POST", f"/models/{path_segment(version)}:promote", body=body)
    return found


def models_rollback(core: Core, *, reason: str | None = None) -> Op[VersionOut]:
    """Serve the previously active version again; returns it."""
    body = {} if reason is None else {"reason": reason}
    found: VersionOut = yield from core.call("POST", "/models:rollback", body=body)
    return found


def jobs_list(core: Core) -> Op[list[JobOut]]:
    """The store's latest training jobs (50), newest first."""
    found: list[JobOut] = yield from core.call("GET", "/jobs")
    return found


def job_get(core: Core, job_id: str) -> Op[JobOut]:
    """A training job: status, stage, progress (0–100), version, error."""
    found: JobOut = yield from core.call("GET", f"/jobs/{path_segment(job_id)}")
    return found


def job_wait(core: Core, job: str | JobOut, *, timeout: float = 900.0, poll_interval: float = 1.0) -> Op[JobOut]:
    """Poll a job (an id, or the job ``models.train`` returned) until it has ``succeeded`` or
    ``failed``, and return it; :class:`JobTimeoutError` after ``timeout`` seconds."""
    job_id = job if isinstance(job, str) else job["job_id"]
    deadline = time.monotonic() + timeout
    while True:
        current = yield from job_get(core, job_id)
        if current.get("status") in _core.FINISHED_JOB_STATUSES:
            return current
        left = deadline - time.monotonic()
        if left <= 0:
            raise JobTimeoutError(
                f"job {job_id} is still {current.get('status')} ({current.get('stage')}) after {timeout:g}s", current
            )
        yield from core.sleep(min(poll_interval, left))


# --------------------------------------------------------------------------- scenarios and experiments


def scenarios_list(core: Core) -> Op[list[ScenarioOut]]:
    """The store's scenarios and their default sources."""
    found: list[ScenarioOut] = yield from core.call("GET", "/scenarios")
    return found


def scenario_get(core: Core, key: str) -> Op[ScenarioOut]:
    """One scenario."""
    found: ScenarioOut = yield from core.call("GET", f"/scenarios/{path_segment(key)}")
    return found


def scenario_put(
    core: Core, key: str, *, name: str | None = None, default_source: Source | None = None
) -> Op[ScenarioOut]:
    """Create or replace a scenario, e.g. ``default_source={"kind": "trending"}``."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if default_source is not None:
        body["default_source"] = default_source
    found: ScenarioOut = yield from core.call("PUT", f"/scenarios/{path_segment(key)}", body=body)
    return found


def scenario_delete(core: Core, key: str) -> Op[None]:
    """Delete a scenario (its traffic is then served as ``default``)."""
    yield from core.call("DELETE", f"/scenarios/{path_segment(key)}")


def experiments_list(core: Core) -> Op[list[ExperimentOut]]:
    """The store's experiments."""
    found: list[ExperimentOut] = yield from core.call("GET", "/experiments")
    return found


def experiment_get(core: Core, experiment_id: int) -> Op[ExperimentOut]:
    """One experiment."""
    found: ExperimentOut = yield from core.call("GET", f"/experiments/{path_segment(experiment_id)}")
    return found


def experiment_create(core: Core, *, name: str, scenario: str, variants: Sequence[VariantIn]) -> Op[ExperimentOut]:
    """A draft experiment splitting ``scenario``'s traffic between 2–10 variants (shares add up
    to 100)."""
    body = {"name": name, "scenario": scenario, "variants": list(variants)}
    found: ExperimentOut = yield from core.call("POST", "/experiments", body=body)
    return found


def experiment_update(
    core: Core, experiment_id: int, *, name: str | None = None, variants: Sequence[VariantIn] | None = None
) -> Op[ExperimentOut]:
    """Rename an experiment, or change its variants while it is a draft."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if variants is not None:
        body["variants"] = list(variants)
    found: ExperimentOut = yield from core.call("PATCH", f"/experiments/{path_segment(experiment_id)}", body=body)
    return found


def experiment_start(core: Core, experiment_id: int) -> Op[ExperimentOut]:
    """Draft → running (one running experiment per scenario)."""
    found: ExperimentOut = yield from core.call("POST", f"/experiments/{path_segment(experiment_id)}:start")
    return found


def experiment_stop(core: Core, experiment_id: int) -> Op[ExperimentOut]:
    """Running → stopped."""
    found: ExperimentOut = yield from core.call("POST", f"/experiments/{path_segment(experiment_id)}:stop")
    return found


def experiment_results(core: Core, experiment_id: int) -> Op[dict[str, Any]]:
    """Per variant: impressions, clicks, add-to-carts, purchases, CTR and conversion with 95 %
    Wilson intervals."""
    found: dict[str, Any] = yield from core.call("GET", f"/experiments/{path_segment(experiment_id)}/results")
    return found
