"""Typed access to django-tenants' schema switching on the default connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import psycopg
from django.db import connection


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
