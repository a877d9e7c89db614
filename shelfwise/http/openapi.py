"""OpenAPI generation: every operation documents the problem+json errors it can answer with."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.pydantic import PydanticExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter

from shelfwise.http.input import OpenApiSchema

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable and machine-readable.",
    "properties": {
        "type": {"type": "string", "description": "URI reference documenting the problem type"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable machine-readable error code"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": "per-field (and, in batches, per-row) errors",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "description": "row of the batch"},
                    "field": {"type": ["string", "null"]},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["field", "code", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    "400": "Invalid request (`validation_error`, `parse_error`, `bad_request`)",
    "401": "Missing, invalid or revoked API key",
    "403": "Insufficient scope, suspended store, or quota exhausted",
    "404": "Not found (also for another store's objects)",
    "405": "Method not allowed",
    "406": "Not acceptable (the API answers JSON)",
    "409": "Conflict (e.g. a request with this Idempotency-Key is in progress)",
    "413": "Request body too large",
    "414": "Request URI too long (`uri_too_long`, answered by the web server)",
    "415": "Unsupported media type (send application/json)",
    "422": "Idempotency-Key reused for a different request",
    "429": "Rate limited; retry after `Retry-After` seconds",
    "500": "Internal error",
}


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's schema plus the shared error responses on every operation."""

    # Extra error codes a view can answer with beyond the shared ones.
    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404", "405", "406", "414", "429", "500"]
        if self.method in {"POST", "PUT", "PATCH"}:
            codes += ["413", "415"]
        if self.method == "POST":
            codes += ["409", "422"]
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        component = ResolvedComponent(
            name="Problem", type=ResolvedComponent.SCHEMA, object="Problem", schema=PROBLEM_SCHEMA
        )
        self.registry.register_on_missing(component)
        for code in self._error_codes():
            responses.setdefault(
                code,
                {
                    "description": _DESCRIPTIONS[code],
                    "content": {"application/problem+json": {"schema": component.ref}},
                },
            )
        return responses

    def map_renderers(self, attribute: str) -> list[str]:
        # Success bodies are application/json; problem+json is only for errors (added above).
        return [media for media in super().map_renderers(attribute) if media != "application/problem+json"]


class PydanticRequestExtension(PydanticExtension):
    """Pydantic models as request bodies, documented with their validation-mode JSON schema."""

    priority = 1

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        from pydantic.json_schema import model_json_schema

        documented = getattr(self.target, "OPENAPI_SCHEMA", None)
        if documented is not None:
            # A body documented as it was before it was a pydantic model (the published document
            # is the contract): its schema and the components it refers to, verbatim.
            for sub_name, sub_schema in getattr(self.target, "OPENAPI_COMPONENTS", {}).items():
                auto_schema.registry.register_on_missing(
                    ResolvedComponent(name=sub_name, type=ResolvedComponent.SCHEMA, object=sub_name, schema=sub_schema)
                )
            return dict(documented)
        schema = model_json_schema(
            self.target,
            ref_template="#/components/schemas/{model}",
            mode="validation" if direction == "request" else "serialization",
        )
        for sub_name, sub_schema in schema.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=sub_name, type=ResolvedComponent.SCHEMA, object=sub_name, schema=sub_schema)
            )
        return schema


def query_parameters(model: type[Any]) -> list[OpenApiParameter]:
    """OpenAPI query parameters from a pydantic query model (see ``shelfwise.http.input.parse_query``)."""
    properties = model.model_json_schema()["properties"]
    out = []
    for name, info in model.model_fields.items():
        documented = next((item for item in info.metadata if isinstance(item, OpenApiSchema)), None)
        if documented is not None:
            out.append(
                OpenApiParameter(
                    name,
                    dict(documented.schema),
                    OpenApiParameter.QUERY,
                    required=info.is_required(),
                    description=documented.description,
                )
            )
            continue
        schema = dict(properties[name])
        options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
        if options:  # Optional[...] (and Decimal's number-or-string): document the first form
            schema.update(options[0])
        schema.pop("title", None)
        description = schema.pop("description", "") or (info.description or "")
        out.append(
            OpenApiParameter(name, schema, OpenApiParameter.QUERY, required=info.is_required(), description=description)
        )
    return out
