"""``Idempotency-Key`` on POST: a request's response is remembered in Redis for 24 hours and
replayed to a retry with the same key and body."""

from __future__ import annotations

import hashlib
import re

import orjson
from rest_framework.request import Request
from rest_framework.response import Response

from shelfwise.datastores.redis_client import redis_call, tenant_key
from shelfwise.http.errors import VALIDATION_ERROR, Problem, problem_type
from shelfwise.http.principal import ApiPrincipal

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


IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_MAX_STORED_BYTES = 1_000_000


class Replay(Exception):
    """A stored response to send again (raised by ``IdempotencyGuard.begin``, answered by the view)."""

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
        raise Replay(response)

    def release(self) -> None:
        """Forget the key (the request failed: a retry with it runs again)."""
        redis_call(lambda client: client.delete(self.redis_key), default=None)

    def finish(self, response: Response) -> None:
        if response.status_code >= 500:
            self.release()
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
