"""Customer tokens (tenants.customer_tokens): what a public key needs to read one shopper's
personal lists. The known-answer vector is shared with the Python SDK's test (its helper must mint
the same token)."""

from __future__ import annotations

import pytest

from tenants.customer_tokens import (
    MAX_LIFETIME_SECONDS,
    TokenCheck,
    signing_secret,
    token_check,
    token_mint,
)
from tenants.services import TenantError, apikey_create, apikey_revoke, apikey_signing_secret
from tests.helpers import CUSTOMER_TOKEN_VECTOR, TenantHandle

VECTOR = CUSTOMER_TOKEN_VECTOR
KEY_ID = "abcdefghijkl"
SECRET_HASH = "0" * 64
NOW = 1_900_000_000.0


def _mint(customer: str = "c1", expiry: int = int(NOW) + 600) -> str:
    secret = signing_secret(key_id=KEY_ID, secret_hash=SECRET_HASH)
    return token_mint(secret=secret, key_id=KEY_ID, customer_id=customer, expiry=expiry)


def _check(token: str | None, customer: str = "c1", **overrides: str) -> TokenCheck:
    identity = {"key_id": KEY_ID, "secret_hash": SECRET_HASH} | overrides
    return token_check(token, customer_id=customer, now=NOW, **identity)


def test_the_known_answer_vector() -> None:
    minted = token_mint(
        secret=VECTOR["secret"], key_id=VECTOR["key_id"], customer_id=VECTOR["customer_id"], expiry=VECTOR["expiry"]
    )
    assert minted == VECTOR["token"]


def test_a_token_is_for_one_customer_one_key_and_a_while() -> None:
    token = _mint()

    assert _check(token) == TokenCheck.VALID
    assert _check(token, customer="c2") == TokenCheck.INVALID
    assert _check(token, key_id="bbbbbbbbbbbb") == TokenCheck.INVALID
    assert _check(token, secret_hash="1" * 64) == TokenCheck.INVALID  # the key was replaced
    assert _check(_mint(expiry=int(NOW))) == TokenCheck.EXPIRED
    assert _check(_mint(expiry=int(NOW) + MAX_LIFETIME_SECONDS)) == TokenCheck.VALID
    assert _check(_mint(expiry=int(NOW) + MAX_LIFETIME_SECONDS + 3600)) == TokenCheck.INVALID  # not short-lived


@pytest.mark.parametrize(
    "token",
    ["", "ct1", "ct1..", "ct2.1900000600.x", "ct1.-5.x", "ct1.1900000600", "ct1.1900000600.x.y", "ct1." + "9" * 300],
)
def test_malformed_tokens_are_invalid_or_missing(token: str) -> None:
    assert _check(token) in {TokenCheck.INVALID, TokenCheck.MISSING}
    assert _check(None) == TokenCheck.MISSING


def test_a_tampered_expiry_or_signature_is_invalid() -> None:
    version, expiry, signature = _mint().split(".")
    assert _check(f"{version}.{int(expiry) + 1}.{signature}") == TokenCheck.INVALID
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert _check(f"{version}.{expiry}.{flipped}") == TokenCheck.INVALID


def test_signing_secrets_differ_per_key_and_end_with_it(tenant_a: TenantHandle, live_db: None) -> None:
    public, _raw = apikey_create(tenant=tenant_a.tenant, name="web", kind="public", actor="test")
    other, _raw = apikey_create(tenant=tenant_a.tenant, name="web 2", kind="public", actor="test")
    secret_key, _raw = apikey_create(tenant=tenant_a.tenant, name="server", kind="secret", actor="test")

    shown = apikey_signing_secret(api_key=public, actor="test")
    assert shown.startswith("cts_")
    assert shown == apikey_signing_secret(api_key=public, actor="test")  # stable
    assert shown != apikey_signing_secret(api_key=other, actor="test")
    with pytest.raises(TenantError):
        apikey_signing_secret(api_key=secret_key, actor="test")
    public = apikey_revoke(api_key=public, actor="test")
    with pytest.raises(TenantError):
        apikey_signing_secret(api_key=public, actor="test")
