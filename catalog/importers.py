"""Readers for bulk imports: files of events or items in several formats, streamed as the API's
row dicts so they go through exactly the same validation and services as the API.

Formats:

- ``csv`` — a header row with the API's field names (``properties`` as a JSON object string;
  ``categories`` separated by ``|``); empty cells are absent fields.
- ``jsonl`` — one API row object per line.
- ``movielens`` — MovieLens ``u.data`` (user, item, rating, unix time; tab-separated) as
  ``rating`` events, or ``u.item`` as items with the genre flags as categories.
- ``online-retail`` — the UCI Online Retail CSV (the demo store): invoice lines become
  ``purchase`` events (quantity as value, the invoice number as ``order_id``, unit price as a
  property, times in Europe/London);
  lines without a customer, cancellations (invoices starting with ``C``), non-product codes
  (postage, fees, manual adjustments) and non-positive quantities are skipped and counted.
  As items: one per product code, titled with its most common description, priced at its most
  common unit price in GBP, with categories derived from words in the description.

Files may be compressed (``.gz``, ``.xz``, ``.bz2``). Every reader yields a ``SourceRow``: the
line and either the API row or why the line was skipped; memory stays bounded by the chunk
size (and, for the online-retail item aggregation, by the number of distinct products).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson

EVENT_FORMATS = ("csv", "jsonl", "movielens", "online-retail")
ITEM_FORMATS = ("csv", "jsonl", "movielens", "online-retail")

LONDON = ZoneInfo("Europe/London")
PRODUCT_CODE_RE = re.compile(r"^\d{5}[A-Za-z]{0,2}$")
MOVIELENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

# Derived categories for the online-retail products (its data has none): a description word
# (or phrase) puts the product in the category.
RETAIL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "christmas": ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "NATIVITY"),
    "candles and lights": ("CANDLE", "T-LIGHT", "TEALIGHT", "LANTERN", "LIGHTS", "LAMP", "NIGHTLIGHT"),
    "bags": ("BAG", "TOTE", "SHOPPER", "RUCKSACK", "BACKPACK"),
    "kitchen": ("MUG", "CUP", "CUPS", "PLATE", "PLATES", "BOWL", "TEAPOT", "JUG", "BAKING", "KITCHEN", "NAPKINS",
                "SPOON", "TRAY", "TEA", "COFFEE", "CAKE", "LUNCH", "BOTTLE", "GLASS", "APRON", "TOWEL"),
    "stationery": ("CARD", "CARDS", "WRAP", "PAPER", "NOTEBOOK", "PEN", "PENCIL", "PENCILS", "STICKER",
                   "STICKERS", "TAPE", "ENVELOPE", "CALENDAR", "ERASER", "BOOK"),
    "home decor": ("HEART", "SIGN", "FRAME", "CLOCK", "MIRROR", "CUSHION", "DOORMAT", "HOOK", "HANGER", "VASE",
                   "ORNAMENT", "DECORATION", "GARLAND", "BUNTING", "WREATH", "DOORSTOP", "HANGING"),
    "garden": ("GARDEN", "PLANT", "FLOWER", "WATERING", "BIRD", "POT", "HERB"),
    "toys and games": ("TOY", "GAME", "PUZZLE", "DOLL", "DOLLY", "SPACEBOY", "PLAYHOUSE", "JIGSAW", "CHILDRENS",
                       "CHILDS", "SKITTLES", "DOMINOES"),
    "accessories": ("NECKLACE", "BRACELET", "EARRINGS", "RING", "HAIR", "PURSE", "UMBRELLA", "KEYRING", "CHARM"),
    "storage": ("BOX", "BOXES", "STORAGE", "BASKET", "CRATE", "DRAWER", "JAR", "TIN", "TINS", "CASE"),
}  # fmt: skip
_WORD_TO_CATEGORIES: dict[str, set[str]] = defaultdict(set)
for _category, _words in RETAIL_CATEGORIES.items():
    for _word in _words:
        _WORD_TO_CATEGORIES[_word].add(_category)


@dataclass(frozen=True)
class SourceRow:
    """A row read from a file: its line, and the API row or why it was skipped."""

    line: int
    row: dict[str, Any] | None
    skipped: str | None = None


def open_text(path: Path) -> IO[str]:
    """Open a text file, decompressing by suffix."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    if suffix == ".xz":
        return io.TextIOWrapper(lzma.open(path), encoding="utf-8", newline="")
    if suffix == ".bz2":
        return io.TextIOWrapper(bz2.open(path), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def retail_categories(description: str) -> list[str]:
    words = re.findall(r"[A-Z][A-Z'-]+", description.upper())
    found: set[str] = set()
    for word in words:
        found |= _WORD_TO_CATEGORIES.get(word, set())
    return sorted(found)


# --------------------------------------------------------------------------- generic formats


def _csv_row(raw: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if key is None or value is None or value == "":
            continue
        if key == "properties":
            row[key] = orjson.loads(value)
        elif key == "categories":
            row[key] = [part for part in value.split("|") if part]
        elif key in {"value", "price"}:
            row[key] = float(value)
        elif key in {"in_stock", "anonymous"}:
            row[key] = value.strip().lower() in {"1", "true", "yes"}
        else:
            row[key] = value
    return row


def read_csv(path: Path) -> Iterator[SourceRow]:
    with open_text(path) as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            try:
                yield SourceRow(line, _csv_row(raw))
            except (ValueError, orjson.JSONDecodeError) as exc:
                yield SourceRow(line, None, f"unreadable: {exc.__class__.__name__}")


def read_jsonl(path: Path) -> Iterator[SourceRow]:
    with open_text(path) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = orjson.loads(text)
            except orjson.JSONDecodeError:
                yield SourceRow(line, None, "not valid JSON")
                continue
            yield SourceRow(line, row) if isinstance(row, dict) else SourceRow(line, None, "not a JSON object")


# --------------------------------------------------------------------------- MovieLens


def read_movielens_events(path: Path) -> Iterator[SourceRow]:
    with open_text(path) as handle:
        for line, text in enumerate(handle, start=1):
            parts = text.split("\t")
            if len(parts) != 4:
                yield SourceRow(line, None, "not user<TAB>item<TAB>rating<TAB>time")
                continue
            user, item, rating, stamp = (part.strip() for part in parts)
            yield SourceRow(
                line,
                {
                    "event_id": f"ml-{user}-{item}",
                    "customer_id": user,
                    "item_id": item,
                    "type": "rating",
                    "value": float(rating),
                    "timestamp": datetime.fromtimestamp(int(stamp), tz=UTC).isoformat(),
                },
            )


def read_movielens_items(path: Path) -> Iterator[SourceRow]:
    with path.open(encoding="latin-1") as handle:
        for line, text in enumerate(handle, start=1):
            parts = text.rstrip("\n").split("|")
            if len(parts) < 5 + len(MOVIELENS_GENRES):
                yield SourceRow(line, None, "not a u.item line")
                continue
            flags = parts[5 : 5 + len(MOVIELENS_GENRES)]
            yield SourceRow(
                line,
                {
                    "item_id": parts[0],
                    "title": parts[1][:500],
                    "categories": [genre for genre, flag in zip(MOVIELENS_GENRES, flags, strict=True) if flag == "1"],
                    "properties": {"release_date": parts[2]} if parts[2] else {},
                },
            )


# --------------------------------------------------------------------------- Online Retail


def _retail_time(text: str) -> str:
    naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - local UK time, zoned next line
    return naive.replace(tzinfo=LONDON).isoformat()


def read_online_retail_events(path: Path) -> Iterator[SourceRow]:
    seen_in_invoice: Counter[tuple[str, str]] = Counter()
    current_invoice = None
    with open_text(path) as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            invoice, code = raw["InvoiceNo"].strip(), raw["StockCode"].strip()
            if invoice != current_invoice:  # lines of an invoice are contiguous
                seen_in_invoice.clear()
                current_invoice = invoice
            if invoice.upper().startswith("C"):
                yield SourceRow(line, None, "cancellation (excluded)")
                continue
            if not raw["CustomerID"].strip():
                yield SourceRow(line, None, "no customer id")
                continue
            if not PRODUCT_CODE_RE.match(code):
                yield SourceRow(line, None, "not a product (postage, fee, adjustment)")
                continue
            quantity = float(raw["Quantity"])
            if quantity <= 0:
                yield SourceRow(line, None, "non-positive quantity")
                continue
            seen_in_invoice[(invoice, code)] += 1
            customer = raw["CustomerID"].strip().removesuffix(".0")
            yield SourceRow(
                line,
                {
                    "event_id": f"or-{invoice}-{code}-{seen_in_invoice[(invoice, code)]}",
                    "customer_id": customer,
                    "item_id": code,
                    "type": "purchase",
                    "value": quantity,
                    "timestamp": _retail_time(raw["InvoiceDate"]),
                    "order_id": invoice,
                    "properties": {"unit_price": float(raw["UnitPrice"]), "country": raw["Country"].strip()},
                },
            )


def read_online_retail_items(path: Path) -> Iterator[SourceRow]:
    """One item per product code (aggregated over the file: most common description and price)."""
    descriptions: dict[str, Counter[str]] = defaultdict(Counter)
    prices: dict[str, Counter[Decimal]] = defaultdict(Counter)
    last_line: dict[str, int] = {}
    with open_text(path) as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            code = raw["StockCode"].strip()
            if not PRODUCT_CODE_RE.match(code):
                continue  # postage, fees, manual adjustments: not products
            description = raw["Description"].strip()
            if description and description.upper() == description:  # staff notes are lower case
                descriptions[code][description] += 1
            try:
                price = Decimal(raw["UnitPrice"])
            except InvalidOperation:
                price = Decimal(0)
            if price > 0:
                prices[code][price] += 1
            last_line[code] = line
    for code, line in last_line.items():
        title = descriptions[code].most_common(1)[0][0] if descriptions[code] else code
        common_price = prices[code].most_common(1)[0][0] if prices[code] else None
        yield SourceRow(
            line,
            {
                "item_id": code,
                "title": title.title()[:500],
                "categories": retail_categories(title),
                **({"price": float(common_price), "currency": "GBP"} if common_price is not None else {}),
                "in_stock": True,
            },
        )


def event_reader(fmt: str, path: Path) -> Iterator[SourceRow]:
    readers = {
        "csv": read_csv,
        "jsonl": read_jsonl,
        "movielens": read_movielens_events,
        "online-retail": read_online_retail_events,
    }
    return readers[fmt](path)


def item_reader(fmt: str, path: Path) -> Iterator[SourceRow]:
    readers = {
        "csv": read_csv,
        "jsonl": read_jsonl,
        "movielens": read_movielens_items,
        "online-retail": read_online_retail_items,
    }
    return readers[fmt](path)
