"""Typed access to django-tenants' schema switching on the default connection."""

from __future__ import annotations

from typing import Any, Protocol, cast

from django.db import connection


class TenantConnection(Protocol):
    """The parts of django-tenants' DatabaseWrapper that Shelfwise uses."""

    schema_name: str
    tenant: Any

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema(self, schema_name: str, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


def db() -> TenantConnection:
    """The default connection, typed as the tenant-aware wrapper it is."""
    return cast(TenantConnection, connection)


def current_schema() -> str:
    return db().schema_name
