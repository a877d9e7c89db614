"""API-key authentication for DRF: resolves the tenant from the key and sets its schema.

The tenant comes only from the key presented as ``Authorization: Bearer <key>``, never from
the host, body, query or another header. A verified key record (hash, scopes, revocation,
tenant status) is cached in Redis for ``SHELFWISE_APIKEY_CACHE_SECONDS``; revocation and
suspension delete it, so they take effect on the next request. With Redis down the database
answers instead.

Each process also remembers the records it has verified. A request whose key is remembered is
checked against that copy at once, and the Redis copy is read in the same round trip as the
rate limit (``ApiView``); if the two differ (revoked, suspended, changed) or Redis has none,
the key is verified again from Redis or the database before the view runs (``confirm``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache, TLRUCache
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from shelfwise.datastores.postgres import db
from shelfwise.datastores.redis_client import redis_call
from shelfwise.http.errors import (
    INSUFFICIENT_SCOPE,
    INVALID_API_KEY,
    MISSING_API_KEY,
    RATE_LIMITED,
    REVOKED_API_KEY,
    TENANT_SUSPENDED,
    Problem,
)
from shelfwise.http.ratelimit import client_ip
from shelfwise.observability.context import set_tenant
from tenants import keys
from tenants.models import ApiKey, Tenant
from tenants.services import APIKEY_CACHE_PREFIX

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs to know about a key, as cached."""

    key_id: str
    kind: str
    scopes: frozenset[str]
    secret_hash: str
    revoked: bool
    tenant_id: int
    tenant_slug: str
    tenant_name: str
    schema_name: str
    tenant_status: str
    plan_id: int
    requests_per_minute: int
    burst: int

    def to_json(self) -> str:
        data = self.__dict__ | {"scopes": sorted(self.scopes)}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> KeyRecord:
        data = json.loads(raw)
        data["scopes"] = frozenset(data["scopes"])
        return cls(**data)

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyRecord:
        tenant = row.tenant
        return cls(
            key_id=row.pk,
            kind=row.kind,
            scopes=keys.effective_scopes(row.scopes),
            secret_hash=row.secret_hash,
            revoked=row.revoked_at is not None,
            tenant_id=tenant.pk,
            tenant_slug=tenant.slug,
            tenant_name=tenant.name,
            schema_name=tenant.schema_name,
            tenant_status=tenant.status,
            plan_id=tenant.plan_id,
            requests_per_minute=tenant.plan.requests_per_minute,
            burst=tenant.plan.burst,
        )

    def tenant(self) -> Tenant:
        """A detached Tenant for routing (schema, id, slug); re-read it before writing to it."""
        return Tenant(
            id=self.tenant_id,
            slug=self.tenant_slug,
            name=self.tenant_name,
            schema_name=self.schema_name,
            status=self.tenant_status,
            plan_id=self.plan_id,
        )


@dataclass
class ApiKeyPrincipal:
    """``request.user`` for API requests: the key, its scopes and its tenant."""

    record: KeyRecord
    tenant: Tenant
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_authenticated: bool = True
    is_anonymous: bool = False
    api_principal: bool = True  # marks the shelfwise.http.principal.ApiPrincipal protocol
    # The raw Redis record this principal was verified against (None: read from the database
    # or Redis in this request — nothing left to confirm).
    unconfirmed_raw: bytes | None = None

    @property
    def record_cache_key(self) -> str | None:
        """The Redis key to read with the rate limit, when the principal still needs confirming."""
        return APIKEY_CACHE_PREFIX + self.record.key_id if self.unconfirmed_raw is not None else None

    def confirm(self, raw: bytes | None) -> bool:
        """Check a remembered key against Redis's current copy (``raw``; None if Redis has none
        or is unavailable): unchanged, nothing to do; otherwise verify it again (raises a
        Problem if it is no longer usable). True if the record was read again."""
        if self.unconfirmed_raw is None:
            return False
        if raw is not None and raw == self.unconfirmed_raw:
            self.unconfirmed_raw = None
            return False
        _forget(self.record.key_id)
        self.unconfirmed_raw = None
        fresh, fresh_raw = key_record_get(self.record.key_id)
        if fresh is None or fresh.secret_hash != self.record.secret_hash or fresh.kind != self.record.kind:
            raise Problem(INVALID_API_KEY)
        _check_usable(fresh)
        self.record, self.scopes = fresh, fresh.scopes
        _remember(fresh, fresh_raw, self.tenant)
        return True

    # The shelfwise.http.principal.ApiPrincipal protocol (rate limits, idempotency).
    @property
    def tenant_id(self) -> int:
        return self.record.tenant_id

    @property
    def key_id(self) -> str:
        return self.record.key_id

    @property
    def is_public_key(self) -> bool:
        return self.record.kind == ApiKey.Kind.PUBLIC

    @property
    def requests_per_minute(self) -> int:
        return self.record.requests_per_minute

    @property
    def burst(self) -> int:
        return self.record.burst

    @property
    def key_prefix(self) -> str:
        return f"{keys.KIND_PREFIX[self.record.kind]}_live_{self.record.key_id}"

    @property
    def actor(self) -> str:
        """How this principal appears in the audit log."""
        return f"apikey:{self.key_prefix}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def principal_of(request: Request) -> ApiKeyPrincipal:
    """The authenticated key of an API request (views run only after HasApiKeyScope passed)."""
    principal = request.user
    if not isinstance(principal, ApiKeyPrincipal):
        raise Problem(MISSING_API_KEY)
    return principal


