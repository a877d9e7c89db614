"""Per-request / per-task context (request id, tenant) shared by logs, errors and Sentry.

Context variables rather than thread locals, so the values follow the code into any thread or
coroutine that copies the context.
"""

from __future__ import annotations

import contextvars
import re
import uuid

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
tenant_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)

# Accept a caller's X-Request-ID only if it is a sane token; otherwise make our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The caller's request id if well-formed, else a fresh one."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()


def current_tenant() -> str | None:
    return tenant_var.get()


def set_tenant(slug: str | None) -> None:
    """Record the tenant for logs and error reports (the DB schema is set separately)."""
    tenant_var.set(slug)
    try:
        import sentry_sdk

        sentry_sdk.get_isolation_scope().set_tag("tenant", slug or "public")
    except ImportError:  # pragma: no cover - sentry-sdk is a hard dependency
        pass
