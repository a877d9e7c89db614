"""The base of every v1 API view: JSON in and out (orjson), body-size limits, per-key rate
limits with ``RateLimit-*`` headers, and ``Idempotency-Key`` on POST.

Apps' views subclass :class:`ApiView`. The authenticated principal (an API key, defined in
``tenants``) is used through the small :class:`ApiPrincipal` protocol, so this module imports
no app.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shelfwise.datastores.redis_client import redis_call, tenant_key
from shelfwise.http.content import BoundedJSONParser, ORJSONRenderer, ProblemJSONRenderer
from shelfwise.http.errors import (
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    VALIDATION_ERROR,
    Problem,
    problem_type,
)
from shelfwise.observability.tracing import span

logger = logging.getLogger(__name__)

IDEMPOTENCY_IN_PROGRESS = problem_type(
    "idempotency_in_progress",
    409,
    "Request in progress",
    "A request with this Idempotency-Key is still being processed; retry shortly.",
)
IDEMPOTENCY_KEY_REUSED = problem_type(
    "idempotency_key_reused",
    422,
    "Idempotency-Key reused",
    "This Idempotency-Key was used for a different request; use a new key for a new request.",
)


class ApiPrincipal(Protocol):
    """What the platform needs to know about the caller (implemented by tenants' API key, which
    sets ``api_principal = True``)."""

    api_principal: bool

    @property
    def tenant_id(self) -> int: ...

    @property
    def key_id(self) -> str: ...

    @property
    def is_public_key(self) -> bool: ...

    @property
    def requests_per_minute(self) -> int: ...

    @property
    def burst(self) -> int: ...

    @property
    def record_cache_key(self) -> str | None:
        """A Redis key to read in the rate limit's round trip and hand to ``confirm``."""

    def confirm(self, raw: bytes | None) -> bool:
        """Check the caller against the value read (None: not read); raises a Problem if it is
        no longer valid. True if the caller's record was read again (scopes may have changed)."""


# --------------------------------------------------------------------------- rate limits

# GCRA (generic cell rate algorithm): one timestamp per bucket, burst tolerance, exact
# remaining/reset figures; atomic in Redis. KEYS[1] the bucket, KEYS[2] the principal's record
# ('' for none), ARGV[1] interval ms, ARGV[2] burst. Returns {allowed, remaining, retry_ms,
# reset_ms, record, prelude}: the record is read in the same round trip (see
# ApiPrincipal.confirm), and a view's prelude (RedisPrelude) runs after the charge when allowed.
_GCRA_LUA_HEAD = """
local record = false
if KEYS[2] ~= '' then record = redis.call('GET', KEYS[2]) end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now, record, false}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
"""
_GCRA_LUA_TAIL = "return {1, remaining, 0, new_tat - now, record, false}\n"


@dataclass(frozen=True)
class RedisPrelude:
    """Work a view wants done in the rate limit's round trip (one Redis call per request).

    ``body`` is Lua run after the request was charged: it reads ``KEYS[3]``… and ``ARGV[3]``…
    (``keys``, ``args``) and returns a value, handed back as the rate limit's ``prelude``."""

    body: str
    keys: tuple[str, ...]
    args: tuple[str, ...]


_scripts: dict[str, Any] = {}


def _script(client: Any, body: str) -> Any:
    """The rate-limit script (with a view's prelude), registered once per process (sent by
    hash, reloaded if Redis forgot it)."""
    script = _scripts.get(body)
    if script is None:
        source = _GCRA_LUA_HEAD + (
            f"local prelude = (function()\n{body}\nend)()\nreturn {{1, remaining, 0, new_tat - now, record, prelude}}\n"
            if body
            else _GCRA_LUA_TAIL
        )
        script = client.register_script(source)
        _scripts[body] = script
    return script


class RateLimitState:
    def __init__(self, *, limit: int, remaining: int, reset_seconds: int, window_seconds: int) -> None:
        self.limit = limit
        self.remaining = remaining
        self.reset_seconds = reset_seconds
        self.window_seconds = window_seconds

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }


