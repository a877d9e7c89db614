"""The store's ``events`` settings: event types and their weights, and auto-creation."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from catalog.contracts import RATING_VALUE_EPSILON, RATING_VALUE_LIMIT, EventType
from tenants.models import Tenant
from tenants.store_settings import settings_section_get

VIEW = "view"
ADD_TO_CART = "add_to_cart"
PURCHASE = "purchase"
RATING = "rating"
REMOVE_FROM_CART = "remove_from_cart"

# How much each event type says about a shopper's interest (purchase > cart > view). A rating's
# weight is multiplied by its value; a removal from the cart takes back part of an add.
DEFAULT_WEIGHTS: dict[str, float] = {
    VIEW: 1.0,
    ADD_TO_CART: 4.0,
    PURCHASE: 10.0,
    RATING: 1.0,
    REMOVE_FROM_CART: -2.0,
}
BUILTIN_TYPES = frozenset(DEFAULT_WEIGHTS)
MAX_EVENT_TYPES = 50


def _check_weights(weights: dict[str, float]) -> dict[str, float]:
    merged = {**DEFAULT_WEIGHTS, **weights}  # built-in types cannot be removed, only re-weighted
    if len(merged) > MAX_EVENT_TYPES:
        raise ValueError(f"at most {MAX_EVENT_TYPES} event types")
    for name, weight in merged.items():
        if not math.isfinite(weight) or not -100 <= weight <= 100:
            raise ValueError(f"weight of {name!r} must be a number between -100 and 100")
    return merged


class EventSettings(BaseModel):
    """Settings section ``events``."""

    # Strict JSON types, as documented: `true`, not "yes"; a number, not a numeric string.
    model_config = ConfigDict(extra="forbid", strict=True)

    weights: Annotated[dict[EventType, float], AfterValidator(_check_weights)] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="weight per event type; types beyond the built-in ones are the store's custom types",
    )
    auto_create_items: bool = Field(default=True, description="events for unknown items create them")
    auto_create_customers: bool = Field(default=True, description="events for unknown customers create them")

    def weight(self, event_type: str, value: float | None) -> float:
        """The interest an event expresses; ratings scale with their value."""
        base = self.weights.get(event_type, 0.0)
        if event_type == RATING:
            return base * rating_value(value)
        return base


def rating_value(value: float | None) -> float:
    """A rating as it is weighed (the same in training's SQL): bounded, tiny magnitudes as 0 —
    events stored before the API bounded values cannot overflow a training."""
    if value is None or abs(value) < RATING_VALUE_EPSILON:
        return 0.0
    return max(-RATING_VALUE_LIMIT, min(RATING_VALUE_LIMIT, value))


def event_settings_for(tenant: Tenant) -> EventSettings:
    """The tenant's event settings with defaults applied (reads the public tenant row)."""
    settings_json = Tenant.objects.filter(pk=tenant.pk).values_list("settings", flat=True).first() or {}
    return settings_section_get(settings_json, "events", EventSettings)
