"""Opaque keyset cursors for list endpoints (stable under inserts, no OFFSET scans)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from shelfwise.http.errors import VALIDATION_ERROR, Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def cursor_encode(*values: Any) -> str:
    """An opaque token for the position after a row (datetimes as ISO strings)."""
    payload = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def cursor_decode(token: str, types: tuple[type, ...]) -> list[Any]:
    """Decode a cursor made by ``cursor_encode``; 400 if it was not."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for value, kind in zip(raw, types, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive datetime")
                # In UTC: PostgreSQL refuses offsets beyond 15:59, which Python accepts.
                out.append(parsed.astimezone(UTC))
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
                    raise ValueError("not a bigint")
                out.append(value)
            else:
                out.append(kind(value))
        return out
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise Problem(
            VALIDATION_ERROR,
            "The cursor is not valid; use `next_cursor` from a previous page.",
            errors=[{"field": "cursor", "code": "invalid", "message": "not a cursor from this API"}],
        ) from exc
