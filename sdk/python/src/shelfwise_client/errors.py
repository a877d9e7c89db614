"""Exceptions raised by the client.

Every error the API answers is RFC 9457 ``application/problem+json``; it is raised as a subclass
of :class:`APIError` chosen by the HTTP status, carrying the problem's ``status``, ``code``,
``title``, ``detail``, ``request_id`` and per-field ``errors``. Failures that never got an answer
(a refused connection, a timeout) are :class:`NetworkError`. All of them are
:class:`ShelfwiseError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx

from ._schema import Error, JobOut

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "JobTimeoutError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "ShelfwiseError",
    "ValidationError",
    "error_from_response",
]


class ShelfwiseError(Exception):
    """Base of every error this package raises.

    The problem fields are None (and ``errors`` empty) for errors that are not answers of the API.
    ``partial_result`` is set when a chunked batch failed part-way: the merged result of the
    chunks stored before the failure (re-sending the whole batch is safe: rows are upserts and
    events are idempotent by ``event_id``).
    """

    status: int | None = None
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    request_id: str | None = None
    errors: list[Error]
    partial_result: Mapping[str, Any] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.errors = []


class APIError(ShelfwiseError):
    """The API answered with an error status (4xx or 5xx)."""

    status: int

    def __init__(
        self,
        *,
        status: int,
        code: str | None,
        title: str | None,
        detail: str | None,
        request_id: str | None,
        errors: Sequence[Error] = (),
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        summary = f"{status} {code or title or 'error'}"
        if detail:
            summary += f": {detail}"
        if request_id:
            summary += f" (request {request_id})"
        super().__init__(summary)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.errors = list(errors)
        self.problem: dict[str, Any] = dict(problem or {})
        """The whole problem document (problem types may add members, e.g. ``job_id``)."""
        self.headers = httpx.Headers(headers or {})
        """The answer's headers, case-insensitive (``RateLimit-*``, ``Retry-After``, ``X-Request-ID``…)."""

    def with_errors(self, errors: Sequence[Error]) -> APIError:
        """A copy of this error (same class) with other per-field errors."""
        twin = type(self)(
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            request_id=self.request_id,
            errors=errors,
            problem={**self.problem, "errors": list(errors)},
            headers=self.headers,
        )
        twin.partial_result = self.partial_result
        return twin


class ValidationError(APIError):
    """400 or 422: the request is invalid (``errors`` says which fields or batch rows)."""


class AuthenticationError(APIError):
    """401: missing, invalid or revoked API key (``missing_api_key``, ``invalid_api_key``…)."""


class PermissionDeniedError(APIError):
    """403: wrong scope, suspended store, or quota exhausted."""


class NotFoundError(APIError):
    """404: no such object (also another store's objects)."""


class ConflictError(APIError):
    """409: e.g. ``training_in_progress``, ``promotion_refused``."""


class RateLimitedError(APIError):
    """429: rate limited (``rate_limited``) or training quota reached; see ``retry_after``."""

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again, from ``Retry-After`` (None when absent)."""
        return retry_after_seconds(self.headers)


class ServerError(APIError):
    """5xx: the service failed or is unavailable (e.g. 503 ``service_unavailable``)."""


class NetworkError(ShelfwiseError):
    """No answer from the API: the connection failed or broke (after the retries)."""


class RequestTimeoutError(NetworkError):
    """No answer from the API within the timeout (after the retries)."""


class JobTimeoutError(ShelfwiseError):
    """A training job did not finish within the time :meth:`jobs.wait` was given."""

    def __init__(self, message: str, job: JobOut) -> None:
        super().__init__(message)
        self.job = job


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[APIError]:
    """The exception class for an error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


def error_from_response(response: httpx.Response) -> APIError:
    """The typed exception for an error answer (problem+json, or anything else a proxy sent)."""
    problem: dict[str, Any] = {}
    if response.content:
        try:
            decoded = json.loads(response.content)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            problem = decoded
    text = None if problem else response.text[:500].strip() or None

    def string(name: str) -> str | None:
        value = problem.get(name)
        return value if isinstance(value, str) else None

    errors = problem.get("errors")
    return error_class(response.status_code)(
        status=response.status_code,
        code=string("code"),
        title=string("title") or response.reason_phrase or None,
        detail=string("detail") or text,
        request_id=string("request_id") or response.headers.get("X-Request-ID"),
        errors=[cast(Error, error) for error in errors if isinstance(error, dict)] if isinstance(errors, list) else [],
        problem=problem,
        headers=response.headers,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110); None if absent or bad."""
    value: str | None = httpx.Headers(headers).get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())
