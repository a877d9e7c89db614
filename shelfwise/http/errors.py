"""One error shape for the whole API: RFC 9457 ``application/problem+json``.

Every error body has ``type``, ``title``, ``status``, ``detail``, a stable machine-readable
``code``, the ``request_id``, and, for validation failures, ``errors``: a list of
``{"field", "code", "message"}`` (plus ``index`` for a row of a batch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults as django_defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response

from shelfwise.observability.context import current_request_id

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
API_PREFIX = "/api/"


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    description: str


# The registry documents every code the API can answer with (served at /api/problems/<code>).
PROBLEM_TYPES: dict[str, ProblemType] = {}


def problem_type(code: str, status: int, title: str, description: str) -> ProblemType:
    """Register (or fetch) a problem type; apps register their own codes at import time."""
    existing = PROBLEM_TYPES.get(code)
    if existing is not None:
        return existing
    registered = ProblemType(code, status, title, description)
    PROBLEM_TYPES[code] = registered
    return registered


BAD_REQUEST = problem_type("bad_request", 400, "Bad request", "The request could not be understood.")
VALIDATION_ERROR = problem_type(
    "validation_error", 400, "Invalid request", "One or more fields are invalid; see `errors`."
)
PARSE_ERROR = problem_type("parse_error", 400, "Malformed request body", "The body is not valid JSON (UTF-8).")
MISSING_API_KEY = problem_type(
    "missing_api_key", 401, "API key required", "Send the key as `Authorization: Bearer <key>`."
)
INVALID_API_KEY = problem_type("invalid_api_key", 401, "Invalid API key", "The API key is not valid.")
REVOKED_API_KEY = problem_type("revoked_api_key", 401, "API key revoked", "The API key has been revoked.")
INSUFFICIENT_SCOPE = problem_type(
    "insufficient_scope", 403, "Insufficient scope", "The API key lacks the scope this operation needs."
)
TENANT_SUSPENDED = problem_type(
    "tenant_suspended", 403, "Account suspended", "The store's account is suspended; contact support."
)
PERMISSION_DENIED = problem_type("permission_denied", 403, "Permission denied", "This action is not allowed.")
NOT_FOUND = problem_type("not_found", 404, "Not found", "The resource does not exist.")
METHOD_NOT_ALLOWED = problem_type("method_not_allowed", 405, "Method not allowed", "Use a method listed in Allow.")
NOT_ACCEPTABLE = problem_type("not_acceptable", 406, "Not acceptable", "The API answers with JSON only.")
CONFLICT = problem_type("conflict", 409, "Conflict", "The request conflicts with the resource's current state.")
LENGTH_REQUIRED = problem_type(
    "length_required",
    411,
    "Length required",
    "Send the body with a Content-Length (this server cannot read a chunked body).",
)
PAYLOAD_TOO_LARGE = problem_type("payload_too_large", 413, "Payload too large", "The request body is too large.")
UNSUPPORTED_MEDIA_TYPE = problem_type(
    "unsupported_media_type", 415, "Unsupported media type", "Send `Content-Type: application/json`."
)
RATE_LIMITED = problem_type("rate_limited", 429, "Too many requests", "Slow down; retry after `Retry-After` seconds.")
# Answered by the web server before the application (shelfwise/server/gunicorn_worker.py).
URI_TOO_LONG = problem_type(
    "uri_too_long", 414, "URI too long", "The request line is longer than the server accepts (8190 bytes)."
)
EXPECTATION_FAILED = problem_type(
    "expectation_failed", 417, "Expectation failed", "The server cannot meet the request's Expect header."
)
HEADERS_TOO_LARGE = problem_type(
    "request_header_fields_too_large",
    431,
    "Request header fields too large",
    "The request's headers are more or larger than the server accepts.",
)
NOT_IMPLEMENTED = problem_type(
    "not_implemented", 501, "Not implemented", "The request uses a transfer coding the server does not support."
)
INTERNAL_ERROR = problem_type(
    "internal_error", 500, "Internal error", "Something went wrong on our side; it has been reported."
)
SERVICE_UNAVAILABLE = problem_type(
    "service_unavailable", 503, "Service unavailable", "A dependency is unavailable; retry shortly."
)


class Problem(exceptions.APIException):
    """An API error with a registered code; raise it anywhere below a view."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.status_code = kind.status
        self.problem_detail = detail or kind.description
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(detail=self.problem_detail, code=kind.code)