# A key id that does not exist, remembered in Redis: probing unknown ids costs no database read.
UNKNOWN_KEY = b"-"
UNKNOWN_KEY_SECONDS = 60


def key_record_get(key_id: str) -> tuple[KeyRecord | None, bytes | None]:
    """The key's record from Redis, or from the database (then cached); None if no such key
    (remembered as unknown for UNKNOWN_KEY_SECONDS). Also the record's raw Redis value (None
    unless it was written to or read from Redis)."""
    cache_key = APIKEY_CACHE_PREFIX + key_id
    cached = redis_call(lambda client: client.get(cache_key), default=None)
    if cached == UNKNOWN_KEY:
        return None, None
    if cached:
        return KeyRecord.from_json(cached), cached if isinstance(cached, bytes) else cached.encode()
    row = ApiKey.objects.select_related("tenant", "tenant__plan").filter(pk=key_id).first()
    if row is None:
        redis_call(lambda client: client.set(cache_key, UNKNOWN_KEY, ex=UNKNOWN_KEY_SECONDS), default=None)
        return None, None
    record = KeyRecord.from_row(row)
    raw = record.to_json().encode()
    stored = redis_call(
        lambda client: client.set(cache_key, raw, ex=settings.SHELFWISE_APIKEY_CACHE_SECONDS), default=None
    )
    return record, raw if stored else None


# --------------------------------------------------------------------------- failed authentications


def _failures_key(client_address: str) -> str:
    return "sw:authfail:" + hashlib.blake2b(client_address.encode(), digest_size=8).hexdigest()


def _refuse_if_failing(client_address: str | None) -> None:
    """Too many failed authentications from this address in the last minute: refused before any
    database read (guessing key ids is neither free load nor a timing oracle)."""
    if not client_address:
        return
    failures = redis_call(lambda client: client.get(_failures_key(client_address)), default=None)
    if failures is not None and int(failures) >= settings.SHELFWISE_AUTH_FAILURES_PER_MINUTE:
        raise Problem(
            RATE_LIMITED,
            "Too many failed authentications from this address; retry in a minute.",
            headers={"Retry-After": "60"},
        )


