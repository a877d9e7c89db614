"""API key format: generation, parsing and hashing (no database access here)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
KEY_ID_LENGTH = 12  # 60 bits: identifies the key, not secret
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40  # ~238 bits of entropy

KIND_PREFIX = {"secret": "sk", "public": "pk"}
PREFIX_KIND = {v: k for k, v in KIND_PREFIX.items()}
KEY_RE = re.compile(
    rf"^(?P<prefix>sk|pk)_live_(?P<id>[{KEY_ID_ALPHABET}]{{{KEY_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9]{{{SECRET_LENGTH}}})$"
)

# Scopes. `ingest` covers the whole catalog/customer/event API and implies `events`;
# `events` alone only sends events (what a public key may do); `recommend` reads
# recommendations; `admin` manages models, jobs, experiments and keys.
SCOPE_INGEST = "ingest"
SCOPE_EVENTS = "events"
SCOPE_RECOMMEND = "recommend"
SCOPE_ADMIN = "admin"
ALL_SCOPES = (SCOPE_INGEST, SCOPE_EVENTS, SCOPE_RECOMMEND, SCOPE_ADMIN)
IMPLIED_SCOPES = {SCOPE_INGEST: {SCOPE_EVENTS}}
PUBLIC_KEY_SCOPES = frozenset({SCOPE_EVENTS, SCOPE_RECOMMEND})
DEFAULT_SECRET_SCOPES = (SCOPE_INGEST, SCOPE_RECOMMEND, SCOPE_ADMIN)


@dataclass(frozen=True)
class ParsedKey:
    kind: str
    key_id: str
    secret: str


def generate_key_id() -> str:
    return "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))


def generate_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def format_key(kind: str, key_id: str, secret: str) -> str:
    return f"{KIND_PREFIX[kind]}_live_{key_id}_{secret}"


def parse_key(raw: str) -> ParsedKey | None:
    """Split a presented key into kind, id and secret; None if it is not well-formed."""
    match = KEY_RE.match(raw)
    if not match:
        return None
    return ParsedKey(PREFIX_KIND[match["prefix"]], match["id"], match["secret"])


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret. The secret is random and high-entropy, so a fast hash is right
    (as for GitHub or Stripe tokens); a slow password hash would only cost latency."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), expected_hash)


def effective_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    out = set(scopes)
    for scope in scopes:
        out |= IMPLIED_SCOPES.get(scope, set())
    return frozenset(out)
