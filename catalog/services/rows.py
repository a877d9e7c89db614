"""Shared pieces of the batch services: results, id resolution and quota errors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.contracts import RowError
from shelfwise.datastores.postgres import bulk_cursor

MAX_REPORTED_ERRORS = 1000


def quota_error(index: int, what: str, limit: int) -> RowError:
    return RowError(index, None, "quota_exceeded", f"the plan allows {limit} {what}; this row would exceed it")


@dataclass
class BatchResult:
    """Outcome of a batch write, reported to the caller row by row."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return len({error.index for error in self.errors})

    @property
    def accepted(self) -> int:
        return self.received - self.rejected

    def errors_payload(self) -> tuple[list[dict[str, Any]], bool]:
        ordered = sorted(self.errors, key=lambda error: (error.index, error.field or ""))
        return [error.as_dict() for error in ordered[:MAX_REPORTED_ERRORS]], len(ordered) > MAX_REPORTED_ERRORS


def ids_for(table: str, external_ids: Iterable[str]) -> dict[str, int]:
    """Internal ids of the rows with these external ids (one query)."""
    wanted = list(set(external_ids))
    if not wanted:
        return {}
    with bulk_cursor() as cursor:
        cursor.execute(
            f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%b::text[])",  # noqa: S608 - our table
            [wanted],
        )
        return dict(cursor.fetchall())


def insert_stubs(
    table: str, external_ids: list[str], now: datetime, columns: dict[str, Any]
) -> tuple[dict[str, int], int]:
    """Create minimal rows for unknown ids (ON CONFLICT DO NOTHING, so a concurrent insert of the
    same id is not an error); returns the ids of every requested row and how many were new.

    Rows are inserted in the order of their ids: two batches creating overlapping ids then take
    the unique index's locks in the same order and wait for each other instead of deadlocking."""
    if not external_ids:
        return {}, 0
    external_ids = sorted(set(external_ids))
    names = ", ".join(columns)
    placeholders = ", ".join(["%s"] * len(columns))
    with bulk_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (external_id, {names}, created_at, updated_at) "  # noqa: S608 - our table name
            f"SELECT x, {placeholders}, %s, %s FROM unnest(%b::text[]) AS x "
            f"ON CONFLICT (external_id) DO NOTHING RETURNING external_id, id",
            [*columns.values(), now, now, external_ids],
        )
        created = dict(cursor.fetchall())
    new = len(created)
    missing = [external_id for external_id in external_ids if external_id not in created]
    if missing:  # created concurrently by another request
        created.update(ids_for(table, missing))
    return created, new
