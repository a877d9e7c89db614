"""JSON in and out of the API (orjson), with a hard bound on what is read.

Kept apart from ``shelfwise.http.views`` because DRF imports these from settings while it is still
loading its own views module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from shelfwise.http.errors import PARSE_ERROR, PAYLOAD_TOO_LARGE, Problem


class BoundedJSONParser(BaseParser):
    """JSON (UTF-8) bodies up to the view's ``max_body_bytes``, parsed by orjson.

    Reads at most limit + 1 bytes, so an oversized or chunked body is refused without being
    buffered whole; orjson refuses invalid UTF-8, NaN/Infinity and nesting deeper than 1024.
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        view = (parser_context or {}).get("view")
        limit = int(getattr(view, "max_body_bytes", settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
        if stream is None:
            return None
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise Problem(PAYLOAD_TOO_LARGE, f"The body may be at most {limit} bytes; split it into smaller requests.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Problem(
                PARSE_ERROR, f"The body is not valid JSON: {exc.args[0] if exc.args else 'parse error'}"
            ) from exc


def _default(value: Any) -> Any:
    """What orjson does not serialize natively: decimals (prices) become JSON numbers."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        try:
            return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # orjson refuses integers beyond 64 bits (a store may have stored one in properties).
            return json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


class ProblemJSONRenderer(ORJSONRenderer):
    """Lets clients that send ``Accept: application/problem+json`` negotiate successfully."""

    media_type = "application/problem+json"
