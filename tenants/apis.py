"""Account-level API: who am I (key and tenant)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.authentication import ANY_SCOPE, principal_of


class WhoAmIApi(APIView):
    """The calling key's tenant, prefix and scopes; any valid key may ask."""

    required_scopes = ANY_SCOPE

    class OutputSerializer(serializers.Serializer):
        tenant = serializers.CharField()
        tenant_name = serializers.CharField()
        key_prefix = serializers.CharField()
        key_kind = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="whoami", responses=OutputSerializer, tags=["account"])
    def get(self, request: Request) -> Response:
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