def client_ip(request: HttpRequest) -> str:
    """The caller's address; X-Forwarded-For is trusted only behind SHELFWISE_TRUSTED_PROXIES proxies."""
    hops = settings.SHELFWISE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        parts = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(parts) >= hops:
            return parts[-hops]
    return str(request.META.get("REMOTE_ADDR", ""))


_UNAVAILABLE = object()


@dataclass
class RateLimitResult:
    state: RateLimitState | None  # None: Redis unavailable (the request was let through)
    reconfirmed: bool = False  # the principal's record was read again (scopes may differ)
    prelude: Any = _UNAVAILABLE  # the prelude's value; _UNAVAILABLE if it did not run

    @property
    def prelude_ran(self) -> bool:
        return self.prelude is not _UNAVAILABLE


def rate_limit_check(
    request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude | None = None
) -> RateLimitResult:
    """Charge one request to the caller's bucket; raises 429 when it is empty.

    Secret keys have one bucket per key; a public key (shared by every browser of the store)
    has one per key and client address. With Redis unavailable, requests are let through.
    The principal is confirmed (``ApiPrincipal.confirm``) with what the same call read, before
    a 429 is raised.
    """
    rate = max(int(principal.requests_per_minute), 1)
    burst = max(int(principal.burst), 1)
    bucket = principal.key_id
    if principal.is_public_key:
        bucket += ":" + hashlib.blake2b(client_ip(request).encode(), digest_size=8).hexdigest()
    keys = [tenant_key(principal.tenant_id, "rl", bucket), principal.record_cache_key or ""]
    args: list[Any] = [60_000 / rate, burst]
    if prelude is not None:
        keys += prelude.keys
        args += prelude.args
    body = prelude.body if prelude is not None else ""
    # With a prelude this call is also the view's first read (e.g. the recommendation cache).
    with span("api.rate_limit_and_prelude" if prelude is not None else "api.rate_limit"):
        result = redis_call(lambda client: _script(client, body)(keys=keys, args=args, client=client), default=None)
    reconfirmed = principal.confirm(result[4] if result is not None else None)
    if result is None:
        return RateLimitResult(None, reconfirmed)
    allowed, remaining, retry_ms, reset_ms = (int(float(v)) for v in result[:4])
    state = RateLimitState(
        limit=burst, remaining=remaining, reset_seconds=math.ceil(reset_ms / 1000), window_seconds=60
    )
    if not allowed:
        headers = state.headers() | {"Retry-After": str(max(1, math.ceil(retry_ms / 1000)))}
        raise Problem(RATE_LIMITED, f"Rate limit of {rate} requests per minute exceeded.", headers=headers)
    return RateLimitResult(state, reconfirmed, result[5] if prelude is not None else _UNAVAILABLE)


# --------------------------------------------------------------------------- answers before DRF

# Where a request's rate-limit outcome is kept when it was charged before DRF's machinery ran
# (see precharge): the outcome, or the Problem to raise. In request.META, which is the WSGI
# environ: it travels with the request when the fast path hands it to Django's full handler.
_PRECHARGED = "shelfwise.precharged"
_JSON_ACCEPT = frozenset({"", "*/*", "application/json", "application/*"})


def accepts_plain_json(request: HttpRequest) -> bool:
    """Whether the client takes ``application/json`` without any negotiation worth DRF's
    machinery (no Accept, or a plain JSON / wildcard one)."""
    accept = request.META.get("HTTP_ACCEPT", "")
    return all(part.split(";", 1)[0].strip() in _JSON_ACCEPT for part in accept.split(","))


def precharge(request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude) -> RateLimitResult | None:
    """Charge the request and run ``prelude`` before DRF's machinery, for views that answer some
    requests themselves (e.g. cache hits, ``shelfwise.http.fastpath``). The outcome is kept with the
    request: if it then goes through DRF after all, ``ApiView`` uses it instead of charging
    again (and raises the Problem it kept, e.g. a 429, at the usual point). None if a Problem
    was kept."""
    try:
        result = rate_limit_check(request, principal, prelude)
    except Problem as exc:
        request.META[_PRECHARGED] = exc
        return None
    request.META[_PRECHARGED] = result
    return result


