"""Typed access to django-tenants' schema switching on the default connection."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import psycopg
from django.db import OperationalError, connection

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
DEADLOCK_ATTEMPTS = 3


class TenantConnection(Protocol):
    """The parts of django-tenants' DatabaseWrapper that Shelfwise uses."""

    schema_name: str
    tenant: Any

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema(self, schema_name: str, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


def db() -> TenantConnection:
    """The default connection, typed as the tenant-aware wrapper it is."""
    return cast(TenantConnection, connection)


def current_schema() -> str:
    return db().schema_name


@contextmanager
def bulk_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A server-side-binding psycopg cursor on Django's connection, for bulk statements.

    It shares Django's connection (so its transaction and the tenant's search_path). Its
    statements may use ``%b`` placeholders: arrays are then sent in binary, ~8x cheaper to
    prepare than Django's client-side quoting of 10,000-element lists.
    """
    with connection.cursor():  # opens the connection and applies django-tenants' search_path
        pass
    raw = connection.connection
    if raw is None:  # pragma: no cover - the cursor above connected
        raise RuntimeError("no database connection")
    with psycopg.Cursor(raw) as cursor:
        yield cursor


def schemas_having_tables(schemas: list[str], tables: list[str]) -> set[str]:
    """The schemas among ``schemas`` in which every one of ``tables`` exists (a store being
    created has its row before its schema is migrated)."""
    if not schemas or not tables:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = ANY(%s) AND n.nspname = ANY(%s) GROUP BY n.nspname HAVING count(*) = %s",
            [tables, schemas, len(tables)],
        )
        return {row[0] for row in cursor.fetchall()}


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock (or a serialization
    conflict): the transaction can simply be run again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
            return True
        seen = seen.__cause__
    return False


def retried_on_deadlock(function: Callable[P, T]) -> Callable[P, T]:
    """Run a write again (up to DEADLOCK_ATTEMPTS times, after a short random pause) when
    PostgreSQL broke a deadlock by aborting it. Only when it is the outermost transaction: inside
    a caller's transaction the abort belongs to the caller."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if attempt == DEADLOCK_ATTEMPTS or connection.in_atomic_block or not is_deadlock(exc):
                    raise
                logger.warning("deadlock in %s, attempt %d: running it again", function.__name__, attempt)
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not security
        raise AssertionError("unreachable")  # pragma: no cover

    return run
