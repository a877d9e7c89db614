"""The sans-IO core shared by the sync and the async client.

An *operation* is a generator that yields effects — :class:`Send` (an ``httpx.Request`` to send)
and :class:`Sleep` — and receives, for each ``Send``, the ``httpx.Response`` or the
``httpx.TransportError`` it ended with. It returns the operation's result. Everything that
decides something lives here and is written once: building requests (auth, User-Agent,
``Idempotency-Key``), retries with backoff, error decoding, chunking batches and merging their
results, polling a job. The two drivers in ``_client.py`` only carry effects out: one with
``httpx.Client`` and ``time.sleep``, the other with ``httpx.AsyncClient`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import re
import uuid
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from ._schema import Error
from ._version import __version__
from .errors import (
    APIError,
    NetworkError,
    RequestTimeoutError,
    ShelfwiseError,
    error_from_response,
    retry_after_seconds,
)

logger = logging.getLogger("shelfwise_client")

T = TypeVar("T")

DEFAULT_BASE_URL = "http://localhost:8000/api/v1"
API_PREFIX = "/api/v1"
MAX_BATCH_ROWS = 10_000  # catalog.contracts.MAX_BATCH_ROWS: items, customers and events batches
MAX_RECOMMENDATION_BATCH = 100  # recommendations.apis.serving.BATCH_MAX
# The API reads batch bodies up to 16 MiB; chunks stay under it with room for the envelope.
MAX_BATCH_BYTES = 15 * 1024 * 1024
USER_AGENT = (
    f"shelfwise-python/{__version__} (python {platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]})"
)


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Send:
    """Send this request; the driver answers with the response or the transport error."""

    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds; the driver answers with None."""

    seconds: float


Effect = Send | Sleep
Reply = httpx.Response | httpx.TransportError | None
Op = Generator[Effect, Reply, T]
"""An operation: yields effects, returns a ``T``."""


# --------------------------------------------------------------------------- configuration


class ClientOptions(TypedDict, total=False):
    """Keyword options of :class:`Shelfwise` and :class:`AsyncShelfwise`."""

    base_url: str
    """The API's base URL, e.g. ``http://localhost:8000/api/v1/`` (``/api/v1`` is added when
    missing). Default: ``$SHELFWISE_BASE_URL``, else ``http://localhost:8000/api/v1``."""
    timeout: float | httpx.Timeout
    """Seconds per attempt (default 30; 10 to connect)."""
    max_retries: int
    """Retries after the first attempt on 429, 5xx, 409 ``idempotency_in_progress`` and network
    errors (default 3; 0 turns retrying off)."""
    backoff_initial: float
    """The first retry waits up to this many seconds (full jitter), doubling each time (0.5)."""
    backoff_max: float
    """Cap of the backoff between attempts, in seconds (8)."""
    max_retry_after: float
    """A ``Retry-After`` longer than this many seconds is not waited for: the error is raised at
    once (60; a training quota's can be hours)."""
    max_batch_rows: int
    """Rows per request when a batch is split (at most 10,000, the API's limit)."""
    max_batch_bytes: int
    """Body bytes per request when a batch is split (15 MiB; the API reads up to 16 MiB)."""
    headers: Mapping[str, str]
    """Extra headers sent with every request."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before another attempt."""

    max_retries: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, initial × 2^attempt)]."""
        return self.rng.uniform(0, min(self.backoff_max, self.backoff_initial * 2**attempt))

    def delay_after_error(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error``; None: do not retry."""
        if attempt >= self.max_retries:
            return None
        retryable = (
            error.status == 429
            or (error.status >= 500 and error.status != 501)
            # Our own earlier attempt of this request is still running on the server.
            or (error.status == 409 and error.code == "idempotency_in_progress")
        )
        if not retryable:
            return None
        retry_after = retry_after_seconds(error.headers)
        if retry_after is None or retry_after <= 0:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None  # e.g. a training quota: hours, not a hiccup
        return retry_after

    def delay_after_exception(self, exc: httpx.TransportError, attempt: int) -> float | None:
        if attempt >= self.max_retries:
            return None
        # A bad URL or a protocol misuse on our side does not get better by retrying.
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return None
        return self.backoff(attempt)


