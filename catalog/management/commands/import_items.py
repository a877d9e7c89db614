from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog.importers import ITEM_FORMATS, SourceRow, item_reader
from catalog.management.commands._import import ImportCommand
from catalog.services.imports import ImportSummary, items_import


class Command(ImportCommand):
    help = (
        "Import (upsert) catalog items from a file (csv, jsonl, movielens u.item, online-retail), in "
        "chunks through the same validation and services as POST /api/v1/items:batch."
    )
    formats = ITEM_FORMATS
    what = "items"

    def reader(self, fmt: str, path: Path) -> Iterator[SourceRow]:
        return item_reader(fmt, path)

    def run_import(self, **kwargs: Any) -> ImportSummary:
        return items_import(**kwargs)
