from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog.importers import EVENT_FORMATS, SourceRow, event_reader
from catalog.management.commands._import import ImportCommand
from catalog.services.imports import ImportSummary, events_import


class Command(ImportCommand):
    help = (
        "Import shopper events from a file (csv, jsonl, movielens u.data, online-retail), streamed in "
        "chunks through the same validation and services as POST /api/v1/events. Idempotent by event_id."
    )
    formats = EVENT_FORMATS
    what = "events"

    def reader(self, fmt: str, path: Path) -> Iterator[SourceRow]:
        return event_reader(fmt, path)

    def run_import(self, **kwargs: Any) -> ImportSummary:
        return events_import(**kwargs)
