"""Bulk imports from files, chunk by chunk through the same services as the API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from catalog.contracts import ItemIn, validate_rows
from catalog.importers import SourceRow
from catalog.services.context import IngestContext
from catalog.services.events import events_ingest
from catalog.services.items import items_upsert
from catalog.services.rows import BatchResult

DEFAULT_CHUNK = 5_000
MAX_EXAMPLES = 10


@dataclass
class ImportSummary:
    """What an import did: rows read, stored, duplicates, and why the rest did not make it."""

    read: int = 0
    stored: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, result: BatchResult, lines: list[int]) -> None:
        self.stored += result.stored
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.duplicates += result.duplicates
        first: dict[int, str] = {}
        for error in result.errors:
            if error.index not in first:
                first[error.index] = error.code
                if len(self.examples) < MAX_EXAMPLES:
                    self.examples.append(f"line {lines[error.index]}: {error.field or 'row'}: {error.message}")
        self.rejected.update(first.values())

    def lines(self) -> list[str]:
        out = [f"rows read:   {self.read}"]
        if self.created or self.updated or self.unchanged:
            out.append(f"created:     {self.created}")
            out.append(f"updated:     {self.updated}")
            out.append(f"unchanged:   {self.unchanged}")
        else:
            out.append(f"stored:      {self.stored}")
            out.append(f"duplicates:  {self.duplicates} (already stored, not counted twice)")
        out.append(f"skipped:     {sum(self.skipped.values())}")
        out += [f"  {count:>9}  {reason}" for reason, count in self.skipped.most_common()]
        out.append(f"rejected:    {self.rejected_total}")
        out += [f"  {count:>9}  {code}" for code, count in self.rejected.most_common()]
        if self.examples:
            out.append("first rejections:")
            out += [f"  {example}" for example in self.examples]
        return out


def _chunks(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _split(chunk: list[SourceRow], summary: ImportSummary) -> tuple[list[dict[str, object]], list[int]]:
    rows, lines = [], []
    for source in chunk:
        summary.read += 1
        if source.row is None:
            summary.skipped[source.skipped or "skipped"] += 1
            continue
        rows.append(source.row)
        lines.append(source.line)
    return rows, lines


def events_import(
    *,
    rows: Iterable[SourceRow],
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import events into the current store."""
    summary = ImportSummary()
    for chunk in _chunks(rows, chunk_size):
        payload, lines = _split(chunk, summary)
        if payload:
            result = events_ingest(rows=payload, context=IngestContext.load())
            summary.add(result, lines)
        if progress:
            progress(len(chunk))
    return summary


def items_import(
    *,
    rows: Iterable[SourceRow],
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import (upsert) items into the current store."""
    summary = ImportSummary()
    for chunk in _chunks(rows, chunk_size):
        payload, lines = _split(chunk, summary)
        if payload:
            context = IngestContext.load()
            valid, errors = validate_rows(ItemIn, payload)
            result = items_upsert(
                rows=[(index, row.item_id, row) for index, row in valid],
                max_items=context.max_items,
            )
            result.errors.extend(errors)
            summary.add(result, lines)
        if progress:
            progress(len(chunk))
    return summary