@dataclass(frozen=True)
class Config:
    api_key: str
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    max_batch_rows: int = MAX_BATCH_ROWS
    max_batch_bytes: int = MAX_BATCH_BYTES
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, api_key: str | None, options: ClientOptions) -> Config:
        key = api_key or os.environ.get("SHELFWISE_API_KEY")
        if not key:
            raise ShelfwiseError("No API key: pass api_key= or set SHELFWISE_API_KEY.")
        timeout = options.get("timeout", httpx.Timeout(30.0, connect=10.0))
        rows = options.get("max_batch_rows", MAX_BATCH_ROWS)
        if not 1 <= rows <= MAX_BATCH_ROWS:
            raise ValueError(f"max_batch_rows must be between 1 and {MAX_BATCH_ROWS}")
        return cls(
            api_key=key,
            base_url=normalize_base_url(options.get("base_url") or os.environ.get("SHELFWISE_BASE_URL") or ""),
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            retry=RetryPolicy(
                max_retries=options.get("max_retries", 3),
                backoff_initial=options.get("backoff_initial", 0.5),
                backoff_max=options.get("backoff_max", 8.0),
                max_retry_after=options.get("max_retry_after", 60.0),
            ),
            max_batch_rows=rows,
            max_batch_bytes=options.get("max_batch_bytes", MAX_BATCH_BYTES),
            headers=dict(options.get("headers", {})),
        )


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000``, ``…/api/v1`` and ``…/api/v1/`` all mean ``http://host:8000/api/v1``."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if not url.endswith(API_PREFIX):
        url += API_PREFIX
    return url


# --------------------------------------------------------------------------- requests


def path_segment(value: str | int) -> str:
    """An id as one path segment (every reserved character escaped)."""
    return quote(str(value), safe="")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        # Prices: the API takes JSON numbers only (strict types) and reads them as doubles.
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default).encode()


Params = Sequence[tuple[str, str]]


def query(**values: object) -> list[tuple[str, str]]:
    """Query parameters from keyword values: None left out, booleans as true/false, sequences
    comma-joined, datetimes in ISO 8601 (aware only)."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        out.append((name, query_value(name, value)))
    return out


def query_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: a naive datetime is ambiguous; pass an aware one")
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return ",".join(str(part) for part in value)
    return str(value)


class Core:
    """Configuration plus the operations' building blocks."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **config.headers,
        }

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Request:
        headers = dict(self.headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return httpx.Request(
            method,
            self.config.base_url + path,
            params=list(params or []),
            content=content,
            headers=headers,
            extensions={"timeout": self.config.timeout.as_dict()},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
    ) -> Op[httpx.Response]:
        """Send with retries; the response, or the typed error raised.

        Every POST carries a fresh ``Idempotency-Key`` (uuid4) that its retries repeat, so a POST
        whose answer was lost is replayed by the API, not done twice.
        """
        key = str(uuid.uuid4()) if method == "POST" else None
        request = self.build_request(method, path, params=params, content=content, idempotency_key=key)
        policy = self.config.retry
        attempt = 0
        while True:
            reply = yield Send(request)
            if isinstance(reply, httpx.Response):
                if reply.status_code < 400:
                    return reply
                error = error_from_response(reply)
                delay = policy.delay_after_error(error, attempt)
                if delay is None:
                    raise error
                reason = f"{error.status} {error.code or ''}".strip()
            elif isinstance(reply, httpx.TransportError):
                delay = policy.delay_after_exception(reply, attempt)
                if delay is None:
                    kind = RequestTimeoutError if isinstance(reply, httpx.TimeoutException) else NetworkError
                    raise kind(f"{method} {request.url}: {type(reply).__name__}: {reply}") from reply
                reason = type(reply).__name__
            else:  # pragma: no cover - a driver bug
                raise TypeError(f"unexpected reply {reply!r}")
            attempt += 1
            logger.info(
                "shelfwise: %s %s failed (%s); retry %d/%d in %.2fs",
                method,
                request.url.path,
                reason,
                attempt,
                policy.max_retries,
                delay,
            )
            yield Sleep(delay)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: object = None,
        content: bytes | None = None,
    ) -> Op[Any]:
        """A request whose answer is JSON (None for 204)."""
        if body is not None:
            content = encode_json(body)
        elif method == "POST" and content is None:
            content = b"{}"  # POSTs that take options take them as a JSON object
        response = yield from self.request(method, path, params=params, content=content)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ShelfwiseError(f"{method} {path}: the answer is not JSON ({response.status_code})") from exc

    def sleep(self, seconds: float) -> Op[None]:
        yield Sleep(seconds)


# --------------------------------------------------------------------------- batches


def plan_chunks(sizes: Sequence[int], *, max_rows: int, max_bytes: int) -> list[range]:
    """Consecutive index ranges of at most ``max_rows`` rows and (a row alone excepted)
    ``max_bytes`` encoded bytes each."""
    chunks: list[range] = []
    start, used = 0, 0
    for index, size in enumerate(sizes):
        cost = size + 1  # the comma
        if index > start and (index - start >= max_rows or used + cost > max_bytes):
            chunks.append(range(start, index))
            start, used = index, 0
        used += cost
    if start < len(sizes):
        chunks.append(range(start, len(sizes)))
    return chunks


