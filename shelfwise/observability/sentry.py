"""Sentry: initialised only when a DSN is set; every report scrubbed of secrets and shoppers'
properties, and tagged with the request id."""

from __future__ import annotations

from typing import Any

from shelfwise.observability.context import current_request_id
from shelfwise.observability.logs import SENSITIVE_KEYS, redact


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: no key secret, bearer token or shopper property leaves the process.
    Also tags the report with the request id (a task's: that of the request that enqueued it)."""
    redacted: dict[str, Any] = redact(event)
    request_id = current_request_id()
    tags = redacted.setdefault("tags", {})
    if request_id and isinstance(tags, dict):
        tags.setdefault("request_id", request_id)
    return redacted


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    """Initialise sentry-sdk when a DSN is set (no sockets are opened otherwise)."""
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.redis import RedisIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False), RedisIntegration()],
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *sorted(SENSITIVE_KEYS)], recursive=True),
        before_send=_before_send,  # type: ignore[arg-type]  # sentry's Event is a TypedDict of a dict
        max_request_body_size="never",
        include_local_variables=False,
    )
