"""Narrow hooks through which the catalog tells other apps what changed.

Serving (recommendations) registers listeners in its AppConfig.ready; the catalog never imports
it. Listeners run after the transaction that made the change has committed and must not raise
(a failure is logged, never turned into a failed ingestion).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

# (tenant id, external ids of the customers whose events were stored)
EventsIngestedListener = Callable[[int, Sequence[str]], None]
# (tenant id, external id of the erased customer)
CustomerErasedListener = Callable[[int, str], None]
# (tenant id, external ids of items created, changed or deleted)
ItemsChangedListener = Callable[[int, Sequence[str]], None]

# (tenant id, external ids of the customers whose events were replayed): the online features
# were recomputed from PostgreSQL
FeaturesRebuiltListener = Callable[[int, Sequence[str]], None]

_events_ingested: list[EventsIngestedListener] = []
_features_rebuilt: list[FeaturesRebuiltListener] = []
_customer_erased: list[CustomerErasedListener] = []
_items_changed: list[ItemsChangedListener] = []


def events_ingested_listen(listener: EventsIngestedListener) -> None:
    if listener not in _events_ingested:
        _events_ingested.append(listener)


def features_rebuilt_listen(listener: FeaturesRebuiltListener) -> None:
    if listener not in _features_rebuilt:
        _features_rebuilt.append(listener)


def customer_erased_listen(listener: CustomerErasedListener) -> None:
    if listener not in _customer_erased:
        _customer_erased.append(listener)


def items_changed_listen(listener: ItemsChangedListener) -> None:
    if listener not in _items_changed:
        _items_changed.append(listener)


def _notify(listeners: Sequence[Callable[..., None]], *args: object) -> None:
    for listener in listeners:
        try:
            listener(*args)
        except Exception:
            logger.exception("catalog listener %s failed", getattr(listener, "__qualname__", listener))


def events_ingested_notify(tenant_id: int, customer_ids: Sequence[str]) -> None:
    _notify(_events_ingested, tenant_id, customer_ids)


def features_rebuilt_notify(tenant_id: int, customer_ids: Sequence[str]) -> None:
    _notify(_features_rebuilt, tenant_id, customer_ids)


def customer_erased_notify(tenant_id: int, customer_id: str) -> None:
    """Called inside the erasure's transaction: listeners record what they must (durably, with
    the erasure) and must not swallow failures silently: errors propagate (the erasure rolls
    back and the caller can retry it)."""
    for listener in _customer_erased:
        listener(tenant_id, customer_id)


def items_changed_notify(tenant_id: int, item_ids: Sequence[str]) -> None:
    _notify(_items_changed, tenant_id, item_ids)