def _charge(request: HttpRequest, principal: ApiPrincipal, prelude: RedisPrelude | None = None) -> RateLimitResult:
    precharged = request.META.pop(_PRECHARGED, None)
    if precharged is None:
        return rate_limit_check(request, principal, prelude)
    if isinstance(precharged, Problem):
        raise precharged
    return cast(RateLimitResult, precharged)


# --------------------------------------------------------------------------- idempotency

IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_MAX_STORED_BYTES = 1_000_000


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class IdempotencyGuard:
    """Remembers a POST's response under (key, Idempotency-Key) for 24 h and replays it.

    A second request with the same key and body gets the stored response (with
    ``Idempotent-Replayed: true``); with a different body, 422; while the first is still
    running, 409. Server errors are not stored, so the request can be retried.
    """

    def __init__(self, redis_key: str, fingerprint: str) -> None:
        self.redis_key = redis_key
        self.fingerprint = fingerprint

    @classmethod
    def begin(cls, request: Request, principal: ApiPrincipal) -> IdempotencyGuard | None:
        header = request.META.get("HTTP_IDEMPOTENCY_KEY")
        if header is None or request.method != "POST":
            return None
        if not IDEMPOTENCY_KEY_RE.match(header):
            raise Problem(
                VALIDATION_ERROR,
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                errors=[{"field": "Idempotency-Key", "code": "invalid_format", "message": "invalid header"}],
            )
        scope = hashlib.sha256(f"{principal.key_id}\0{header}".encode()).hexdigest()[:32]
        body = request._request.body  # read (bounded) in ApiView.initial
        fingerprint = hashlib.sha256(b"%s\0%s\0%s" % (request.method.encode(), request.path.encode(), body)).hexdigest()
        guard = cls(tenant_key(principal.tenant_id, "idem", scope), fingerprint)
        marker = orjson.dumps({"state": "processing", "fingerprint": fingerprint})
        unavailable = object()
        acquired = redis_call(
            lambda client: client.set(guard.redis_key, marker, nx=True, ex=IDEMPOTENCY_TTL_SECONDS),
            default=unavailable,
        )
        if acquired is unavailable:
            # Redis down: proceed without replay protection (rows' own ids still dedupe events).
            return None
        if acquired:
            return guard
        stored = redis_call(lambda client: client.get(guard.redis_key), default=None)
        if stored is None:
            return None
        record = orjson.loads(stored)
        if record.get("fingerprint") != fingerprint:
            raise Problem(IDEMPOTENCY_KEY_REUSED)
        if record.get("state") != "done":
            raise Problem(IDEMPOTENCY_IN_PROGRESS, headers={"Retry-After": "1"})
        response = Response(record["body"], status=record["status"])
        if record.get("content_type"):
            response.content_type = record["content_type"]
        response["Idempotent-Replayed"] = "true"
        raise _Replay(response)

    def finish(self, response: Response) -> None:
        if response.status_code >= 500:
            redis_call(lambda client: client.delete(self.redis_key), default=None)
            return
        record = orjson.dumps(
            {
                "state": "done",
                "fingerprint": self.fingerprint,
                "status": response.status_code,
                "body": response.data,
                "content_type": response.content_type,  # None: the renderer decides (JSON)
            },
            option=orjson.OPT_NON_STR_KEYS,
        )
        if len(record) > IDEMPOTENCY_MAX_STORED_BYTES:
            redis_call(lambda client: client.delete(self.redis_key), default=None)
            return
        redis_call(lambda client: client.set(self.redis_key, record, ex=IDEMPOTENCY_TTL_SECONDS), default=None)


# --------------------------------------------------------------------------- the base view


_default_headers: dict[type[APIView], dict[str, str]] = {}


