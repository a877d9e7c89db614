"""Structured JSON logs and secret redaction (shared with the Sentry reports, ``sentry``)."""

from __future__ import annotations

import logging
import re
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from shelfwise.observability.context import current_request_id, current_tenant

# API keys look like sk_live_<id>_<secret> / pk_live_<id>_<secret>; keep the identifying prefix
# (useful for support) and drop the secret wherever a key shows up by mistake.
API_KEY_RE = re.compile(r"\b((?:sk|pk)_(?:live|test)_[a-z0-9]{8,32})_[A-Za-z0-9]{16,}")
BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
REDACTED = "[redacted]"

# Keys whose values never go into logs or error reports, at any depth.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "password",
        "password1",
        "password2",
        "new_password1",
        "new_password2",
        "old_password",
        "secret",
        "api_key",
        "apikey",
        "key",
        "token",
        "csrfmiddlewaretoken",
        "sessionid",
        "cookie",
        "set-cookie",
        "x-api-key",
        "properties",
    }
)


def redact_text(text: str) -> str:
    """Remove API key secrets and bearer tokens from free text."""
    return BEARER_RE.sub(r"\1" + REDACTED, API_KEY_RE.sub(r"\1_" + REDACTED, text))


def redact(value: Any, depth: int = 0) -> Any:
    """Recursively redact secrets in a JSON-like structure."""
    if depth > 20:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SENSITIVE_KEYS and v else redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is written as its str() (e.g. django.request's request object, whose repr
    # holds the URL with its query string): redact that text.
    return redact_text(str(value))


class ContextFilter(logging.Filter):
    """Adds request id, tenant and trace id (None unless tracing records the current span) from
    the current context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a request's 4xx/5xx (django.request) after the request's context has been
        # reset; the request it passes along still carries its id and tenant.
        request = getattr(record, "request", None)
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or getattr(request, "request_id", None)
        if not hasattr(record, "tenant"):
            record.tenant = current_tenant() or getattr(getattr(request, "tenant", None), "slug", None) or None
        if not hasattr(record, "trace_id"):
            span_context = trace.get_current_span().get_span_context()
            record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        return True


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, request id, tenant, extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = redact(log_data)
        return redacted