def chunk_body(envelope: str, rows: Sequence[bytes], span: range) -> bytes:
    """``{"<envelope>": [the rows in span]}`` from rows encoded once, up front."""
    return b"{%s:[%s]}" % (encode_json(envelope), b",".join(rows[i] for i in span))


def reindex(errors: Iterable[Error], offset: int, envelope: str) -> list[Error]:
    """Errors of a chunk starting at ``offset``, in the caller's positions: ``index`` shifted,
    and a field such as ``events.3.type`` rewritten to ``events.<3 + offset>.type``."""
    pattern = re.compile(rf"^{re.escape(envelope)}\.(\d+)(?=\.|$)")
    out: list[Error] = []
    for error in errors:
        moved = Error(**error)
        index = error.get("index")
        if isinstance(index, int):
            moved["index"] = index + offset
        field_name = error.get("field")
        if isinstance(field_name, str) and offset:
            moved["field"] = pattern.sub(lambda m: f"{envelope}.{int(m.group(1)) + offset}", field_name)
        out.append(moved)
    return out


def all_rows_rejected(error: APIError, size: int) -> bool:
    """Whether ``error`` is the API's "no row of the batch was accepted" answer (a 400
    ``validation_error`` or 403 ``quota_exceeded`` whose errors all name a row)."""
    return (
        (error.status, error.code) in {(400, "validation_error"), (403, "quota_exceeded")}
        and bool(error.errors)
        and all(isinstance(index := e.get("index"), int) and 0 <= index < size for e in error.errors)
    )


@dataclass
class BatchTotals:
    """The merged result of a chunked batch: counts summed, errors in the caller's positions."""

    counts: dict[str, int]
    errors: list[Error] = field(default_factory=list)
    errors_truncated: bool = False

    def add(self, part: Mapping[str, Any], offset: int, envelope: str) -> None:
        for name in self.counts:
            self.counts[name] += int(part.get(name, 0))
        self.errors.extend(reindex(part.get("errors", ()), offset, envelope))
        self.errors_truncated = self.errors_truncated or bool(part.get("errors_truncated", False))

    def add_rejected(self, error: APIError, offset: int, size: int, envelope: str) -> None:
        """A chunk whose rows were all refused (answered as a problem, not a result)."""
        self.counts["received"] += size
        self.counts["rejected"] += size
        self.errors.extend(reindex(error.errors, offset, envelope))
        if len({e.get("index") for e in error.errors}) < size:
            self.errors_truncated = True  # the API lists at most 1,000 errors per request

    def result(self) -> dict[str, Any]:
        return {**self.counts, "errors": self.errors, "errors_truncated": self.errors_truncated}


def upsert_batch(
    core: Core,
    path: str,
    envelope: str,
    rows: Iterable[Mapping[str, Any]],
    counts: Sequence[str],
) -> Op[dict[str, Any]]:
    """POST ``rows`` to a batch endpoint in as many requests as the limits need, and merge the
    answers as if it had been one request.

    Like the API, a batch none of whose rows was accepted raises the problem (every chunk's row
    errors, re-indexed); otherwise the merged result lists the rejected rows. Another error
    stops at the chunk it happened in and is raised with ``partial_result`` set. An empty batch
    sends nothing and returns zero counts.
    """
    encoded = [encode_json(row) for row in rows]
    totals = BatchTotals(dict.fromkeys(counts, 0))
    refusals: list[APIError] = []
    config = core.config
    for span in plan_chunks(
        [len(row) for row in encoded], max_rows=config.max_batch_rows, max_bytes=config.max_batch_bytes
    ):
        try:
            part = yield from core.call("POST", path, content=chunk_body(envelope, encoded, span))
        except APIError as error:
            if not all_rows_rejected(error, len(span)):
                raise _partial(error.with_errors(reindex(error.errors, span.start, envelope)), totals) from error
            refusals.append(error)
            totals.add_rejected(error, span.start, len(span), envelope)
            continue
        except ShelfwiseError as error:
            _partial(error, totals)
            raise
        totals.add(part, span.start, envelope)
    if refusals and totals.counts["rejected"] == totals.counts["received"]:
        # As the API answers one request: quota_exceeded only when every row hit the quota.
        quota_only = {e.get("code") for e in totals.errors} == {"quota_exceeded"}
        refusal = next((r for r in refusals if quota_only or r.code == "validation_error"), refusals[0])
        raise refusal.with_errors(totals.errors)
    return totals.result()


def _partial(error: ShelfwiseError, totals: BatchTotals) -> ShelfwiseError:
    if totals.counts.get("received"):
        error.partial_result = totals.result()
    return error


# --------------------------------------------------------------------------- jobs

FINISHED_JOB_STATUSES = frozenset({"succeeded", "failed"})
