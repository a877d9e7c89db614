"""Shared driver of the import_events / import_items commands."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context
from tqdm import tqdm

from catalog.importers import SourceRow
from catalog.services.imports import DEFAULT_CHUNK, ImportSummary
from tenants.models import Tenant


class ImportCommand(BaseCommand):
    formats: tuple[str, ...] = ()
    what = "rows"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="file to import (may be .gz, .xz or .bz2)")
        parser.add_argument("--tenant", required=True, help="the store's slug")
        parser.add_argument("--format", required=True, choices=self.formats, dest="fmt")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK, help="rows per transaction")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def reader(self, fmt: str, path: Path) -> Iterator[SourceRow]:
        raise NotImplementedError

    def run_import(self, **kwargs: Any) -> ImportSummary:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"no such file: {path}")
        if not 100 <= options["chunk_size"] <= 10_000:
            raise CommandError("--chunk-size must be between 100 and 10000")
        tenant = Tenant.objects.select_related("plan").filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        started = time.monotonic()
        bar = tqdm(
            unit=" rows",
            desc=f"{self.what} -> {tenant.slug}",
            disable=options["no_progress"] or None,  # None: only on a terminal
            file=sys.stderr,
            mininterval=0.5,
        )

        def progress(rows: int) -> None:
            bar.update(rows)

        with tenant_context(tenant):
            summary = self.run_import(
                rows=self.reader(options["fmt"], path),
                chunk_size=options["chunk_size"],
                progress=progress,
            )
        bar.close()
        elapsed = time.monotonic() - started
        self.stdout.write(f"Imported {path.name} into {tenant.slug} in {elapsed:.1f}s")
        for line in summary.lines():
            self.stdout.write(f"  {line}")
