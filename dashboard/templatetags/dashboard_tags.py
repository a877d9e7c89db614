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


@register.filter
def without_model(metrics: Any) -> Any:
    """A version's figures for what the store serves without a model (``fallback``; versions
    trained before it was measured have only plain ``popularity``); None before evaluation."""
    if isinstance(metrics, dict):
        return metrics.get("fallback") or metrics.get("popularity")
    return None


@register.filter
def source(value: Any) -> str:
    """A variant's or scenario's source in words: ``{"kind": "version", "version": 3}`` → "model version 3"."""
    if not isinstance(value, dict) or not value:
        return "active model"
    kind = value.get("kind", "active")
    if kind == "version":
        return f"model version {value.get('version')}"
    if kind == "algorithm":
        return f"newest {value.get('algorithm')} version"
    return {"active": "active model", "popularity": "most popular", "trending": "trending"}.get(kind, str(kind))


@register.filter
def percent(value: Any, digits: int = 2) -> str:
    """0.0123 → "1.23 %"."""
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "–"