def problem_body(
    kind: ProblemType,
    detail: str | None = None,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{API_PREFIX}problems/{kind.code}",
        "title": kind.title,
        "status": kind.status,
        "detail": detail or kind.description,
        "code": kind.code,
        "request_id": current_request_id(),
    }
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def flatten_validation_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """DRF's nested ValidationError detail as a flat list of {field, code, message}."""
    out: list[dict[str, Any]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            out.extend(flatten_validation_errors(value, f"{path}.{name}" if path and name else (name or path)))
    elif isinstance(detail, list):
        if detail and all(isinstance(item, str) for item in detail):
            for item in detail:
                out.append(_one_error(item, path))
        else:
            for index, item in enumerate(detail):
                if item:
                    out.extend(flatten_validation_errors(item, f"{path}.{index}" if path else str(index)))
    else:
        out.append(_one_error(detail, path))
    return out


def _one_error(item: Any, path: str) -> dict[str, Any]:
    return {"field": path or None, "code": getattr(item, "code", None) or "invalid", "message": str(item)}


def _to_problem(exc: Exception) -> Problem | None:  # noqa: PLR0911, PLR0912 - one branch per exception family
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, Http404):
        return Problem(NOT_FOUND)
    if isinstance(exc, RequestDataTooBig):
        return Problem(PAYLOAD_TOO_LARGE)
    if isinstance(exc, DjangoPermissionDenied):
        return Problem(PERMISSION_DENIED)
    if isinstance(exc, SuspiciousOperation):
        return Problem(BAD_REQUEST, str(exc) or None)
    if isinstance(exc, exceptions.ValidationError):
        return Problem(VALIDATION_ERROR, errors=flatten_validation_errors(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return Problem(PARSE_ERROR, str(exc.detail))
    if isinstance(exc, exceptions.NotAuthenticated):
        return Problem(MISSING_API_KEY)
    if isinstance(exc, exceptions.AuthenticationFailed):
        return Problem(INVALID_API_KEY)
    if isinstance(exc, exceptions.PermissionDenied):
        return Problem(PERMISSION_DENIED, str(exc.detail))
    if isinstance(exc, exceptions.NotFound):
        return Problem(NOT_FOUND)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Problem(METHOD_NOT_ALLOWED, str(exc.detail))
    if isinstance(exc, exceptions.NotAcceptable):
        return Problem(NOT_ACCEPTABLE)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Problem(UNSUPPORTED_MEDIA_TYPE, str(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return Problem(RATE_LIMITED, headers={"Retry-After": str(wait)})
    if isinstance(exc, exceptions.APIException):
        kind = problem_type(str(exc.default_code), exc.status_code, str(exc.default_detail), str(exc.default_detail))
        return Problem(kind, str(exc.detail))
    return None


def problem_response(problem: Problem) -> Response:
    headers = dict(problem.headers)
    if problem.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="shelfwise"')
    return Response(
        problem_body(problem.kind, problem.problem_detail, errors=problem.errors, extra=problem.extra),
        status=problem.status_code,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error becomes problem+json; others re-raise (500)."""
    from rest_framework.views import set_rollback  # importing views at module load is circular

    problem = _to_problem(exc)
    if problem is None:
        return None
    set_rollback()
    return problem_response(problem)


def problem_json_response(kind: ProblemType, detail: str | None = None) -> JsonResponse:
    """A problem+json answer outside DRF (Django's error handlers)."""
    return JsonResponse(problem_body(kind, detail), status=kind.status, content_type=PROBLEM_CONTENT_TYPE)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return problem_json_response(PAYLOAD_TOO_LARGE)
        return problem_json_response(BAD_REQUEST)
    return django_defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(PERMISSION_DENIED)
    return django_defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(NOT_FOUND)
    return django_defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(INTERNAL_ERROR)
    return django_defaults.server_error(request)


def problem_type_view(request: HttpRequest, code: str) -> JsonResponse:
    """Documentation of one problem type: what its ``code`` means (the ``type`` URI resolves here)."""
    kind = PROBLEM_TYPES.get(code)
    if kind is None:
        return problem_json_response(NOT_FOUND)
    return JsonResponse(
        {
            "type": f"{API_PREFIX}problems/{kind.code}",
            "code": kind.code,
            "status": kind.status,
            "title": kind.title,
            "description": kind.description,
        }
    )


@csrf_exempt  # the API never authenticates by cookie, so there is nothing to forge
def api_not_found_view(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any unknown /api/ path: a problem+json 404 (also under DEBUG, unlike handler404)."""
    return problem_json_response(NOT_FOUND)
