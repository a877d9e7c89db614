"""OpenAPI description of API-key authentication (bearer)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_live_<id>_<secret> | pk_live_<id>_<secret>",
            "description": "A store's API key. Secret keys (sk_) for servers; public keys (pk_) for browsers.",
        }
