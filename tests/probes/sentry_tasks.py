"""A task that always fails with a retried (transient) error, loaded only by the Sentry test's
worker (``celery worker --include tests.sentry_tasks``); never part of the product."""

from __future__ import annotations

import redis
from celery import shared_task


@shared_task(
    name="tests.sentry_tasks.always_failing",
    bind=True,
    autoretry_for=(redis.ConnectionError,),
    max_retries=2,
    retry_backoff=False,
    default_retry_delay=0,
)
def always_failing(self: object, api_key: str, properties: dict[str, str]) -> None:
    raise redis.ConnectionError(f"could not reach the store with {api_key} (shopper {len(properties)} properties)")
