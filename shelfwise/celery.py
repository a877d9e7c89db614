"""The Celery app: Redis broker, tenant-aware tasks, queues default / training / scoring.

Tasks are tenant-aware (tenant-schemas-celery): a task sent while the connection is in a
tenant's schema carries that schema in its headers and runs in it on the worker. Tasks take
primitive ids only and name their queue on the decorator.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
import redis
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)
from django.db import InterfaceError, OperationalError
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from tenant_schemas_celery.app import CeleryApp
from tenant_schemas_celery.task import TenantTask

from shelfwise.schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shelfwise.settings")
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Errors worth retrying (with backoff): the database or Redis blinked.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
)

# What sending a task raises when the broker (Redis) cannot be reached.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
)


class ShelfwiseTask(TenantTask):
    """Base task: tenant-aware, retried with exponential backoff and jitter on transient errors."""

    abstract = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 5


app = CeleryApp("shelfwise", task_cls=ShelfwiseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "training", "scoring")]
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**_: Any) -> None:
    """Keep Django's JSON logging config in workers instead of Celery's own."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the current request id into the task so its logs can be joined to the request."""
    from shelfwise.observability.context import current_request_id

    if headers is not None and "request_id" not in headers:
        request_id = current_request_id()
        if request_id:
            headers["request_id"] = request_id


_task_started: dict[str, float] = {}


@task_prerun.connect
def _task_context(task: Any = None, **_: Any) -> None:
    from django.db import connection

    from shelfwise.observability.context import accept_request_id, request_id_var, set_tenant

    headers = getattr(task.request, "headers", None) or {}
    request_id = headers.get("request_id") or getattr(task.request, "request_id", None)
    request_id_var.set(accept_request_id(request_id) if request_id else task.request.id)
    tenant = getattr(connection, "tenant", None)
    slug = getattr(tenant, "slug", None)
    set_tenant(slug)
    if task is not None and task.request.id:
        _task_started[task.request.id] = time.monotonic()


# A task's outcome as Celery's final state names it: a retry is counted as a retry (its run
# time included), a failure once when it fails for good, not per retry.
_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}


@task_postrun.connect
def _task_context_clear(task: Any = None, task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    from shelfwise.observability.context import request_id_var, set_tenant
    from shelfwise.observability.metrics import observe_task

    started = _task_started.pop(task_id, None) if task_id else None
    if task is not None:
        observe_task(
            task=task.name,
            outcome=_OUTCOMES.get(state or "", "other"),
            seconds=time.monotonic() - started if started is not None else None,
        )
    request_id_var.set(None)
    set_tenant(None)


@worker_process_init.connect
def _trace_worker_process(**_: Any) -> None:
    """Each pool process exports its own spans (no-op without an OTLP endpoint)."""
    from shelfwise.observability.tracing import init_tracing

    init_tracing("worker")


@worker_process_shutdown.connect
def _worker_process_gone(pid: int | None = None, **_: Any) -> None:
    from shelfwise.observability.metrics import process_dead

    process_dead(pid or os.getpid())