class ApiView(APIView):
    """Base class of the v1 API views."""

    parser_classes: ClassVar[list[type[BaseParser]]] = [BoundedJSONParser]  # type: ignore[misc]
    renderer_classes: ClassVar[list[type[BaseRenderer]]] = [ORJSONRenderer, ProblemJSONRenderer]  # type: ignore[misc]
    max_body_bytes: int = 1024 * 1024
    confirms_principal = True  # the rate-limit round trip confirms a remembered key (see check_permissions)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self._rate_limit: RateLimitState | None = None
        self._idempotency: IdempotencyGuard | None = None
        self.prelude: RateLimitResult | None = None
        if request.method == "POST" and "HTTP_IDEMPOTENCY_KEY" in request.META:
            # Read the raw body now so the idempotency fingerprint can hash it (bounded).
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > self.max_body_bytes:
                raise Problem(PAYLOAD_TOO_LARGE, f"The body may be at most {self.max_body_bytes} bytes.")
            _ = request._request.body
        super().initial(request, *args, **kwargs)  # authentication, rate limit, permissions
        principal = request.user
        if getattr(principal, "api_principal", False):
            self._idempotency = IdempotencyGuard.begin(request, cast(ApiPrincipal, principal))

    def redis_prelude(self, request: Request) -> RedisPrelude | None:
        """Override to run view work in the rate limit's Redis call (the result is
        ``self.prelude``). May raise a Problem (e.g. invalid parameters)."""
        return None

    def _handles(self, request: Request) -> bool:
        method = (request.method or "").lower()
        return method in self.http_method_names and hasattr(self, method)

    def check_permissions(self, request: Request) -> None:
        principal = request.user
        if not getattr(principal, "api_principal", False):
            super().check_permissions(request)  # 401
            return
        api_principal = cast(ApiPrincipal, principal)
        try:
            super().check_permissions(request)  # scopes as this process last verified them
            prelude = self.redis_prelude(request) if self._handles(request) else None  # else a 405 follows
        except Problem:
            # The key is confirmed (and charged) first: a revoked key is a 401 whatever else is wrong.
            result = _charge(request._request, api_principal)
            self._rate_limit = result.state
            if not result.reconfirmed:
                raise
            super().check_permissions(request)  # the record as it is now decides
            if self._handles(request):
                self.redis_prelude(request)  # its checks still apply (the view computes without it)
            return
        # One Redis call: the charge, the key's current record and the view's prelude.
        result = _charge(request._request, api_principal, prelude)
        self._rate_limit, self.prelude = result.state, result
        if result.reconfirmed:
            super().check_permissions(request)  # the record as it is now decides

    @classmethod
    def fast_response(cls, data: Any, rate_limit: RateLimitState | None, headers: dict[str, str]) -> HttpResponse:
        """A 200 JSON answer made without DRF's machinery, with the headers DRF's would carry
        (``Allow``, ``Vary``, rate limits): for views that answer some requests themselves."""
        response = HttpResponse(ORJSONRenderer().render(data), content_type=ORJSONRenderer.media_type)
        default_headers = _default_headers.get(cls)
        if default_headers is None:
            view = cls()
            view.setup(HttpRequest())  # as as_view() does (HEAD follows GET: "Allow" lists it)
            default_headers = _default_headers[cls] = dict(view.default_response_headers)
        for name, value in default_headers.items():
            response[name] = value
        if rate_limit is not None:
            for name, value in rate_limit.headers().items():
                response[name] = value
        for name, value in headers.items():
            response[name] = value
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(self, "_rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response.setdefault(name, value)
        guard = getattr(self, "_idempotency", None)
        if guard is not None and not response.has_header("Idempotent-Replayed"):
            guard.finish(response)
        return response


# The shape of an answer: every field is always present (null when empty), so every field is
# read-only, which the OpenAPI schema (and the SDK types generated from it) shows as required —
# rather than optional, as a model field with a default would otherwise be. (A comment, not a
# docstring: drf-spectacular would give it to every subclass's schema as its description.)
class OutputSerializer(serializers.ModelSerializer[Any]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields
