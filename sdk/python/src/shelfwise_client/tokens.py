"""Customer tokens, minted on your server, for pages that use a public key.

A public key (``pk_live_…``) sits in your web pages, where anyone can read it, so Shelfwise
answers it with a shopper's *personal* recommendations only when the page also holds a token
for that shopper. Mint one on your server when you render the page of a signed-in shopper,
with the public key's signing secret (``cts_…``, shown on the dashboard's API keys page; keep
it on the server)::

    from shelfwise_client import customer_token

    token = customer_token(SIGNING_SECRET, PUBLIC_KEY, shopper.id, ttl=3600)
    # the page sends it as the Shelfwise-Customer-Token header (TypeScript: `customerToken`)

Without a valid token a public key gets the non-personal list, the same for every shopper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

__all__ = ["CUSTOMER_TOKEN_HEADER", "MAX_TTL_SECONDS", "customer_token"]

CUSTOMER_TOKEN_HEADER = "Shelfwise-Customer-Token"  # noqa: S105 - a header name
MAX_TTL_SECONDS = 7 * 24 * 3600  # the API refuses tokens valid for longer
_KEY_ID = re.compile(r"^(?:pk_live_)?([a-z2-7]{12})(?:_[A-Za-z0-9]+)?$")


def customer_token(
    signing_secret: str, public_key: str, customer_id: str, *, ttl: int = 3600, now: float | None = None
) -> str:
    """A token that lets ``public_key`` read ``customer_id``'s personal recommendations for
    ``ttl`` seconds (at most a week). ``public_key`` may be the whole key, its prefix
    (``pk_live_<id>``) or its id."""
    if not signing_secret.startswith("cts_"):
        raise ValueError("signing_secret is the public key's signing secret (cts_…), from the dashboard")
    match = _KEY_ID.match(public_key)
    if match is None:
        raise ValueError("public_key is a public key (pk_live_<id>_…), its prefix or its 12-character id")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl is between 1 and {MAX_TTL_SECONDS} seconds")
    if not customer_id:
        raise ValueError("customer_id is required")
    expiry = int(time.time() if now is None else now) + ttl
    message = f"ct1\n{match[1]}\n{customer_id}\n{expiry}".encode()
    signature = base64.urlsafe_b64encode(hmac.new(signing_secret.encode(), message, hashlib.sha256).digest())
    return f"ct1.{expiry}.{signature.rstrip(b'=').decode()}"
