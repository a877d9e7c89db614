"""pydantic validation errors as the API's per-field errors: stable codes, clear messages, and
never the rejected input itself (which may be personal data)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

# pydantic error types -> our stable per-field codes.
ERROR_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "too_long": "too_many",
    "too_short": "too_few",
    "string_pattern_mismatch": "invalid_format",
    "string_type": "invalid_type",
    "int_type": "invalid_type",
    "float_type": "invalid_type",
    "bool_type": "invalid_type",
    "bool_parsing": "invalid_type",
    "dict_type": "invalid_type",
    "list_type": "invalid_type",
    "model_type": "invalid_type",
    "decimal_type": "invalid_type",
    "float_parsing": "invalid_number",
    "decimal_parsing": "invalid_number",
    "finite_number": "invalid_number",
    "decimal_max_digits": "invalid_number",
    "decimal_max_places": "too_precise",
    "decimal_whole_digits": "invalid_number",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "datetime_parsing": "invalid_datetime",
    "datetime_from_date_parsing": "invalid_datetime",
    "datetime_type": "invalid_datetime",
    "timezone_aware": "timezone_required",
    "value_error": "invalid",
}

_PATTERN_MESSAGES: dict[str, str] = {}


def register_pattern_message(pattern: str, message: str) -> None:
    """A readable message for values that fail ``pattern`` (instead of printing the regex)."""
    _PATTERN_MESSAGES[pattern] = message


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """``[{"field", "code", "message"}]`` for each error of ``exc``."""
    out = []
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch":
            message = _PATTERN_MESSAGES.get(str((error.get("ctx") or {}).get("pattern")), message)
        out.append(
            {
                "field": ".".join(str(part) for part in error["loc"]) or None,
                "code": ERROR_CODES.get(error["type"], "invalid"),
                "message": message,
            }
        )
    return out
