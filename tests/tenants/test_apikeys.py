"""API key format, hashing and the rules for scopes and kinds."""

from __future__ import annotations

import pytest

from tenants import keys
from tenants.models import ApiKey
from tenants.services import TenantError, apikey_create
from tests.helpers import TenantHandle, tables_containing

pytestmark = pytest.mark.django_db


def test_key_has_identifying_prefix_and_only_its_hash_is_stored(tenant_a: TenantHandle) -> None:
    api_key, raw = apikey_create(tenant=tenant_a.tenant, name="ci", actor="test")

    parsed = keys.parse_key(raw)
    assert parsed is not None
    assert raw.startswith(f"sk_live_{api_key.pk}_")
    assert api_key.prefix == f"sk_live_{api_key.pk}"
    assert len(parsed.secret) == keys.SECRET_LENGTH
    row = ApiKey.objects.get(pk=api_key.pk)
    assert row.secret_hash == keys.hash_secret(parsed.secret)
    assert parsed.secret not in row.secret_hash


def test_raw_key_is_nowhere_in_the_database(tenant_a: TenantHandle) -> None:
    api_key, raw = apikey_create(tenant=tenant_a.tenant, name="scan me", actor="test")
    secret = raw.rsplit("_", 1)[1]

    assert tables_containing(secret) == []
    assert tables_containing(api_key.secret_hash) == ["public.tenants_apikey"]  # the scan does find things


def test_keys_are_unique_and_random(tenant_a: TenantHandle) -> None:
    raws = {apikey_create(tenant=tenant_a.tenant, name=f"k{i}", actor="test")[1] for i in range(5)}

    assert len(raws) == 5
    assert len({keys.parse_key(r).key_id for r in raws}) == 5


def test_public_key_cannot_get_secret_scopes(tenant_a: TenantHandle) -> None:
    with pytest.raises(TenantError, match="public key may only"):
        apikey_create(tenant=tenant_a.tenant, name="bad", kind="public", scopes=["ingest"], actor="test")

    assert not ApiKey.objects.filter(name="bad").exists()


def test_unknown_scope_is_refused(tenant_a: TenantHandle) -> None:
    with pytest.raises(TenantError, match="unknown scope"):
        apikey_create(tenant=tenant_a.tenant, name="bad", scopes=["root"], actor="test")


def test_plan_limits_active_keys(tenant_a: TenantHandle) -> None:
    plan = tenant_a.tenant.plan
    active = ApiKey.objects.filter(tenant=tenant_a.tenant, revoked_at__isnull=True).count()
    for i in range(plan.max_api_keys - active):
        apikey_create(tenant=tenant_a.tenant, name=f"fill {i}", actor="test")

    with pytest.raises(TenantError, match="active keys"):
        apikey_create(tenant=tenant_a.tenant, name="one too many", actor="test")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "sk_live_",
        "sk_test_abcdefghijkl_" + "a" * 40,
        "xx_live_abcdefghijkl_" + "a" * 40,
        "sk_live_ABCDEFGHIJKL_" + "a" * 40,
    ],
)
def test_parse_rejects_malformed(raw: str) -> None:
    assert keys.parse_key(raw) is None
