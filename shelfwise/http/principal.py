"""The authenticated caller, as the platform sees it.

The principal is an API key, defined in ``tenants``; the platform (rate limits, idempotency, the
base view) uses it through this protocol only, so it imports no app.
"""

from __future__ import annotations

from typing import Protocol


class ApiPrincipal(Protocol):
    """What the platform needs to know about the caller (implemented by tenants' API key, which
    sets ``api_principal = True``)."""

    api_principal: bool

    @property
    def tenant_id(self) -> int: ...

    @property
    def key_id(self) -> str: ...

    @property
    def is_public_key(self) -> bool: ...

    @property
    def requests_per_minute(self) -> int: ...

    @property
    def burst(self) -> int: ...

    @property
    def record_cache_key(self) -> str | None:
        """A Redis key to read in the rate limit's round trip and hand to ``confirm``."""

    def confirm(self, raw: bytes | None) -> bool:
        """Check the caller against the value read (None: not read); raises a Problem if it is
        no longer valid. True if the caller's record was read again (scopes may have changed)."""
