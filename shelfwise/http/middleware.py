"""Request context (request id, access log) and tenant routing by host for non-API paths."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils.cache import add_never_cache_headers
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_tenant_model

from shelfwise.datastores.postgres import db
from shelfwise.http.errors import LENGTH_REQUIRED, PAYLOAD_TOO_LARGE, SERVICE_UNAVAILABLE, problem_json_response
from shelfwise.observability.context import accept_request_id, current_tenant, request_id_var, set_tenant, tenant_var
from shelfwise.observability.metrics import observe_request
from shelfwise.observability.traffic import traffic_record

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("shelfwise.request")

API_PREFIX = "/api/"
DASHBOARD_PREFIX = "/dashboard/"
ADMIN_PREFIX = "/admin/"
# Paths that never belong to a tenant host: probes and the API (whose tenant is the key's).
HOSTLESS_PREFIXES = (API_PREFIX, "/healthz", "/readyz", "/metrics")


REQUEST_ID_META = "shelfwise.request_id"
# Set in the environ when a chunked body cannot be read safely (the server does not say the input
# ends with the body; see fastpath.frame_chunked_body): answered 411 here.
LENGTH_REQUIRED_META = "shelfwise.length_required"
# Set when a chunked body was longer than the upload limit: answered 413 here.
BODY_TOO_LARGE_META = "shelfwise.body_too_large"

# URL parameters that are secrets themselves (one-time links: invitations, password resets).
SECRET_URL_PARAMETERS = frozenset({"token", "uidb64"})


def logged_path(path: str, kwargs: dict[str, Any]) -> str:
    """The path as logged: one-time link tokens replaced, so logs cannot replay the link."""
    for name in SECRET_URL_PARAMETERS & kwargs.keys():
        value = str(kwargs[name])
        if value:
            path = path.replace(value, "[redacted]")
    return path


class RequestContextMiddleware:
    """Assigns a request id (from X-Request-ID or new), echoes it, and logs one line per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info and not request.path_info.startswith(API_PREFIX):
            # No page's id can hold NUL (PostgreSQL text cannot): not found, before any lookup.
            return HttpResponseNotFound(b"Not found", content_type="text/plain")
        # One id per request, also when the fast path declined it and the full handler answers.
        request_id = request.META.get(REQUEST_ID_META) or accept_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.META[REQUEST_ID_META] = request_id
        request.request_id = request_id  # type: ignore[attr-defined]  # our own request attribute
        id_token = request_id_var.set(request_id)
        tenant_token = tenant_var.set(None)
        started = time.perf_counter()
        try:
            response = self._length_required(request) or self.get_response(request)
            response["X-Request-ID"] = request_id
            if request.path_info.startswith(API_PREFIX) and not response.has_header("Cache-Control"):
                # Shoppers' data and store data, for one key: never kept by a browser or a proxy.
                response["Cache-Control"] = "no-store"
            duration_ms = (time.perf_counter() - started) * 1000
            match = getattr(request, "resolver_match", None)
            tenant = getattr(request, "tenant", None)
            if tenant is not None and request.path_info.startswith(API_PREFIX) and tenant.pk:
                traffic_record(tenant_id=tenant.pk, status=response.status_code, duration_ms=duration_ms)
            observe_request(
                route=match.route if match else "unmatched",
                method=request.method or "",
                status=response.status_code,
                tenant_id=tenant.pk if tenant is not None and tenant.pk else None,
                seconds=duration_ms / 1000,
            )
            path = logged_path(request.path, match.kwargs if match else {})
            request_logger.info(
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "route": match.route if match else None,
                    "status": response.status_code,
                    "duration_ms": round(duration_ms, 2),
                    "tenant": current_tenant(),
                },
            )
            return response
        finally:
            request_id_var.reset(id_token)
            tenant_var.reset(tenant_token)

    @staticmethod
    def _length_required(request: HttpRequest) -> HttpResponse | None:
        """A chunked body that could not be read (411) or was too large (413)."""
        if request.META.get(LENGTH_REQUIRED_META):
            kind = LENGTH_REQUIRED
        elif request.META.get(BODY_TOO_LARGE_META):
            kind = PAYLOAD_TOO_LARGE
        else:
            return None
        if request.path_info.startswith(API_PREFIX):
            return problem_json_response(kind)
        return HttpResponse(kind.title.encode(), status=kind.status, content_type="text/plain")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """PostgreSQL unreachable (restarting, failing over): an API client gets an honest 503
        problem it can retry, a dashboard user a 503 page, never a 500; Django drops the broken
        connection when the request ends, and the next request connects afresh."""
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if request.path_info.startswith(API_PREFIX):
            logger.error("database unavailable: %s", exception)
            response: HttpResponse = problem_json_response(
                SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly."
            )
        elif request.path_info.startswith(DASHBOARD_PREFIX):
            logger.error("database unavailable: %s", exception)
            response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8")
        else:
            return None
        response["Retry-After"] = "2"
        return response


# Plain on purpose: it must render without the database (no template context, no session).
UNAVAILABLE_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Temporarily unavailable</title>"
    b"<h1>Temporarily unavailable</h1><p>Shelfwise cannot reach its database right now. "
    b"Your data is safe; please reload the page in a few seconds.</p></html>"
)


class TenantRoutingMiddleware(TenantMainMiddleware):
    """django-tenants' host routing, except where the host must not choose the tenant.

    API requests start in the public schema; the API-key authentication sets the key's tenant
    (never the host, body, query or a bare header). Probes and metrics have no tenant. Known
    public hosts serve the public site (Django admin); any other unknown host is a 404.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.path_info.startswith(HOSTLESS_PREFIXES):
            db().set_schema_to_public()
            request.tenant = None  # type: ignore[attr-defined]
            return None
        try:
            response = super().process_request(request)  # the host's store, read from PostgreSQL
        except (OperationalError, InterfaceError) as exc:
            logger.error("database unavailable: %s", exc)
            unavailable = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8")
            unavailable["Retry-After"] = "2"
            return unavailable
        tenant = getattr(request, "tenant", None)
        if tenant is not None and tenant.schema_name != settings.PUBLIC_SCHEMA_NAME:
            if request.path_info.startswith(ADMIN_PREFIX):
                # Django admin is the support staff's, on the public host only.
                return HttpResponseNotFound(b"Not found", content_type="text/plain")
            set_tenant(tenant.slug)
        return response

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse | None:
        if hostname in settings.SHELFWISE_PUBLIC_HOSTS:
            # Known public host: the public schema, as an unsaved tenant (django-tenants' admin
            # templates read request.tenant.schema_name; there is no row for it).
            request.tenant = _public_tenant()  # type: ignore[attr-defined]
            return None
        return HttpResponseNotFound(b"Not found", content_type="text/plain")


def _public_tenant() -> Any:
    # The tenants app's model, found through django-tenants (the platform imports no app).
    return get_tenant_model()(schema_name=settings.PUBLIC_SCHEMA_NAME, slug="", name="Shelfwise")


class ContentSecurityPolicyMiddleware:
    """``Content-Security-Policy`` (``SHELFWISE_CSP``) on the dashboard's pages, which use no
    inline script or style (Django admin and the API docs bring their own and are left alone),
    and ``Cache-Control: no-store`` on the pages of a signed-in member."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path_info.startswith(DASHBOARD_PREFIX):
            if "Content-Security-Policy" not in response:
                response["Content-Security-Policy"] = settings.SHELFWISE_CSP
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                add_never_cache_headers(response)  # a store's data: no browser or proxy keeps it
        return response
