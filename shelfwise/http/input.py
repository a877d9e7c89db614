"""Input of the API: every query string and JSON body is validated by a pydantic model (one
mechanism, from which the OpenAPI document is generated), and pydantic's errors become the API's
per-field errors — stable codes, clear messages, never the rejected input itself (which may be
personal data).

Views call :func:`parse_query` (``NoParameters`` when they take none) and :func:`parse_body`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from django.http import HttpRequest
from django.utils.dateparse import parse_datetime
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from shelfwise.http.errors import VALIDATION_ERROR, Problem

if TYPE_CHECKING:
    from rest_framework.request import Request

# pydantic error types -> our stable per-field codes.
ERROR_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "too_long": "too_many",
    "too_short": "too_few",
    "string_pattern_mismatch": "invalid_format",
    "string_type": "invalid_type",
    "int_type": "invalid_type",
    "float_type": "invalid_type",
    "bool_type": "invalid_type",
    "bool_parsing": "invalid_type",
    "dict_type": "invalid_type",
    "list_type": "invalid_type",
    "model_type": "invalid_type",
    "decimal_type": "invalid_type",
    "float_parsing": "invalid_number",
    "decimal_parsing": "invalid_number",
    "finite_number": "invalid_number",
    "decimal_max_digits": "invalid_number",
    "decimal_max_places": "too_precise",
    "decimal_whole_digits": "invalid_number",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "datetime_parsing": "invalid_datetime",
    "datetime_from_date_parsing": "invalid_datetime",
    "datetime_type": "invalid_datetime",
    "timezone_aware": "timezone_required",
    "value_error": "invalid",
}

_PATTERN_MESSAGES: dict[str, str] = {}


def register_pattern_message(pattern: str, message: str) -> None:
    """A readable message for values that fail ``pattern`` (instead of printing the regex)."""
    _PATTERN_MESSAGES[pattern] = message


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """``[{"field", "code", "message"}]`` for each error of ``exc``."""
    out = []
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch":
            message = _PATTERN_MESSAGES.get(str((error.get("ctx") or {}).get("pattern")), message)
        out.append(
            {
                "field": ".".join(str(part) for part in error["loc"]) or None,
                "code": ERROR_CODES.get(error["type"], "invalid"),
                "message": message,
            }
        )
    return out


# --------------------------------------------------------------------------- query strings


class QueryModel(BaseModel):
    """Query parameters: lax (values arrive as strings: "10", "true"), no unknown parameters,
    immutable (a query with every parameter at its default is parsed once per model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParameters(QueryModel):
    """An endpoint that takes no query parameters."""


@dataclass(frozen=True)
class OpenApiSchema:
    """How a query parameter is documented, when it is not pydantic's JSON schema of the field:
    ``Annotated[int, Field(ge=1), OpenApiSchema({...})]`` (see ``shelfwise.http.openapi``). Keeps
    the published document of parameters that predate pydantic queries unchanged."""

    schema: dict[str, Any] = field(hash=False)
    description: str = ""


QueryT = TypeVar("QueryT", bound=QueryModel)


def _iso_datetime(value: Any) -> Any:
    """ISO 8601 as Django reads it (``2026-07-01``, ``2026-07-01T10:00``, with or without an
    offset; without one, UTC), in UTC: PostgreSQL refuses offsets beyond 15:59, Python does not."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None:
            return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        pass
    raise PydanticCustomError("datetime_parsing", "must be an ISO 8601 date-time")


def _null_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.lower() == "null" else value


QueryDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
# true/false (also 1/0, yes/no, on/off); `null` leaves the filter off.
QueryOptionalBool = Annotated[bool | None, BeforeValidator(_null_is_none)]


def _refuse_unknown(unknown: list[str]) -> None:
    if unknown:
        raise Problem(
            VALIDATION_ERROR,
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[
                {"field": name, "code": "unknown_field", "message": "not a parameter of this endpoint"}
                for name in unknown
            ],
        )


def _refuse_blank(request: Request | HttpRequest) -> None:
    empty = sorted(name for name, value in request.GET.items() if value == "")
    if empty:
        raise Problem(
            VALIDATION_ERROR,
            errors=[{"field": name, "code": "blank", "message": "must not be empty"} for name in empty],
        )


# Query models parsed from an empty query string, per model.
_defaults: dict[type[QueryModel], QueryModel] = {}


def parse_query(
    request: Request | HttpRequest,
    model: type[QueryT] = NoParameters,  # type: ignore[assignment]  # the default of the TypeVar's bound
    *,
    also_allowed: Callable[[str], bool] | None = None,
) -> QueryT:
    """Validate the query string with a pydantic model (a parameter given twice counts once, the
    last). Unknown parameters, blank values and invalid ones are a 400 with per-field errors.
    ``also_allowed`` admits parameters the view parses itself (e.g. ``prop.<name>`` filters).
    Takes a DRF or a plain Django request (the fast path has no DRF request)."""
    params = request.GET
    if not params and model in _defaults:
        return _defaults[model]  # type: ignore[return-value]  # stored for this model; the hot path
    allowed = model.model_fields
    _refuse_unknown(
        sorted(name for name in params if name not in allowed and not (also_allowed and also_allowed(name)))
    )
    _refuse_blank(request)
    try:
        parsed = model.model_validate({name: params[name] for name in params if name in allowed})
    except ValidationError as exc:
        raise Problem(VALIDATION_ERROR, errors=field_errors(exc)) from exc
    if not params:
        _defaults[model] = parsed  # every parameter at its default: reused (immutable)
    return parsed


# --------------------------------------------------------------------------- JSON bodies


def _has_body(request: Request) -> bool:
    """Whether the request sent a body at all (DRF reads an empty body as {}: a PUT without a
    body would otherwise be an object of defaults). A chunked body has its length by now
    (``shelfwise.http.fastpath.frame_chunked_body``)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return True  # a malformed length: the parser decides


BodyT = TypeVar("BodyT", bound=BaseModel)


def parse_body(request: Request, model: type[BodyT], *, optional: bool = False) -> BodyT:
    """Validate a JSON object body with a pydantic model; 400 with per-field errors otherwise.
    ``optional``: a request without a body is the model's defaults."""
    data = request.data if _has_body(request) else None
    if data is None and optional:
        data = {}
    if not isinstance(data, dict):
        raise Problem(
            VALIDATION_ERROR,
            "The body must be a JSON object.",
            errors=[{"field": None, "code": "invalid_type", "message": "expected a JSON object"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(VALIDATION_ERROR, errors=field_errors(exc)) from exc
