"""Account-level API: who am I, and the store's settings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from shelfwise.http.errors import VALIDATION_ERROR, Problem
from shelfwise.http.input import parse_query
from shelfwise.http.views import ApiView
from tenants import keys
from tenants.authentication import ANY_SCOPE, principal_of
from tenants.models import Tenant
from tenants.store_settings import SettingsError, tenant_settings_all, tenant_settings_update


class WhoAmIApi(ApiView):
    """The calling key's tenant, prefix and scopes; any valid key may ask."""

    required_scopes = ANY_SCOPE

    class OutputSerializer(serializers.Serializer[Any]):
        tenant = serializers.CharField()
        tenant_name = serializers.CharField()
        key_prefix = serializers.CharField()
        key_kind = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="whoami", responses=OutputSerializer, tags=["account"])
    def get(self, request: Request) -> Response:
        parse_query(request)
        principal = principal_of(request)
        return Response(
            self.OutputSerializer(
                {
                    "tenant": principal.tenant.slug,
                    "tenant_name": principal.tenant.name,
                    "key_prefix": principal.key_prefix,
                    "key_kind": principal.record.kind,
                    "scopes": sorted(principal.scopes),
                }
            ).data
        )


def _settings_payload(tenant: Tenant) -> dict[str, Any]:
    return {name: section.model_dump(mode="json") for name, section in tenant_settings_all(tenant).items()}


class SettingsApi(ApiView):
    """The store's settings by section (``events``: event types, weights, auto-creation)."""

    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="settings_get", responses={200: dict[str, Any]}, tags=["account"])
    def get(self, request: Request) -> Response:
        parse_query(request)
        tenant = Tenant.objects.get(pk=principal_of(request).tenant_id)
        return Response(_settings_payload(tenant))

    @extend_schema(
        operation_id="settings_update",
        request=dict[str, Any],
        responses={200: dict[str, Any]},
        tags=["account"],
        description="Merge the given values into the named sections, e.g. "
        '`{"events": {"weights": {"wishlist": 3}}}` adds a custom event type.',
    )
    def patch(self, request: Request) -> Response:
        parse_query(request)
        principal = principal_of(request)
        if not isinstance(request.data, dict) or not request.data:
            raise Problem(VALIDATION_ERROR, "Send an object of settings sections to change.")
        try:
            tenant_settings_update(
                tenant=Tenant.objects.get(pk=principal.tenant_id), changes=request.data, actor=principal.actor
            )
        except SettingsError as exc:
            errors: list[dict[str, Any]]
            if isinstance(exc.errors, str):
                errors = [{"field": exc.section, "code": "invalid", "message": exc.errors}]
            else:
                errors = [
                    {
                        "field": ".".join([exc.section, *(str(part) for part in error["loc"])]),
                        "code": "invalid",
                        "message": error["msg"].removeprefix("Value error, "),
                    }
                    for error in exc.errors.errors(include_url=False, include_input=False)
                ]
            raise Problem(VALIDATION_ERROR, errors=errors) from exc
        return Response(_settings_payload(Tenant.objects.get(pk=principal.tenant_id)))
