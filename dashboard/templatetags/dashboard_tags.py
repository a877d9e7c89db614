"""Template helpers of the dashboard."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def dictget(mapping: Any, key: str) -> Any:
    """``{{ metrics|dictget:"ndcg@10" }}`` — keys that are not valid template variable names."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