def _count_failure(client_address: str | None) -> None:
    if not client_address:
        return
    key = _failures_key(client_address)

    def count(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.set(key, 0, ex=60, nx=True)
        pipe.incr(key)
        pipe.execute()

    redis_call(count, default=None)


@dataclass(frozen=True)
class _Known:
    raw: bytes
    record: KeyRecord
    tenant: Tenant


# key id -> the record as last verified by this process (the most recently used 10,000 keys)
_known: LRUCache[str, _Known] = LRUCache(maxsize=10_000)
_known_lock = threading.Lock()


def _remember(record: KeyRecord, raw: bytes | None, tenant: Tenant) -> None:
    if raw is None:
        return
    with _known_lock:
        _known[record.key_id] = _Known(raw, record, tenant)


def _forget(key_id: str) -> None:
    with _known_lock:
        _known.pop(key_id, None)


def _check_usable(record: KeyRecord) -> None:
    if record.revoked:
        raise Problem(REVOKED_API_KEY)
    if record.tenant_status != Tenant.Status.ACTIVE:
        raise Problem(TENANT_SUSPENDED)


def _touch_expires(_key_id: str, _value: bool, now: float) -> float:
    return now + settings.SHELFWISE_APIKEY_TOUCH_SECONDS


# key id -> touched: present while this process wrote the key's last use recently.
_touched: TLRUCache[str, bool] = TLRUCache(maxsize=100_000, ttu=_touch_expires, timer=time.monotonic)
_touch_lock = threading.Lock()


def _touch(key_id: str) -> None:
    """Record last use, at most once per SHELFWISE_APIKEY_TOUCH_SECONDS per process and key."""
    with _touch_lock:
        if key_id in _touched:
            return
        _touched[key_id] = True
    try:
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
    except DatabaseError as exc:  # bookkeeping: a request that needs no database still answers
        logger.warning("could not record the last use of key %s: %s", key_id, exc)


def _from_memory(parsed: keys.ParsedKey) -> ApiKeyPrincipal | None:
    """The principal for a key this process verified before (only usable keys are remembered);
    it still needs confirming against Redis (``confirm``)."""
    with _known_lock:
        known = _known.get(parsed.key_id)
    if (
        known is None
        or known.record.kind != parsed.kind
        or not keys.secret_matches(parsed.secret, known.record.secret_hash)
    ):
        return None
    _touch(known.record.key_id)
    return ApiKeyPrincipal(
        record=known.record, tenant=known.tenant, scopes=known.record.scopes, unconfirmed_raw=known.raw
    )


def authenticate_key(raw_key: str, *, client_address: str | None = None) -> ApiKeyPrincipal:
    """Verify a presented key; raises a Problem (401/403, or 429 after too many failures from
    ``client_address``) or returns the principal."""
    parsed = keys.parse_key(raw_key)
    if parsed is None:
        _count_failure(client_address)
        raise Problem(INVALID_API_KEY)
    remembered = _from_memory(parsed)
    if remembered is not None:
        return remembered  # confirmed against Redis with the rate limit
    _refuse_if_failing(client_address)
    record, raw = key_record_get(parsed.key_id)
    # A key id with someone else's secret, a kind prefix that does not match, or an unknown
    # id: all the same 401, compared in constant time where a hash exists.
    if record is None or not keys.secret_matches(parsed.secret, record.secret_hash) or record.kind != parsed.kind:
        _count_failure(client_address)
        raise Problem(INVALID_API_KEY)
    _check_usable(record)
    _touch(record.key_id)
    tenant = record.tenant()
    _remember(record, raw, tenant)
    return ApiKeyPrincipal(record=record, tenant=tenant, scopes=record.scopes)


def remembered_principal(request: HttpRequest) -> ApiKeyPrincipal | None:
    """The principal of a request whose key this process has verified before, without any I/O
    (it still needs confirming: ``record_cache_key``/``confirm``, done by the rate limit's
    Redis call); None for anything else — the full authentication then decides."""
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    parsed = keys.parse_key(credential.strip())
    return _from_memory(parsed) if parsed is not None else None


def principal_activate(request: HttpRequest, principal: ApiKeyPrincipal) -> None:
    """Route the request to the key's tenant: its schema, and the tenant for middleware and logs."""
    db().set_tenant(principal.tenant)
    request.tenant = principal.tenant  # type: ignore[attr-defined]
    set_tenant(principal.tenant.slug)


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>``; on success the connection is switched to the key's tenant."""

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Problem(INVALID_API_KEY, "Use `Authorization: Bearer <key>`.")
        principal = authenticate_key(credential.strip(), client_address=client_ip(request._request))
        principal_activate(request._request, principal)
        return principal, principal.key_prefix

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="shelfwise"'


ANY_SCOPE = "*"  # any valid key (e.g. "which key is this?")


class HasApiKeyScope(BasePermission):
    """Requires an authenticated key holding the view's scope for this method.

    Views declare ``required_scopes`` as a scope or a dict of method -> scope; a view without
    any refuses every request (refuse by default).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiKeyPrincipal):
            raise Problem(MISSING_API_KEY)
        if not getattr(view, "confirms_principal", False):
            principal.confirm(None)  # ApiView confirms in its rate-limit round trip; others here
        required = getattr(view, "required_scopes", None)
        if isinstance(required, dict):
            required = required.get(request.method or "GET")
        if required == ANY_SCOPE:
            return True
        if not required or not principal.has_scope(required):
            raise Problem(
                INSUFFICIENT_SCOPE,
                f"This operation needs the `{required}` scope." if required else "This operation is not available.",
            )
        return True
