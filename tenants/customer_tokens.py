"""Customer tokens: what lets a public key read one shopper's personal recommendations.

A public key (``pk_…``) is meant for web pages, where anyone can read it; with it alone, any
visitor could ask for any shopper's list. So a public key gets personal answers only for a
customer its page holds a token for, minted by the store's own server: ::

    ct1.<expiry>.<signature>

``expiry`` in unix seconds (at most ``MAX_LIFETIME_SECONDS`` ahead), ``signature`` the unpadded
base64url HMAC-SHA256 of ``ct1\\n<key id>\\n<customer id>\\n<expiry>`` keyed with the public
key's *signing secret* (``cts_…``, shown on the dashboard's API keys page). The signing secret is
derived from the key and the server's ``SECRET_KEY``, so nothing new is stored; revoking the key
(or rotating ``SECRET_KEY``) ends every token signed with it. Without a valid token a public key
gets the non-personal answer, the same whether or not the shopper exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from enum import StrEnum

from django.utils.crypto import salted_hmac

HEADER = "Shelfwise-Customer-Token"
META_KEY = "HTTP_SHELFWISE_CUSTOMER_TOKEN"
VERSION = "ct1"
SIGNING_PREFIX = "cts_"
MAX_LIFETIME_SECONDS = 7 * 24 * 3600
MAX_TOKEN_LENGTH = 200


class TokenCheck(StrEnum):
    """What a presented token turned out to be (``X-Shelfwise-Customer-Token`` says it)."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_secret(*, key_id: str, secret_hash: str) -> str:
    """The public key's signing secret (derived, stable while the key and SECRET_KEY are)."""
    digest = salted_hmac("shelfwise.customer-token.v1", f"{key_id}:{secret_hash}", algorithm="sha256").digest()
    return SIGNING_PREFIX + _b64(digest)


def _signature(secret: str, key_id: str, customer_id: str, expiry: int) -> str:
    message = f"{VERSION}\n{key_id}\n{customer_id}\n{expiry}".encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def token_mint(*, secret: str, key_id: str, customer_id: str, expiry: int) -> str:
    """A token for ``customer_id`` valid until ``expiry`` (unix seconds). What the SDKs'
    helpers do on the store's server; here for tests and the dashboard's example."""
    return f"{VERSION}.{expiry}.{_signature(secret, key_id, customer_id, expiry)}"


def token_check(
    token: str | None, *, key_id: str, secret_hash: str, customer_id: str, now: float | None = None
) -> TokenCheck:
    """Whether ``token`` lets this public key read ``customer_id``'s personal lists."""
    if not token:
        return TokenCheck.MISSING
    parts = token.split(".")
    if len(token) > MAX_TOKEN_LENGTH or len(parts) != 3 or parts[0] != VERSION or not parts[1].isdigit():
        return TokenCheck.INVALID
    expiry = int(parts[1])
    expected = _signature(signing_secret(key_id=key_id, secret_hash=secret_hash), key_id, customer_id, expiry)
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        return TokenCheck.INVALID
    current = time.time() if now is None else now
    if expiry <= current:
        return TokenCheck.EXPIRED
    if expiry > current + MAX_LIFETIME_SECONDS + 60:  # (a minute of clock skew)
        return TokenCheck.INVALID
    return TokenCheck.VALID
