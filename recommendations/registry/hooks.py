"""Narrow hooks from the model registry to serving (registered by serving in AppConfig.ready)."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

# (tenant id, model name, version) after a promotion committed
VersionPromotedListener = Callable[[int, str, int], None]
_promoted: list[VersionPromotedListener] = []


def version_promoted_listen(listener: VersionPromotedListener) -> None:
    if listener not in _promoted:
        _promoted.append(listener)


def version_promoted_notify(tenant_id: int, name: str, version: int) -> None:
    for listener in _promoted:
        try:
            listener(tenant_id, name, version)
        except Exception:
            logger.exception("promotion listener %s failed", getattr(listener, "__qualname__", listener))
