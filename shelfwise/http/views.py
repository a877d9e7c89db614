"""The base of every v1 API view: JSON in and out (orjson), body-size limits, per-key rate
limits with ``RateLimit-*`` headers (``ratelimit``), and ``Idempotency-Key`` on POST
(``idempotency``).

Apps' views subclass :class:`ApiView`. The authenticated principal (an API key, defined in
``tenants``) is used through the small :class:`ApiPrincipal` protocol, so this module imports
no app.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shelfwise.http.content import BoundedJSONParser, ORJSONRenderer, ProblemJSONRenderer
from shelfwise.http.errors import (
    PAYLOAD_TOO_LARGE,
    Problem,
)
from shelfwise.http.idempotency import IdempotencyGuard, Replay
from shelfwise.http.principal import ApiPrincipal
from shelfwise.http.ratelimit import RateLimitResult, RateLimitState, RedisPrelude, charge

logger = logging.getLogger(__name__)


_default_headers: dict[type[APIView], dict[str, str]] = {}


class ApiView(APIView):
    """Base class of the v1 API views."""

    parser_classes: ClassVar[list[type[BaseParser]]] = [BoundedJSONParser]  # type: ignore[misc]
    renderer_classes: ClassVar[list[type[BaseRenderer]]] = [ORJSONRenderer, ProblemJSONRenderer]  # type: ignore[misc]
    max_body_bytes: int = 1024 * 1024
    confirms_principal = True  # the rate-limit round trip confirms a remembered key (see check_permissions)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self._rate_limit: RateLimitState | None = None
        self._idempotency: IdempotencyGuard | None = None
        self.prelude: RateLimitResult | None = None
        if request.method == "POST" and "HTTP_IDEMPOTENCY_KEY" in request.META:
            # Read the raw body now so the idempotency fingerprint can hash it (bounded).
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > self.max_body_bytes:
                raise Problem(PAYLOAD_TOO_LARGE, f"The body may be at most {self.max_body_bytes} bytes.")
            _ = request._request.body
        super().initial(request, *args, **kwargs)  # authentication, rate limit, permissions
        principal = request.user
        if getattr(principal, "api_principal", False):
            self._idempotency = IdempotencyGuard.begin(request, cast(ApiPrincipal, principal))

    def redis_prelude(self, request: Request) -> RedisPrelude | None:
        """Override to run view work in the rate limit's Redis call (the result is
        ``self.prelude``). May raise a Problem (e.g. invalid parameters)."""
        return None

    def _handles(self, request: Request) -> bool:
        method = (request.method or "").lower()
        return method in self.http_method_names and hasattr(self, method)

    def check_permissions(self, request: Request) -> None:
        principal = request.user
        if not getattr(principal, "api_principal", False):
            super().check_permissions(request)  # 401
            return
        api_principal = cast(ApiPrincipal, principal)
        try:
            super().check_permissions(request)  # scopes as this process last verified them
            prelude = self.redis_prelude(request) if self._handles(request) else None  # else a 405 follows
        except Problem:
            # The key is confirmed (and charged) first: a revoked key is a 401 whatever else is wrong.
            result = charge(request._request, api_principal)
            self._rate_limit = result.state
            if not result.reconfirmed:
                raise
            super().check_permissions(request)  # the record as it is now decides
            if self._handles(request):
                self.redis_prelude(request)  # its checks still apply (the view computes without it)
            return
        # One Redis call: the charge, the key's current record and the view's prelude.
        result = charge(request._request, api_principal, prelude)
        self._rate_limit, self.prelude = result.state, result
        if result.reconfirmed:
            super().check_permissions(request)  # the record as it is now decides

    @classmethod
    def fast_response(cls, data: Any, rate_limit: RateLimitState | None, headers: dict[str, str]) -> HttpResponse:
        """A 200 JSON answer made without DRF's machinery, with the headers DRF's would carry
        (``Allow``, ``Vary``, rate limits): for views that answer some requests themselves."""
        response = HttpResponse(ORJSONRenderer().render(data), content_type=ORJSONRenderer.media_type)
        default_headers = _default_headers.get(cls)
        if default_headers is None:
            view = cls()
            view.setup(HttpRequest())  # as as_view() does (HEAD follows GET: "Allow" lists it)
            default_headers = _default_headers[cls] = dict(view.default_response_headers)
        for name, value in default_headers.items():
            response[name] = value
        if rate_limit is not None:
            for name, value in rate_limit.headers().items():
                response[name] = value
        for name, value in headers.items():
            response[name] = value
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            # Not answered here (e.g. the database went away: the middleware answers 503): the
            # Idempotency-Key must not stay "in progress", or the client's retry gets 409 for 24 h.
            guard = getattr(self, "_idempotency", None)
            if guard is not None:
                guard.release()
            raise

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(self, "_rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response.setdefault(name, value)
        guard = getattr(self, "_idempotency", None)
        if guard is not None and not response.has_header("Idempotent-Replayed"):
            guard.finish(response)
        return response


# The shape of an answer: every field is always present (null when empty), so every field is
# read-only, which the OpenAPI schema (and the SDK types generated from it) shows as required —
# rather than optional, as a model field with a default would otherwise be. (A comment, not a
# docstring: drf-spectacular would give it to every subclass's schema as its description.)
class OutputSerializer(serializers.ModelSerializer[Any]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields
