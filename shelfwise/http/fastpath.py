"""Hot requests answered before Django's URL routing and most of its middleware.

A recommendation served from the cache costs one Redis round trip and a few dozen microseconds
of Python; Django's full handler around it (request signals, thirteen middleware, URL
resolution, DRF's view machinery) costs as much again. ``FastPathApplication`` wraps the WSGI
application: for a GET whose route's view class has a ``fast_answer`` (see
``recommendations.apis.serving``), it resolves the URL, runs the answer inside the middleware
that shape an API response — request id, access log, metrics and traffic counters
(``RequestContextMiddleware``), security headers, CORS, host validation, ``X-Frame-Options`` —
and sends it. When the answer declines (a cache miss, an unknown key, a bad parameter, a 429…)
it raises :class:`NotHandled` and the request goes through Django's full handler as if the
fast path did not exist; the rate-limit charge and the Redis reply already obtained travel with
the request (``shelfwise.http.ratelimit.precharge``), so nothing is charged or read twice.

The middleware the fast path leaves out must be no-ops for such a request (no session, cookie,
CSRF token, static file, page or probe). :data:`SKIPPABLE` lists them; with any middleware in
``settings.MIDDLEWARE`` that is neither skippable nor in :data:`APPLIED` (e.g. OpenTelemetry's,
installed when tracing is on) the fast path turns itself off and every request takes the full
handler, so nothing is silently skipped.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import sentry_sdk
from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.exceptions import Resolver404
from django.utils.module_loading import import_string

from shelfwise.http.middleware import API_PREFIX, BODY_TOO_LARGE_META, LENGTH_REQUIRED_META

logger = logging.getLogger(__name__)

# Applied to fast answers, in settings.MIDDLEWARE's order.
APPLIED = (
    "shelfwise.http.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
# No-ops for an API GET answered from the cache: probes and /metrics only; the API's tenant is
# the key's (set by the answer), never the host's; static files only under STATIC_URL; sessions,
# CSRF cookies, users and messages only when a view touches them; the CSP on dashboard pages.
SKIPPABLE = frozenset(
    {
        "shelfwise.observability.health.ProbeMiddleware",
        "shelfwise.http.middleware.TenantRoutingMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "shelfwise.http.middleware.ContentSecurityPolicyMiddleware",
    }
)


class NotHandled(Exception):
    """Raised by a ``fast_answer`` that does not answer this request: the full handler does."""


def unsupported_middleware(middleware: Iterable[str]) -> list[str]:
    """The middleware that would make the fast path skip something that matters."""
    return [path for path in middleware if path not in SKIPPABLE and path not in APPLIED]


def _fast_routes(patterns: Iterable[Any], prefix: str = "") -> Iterable[str]:
    """The route of every URL pattern whose view class has a ``fast_answer``."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _fast_routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and hasattr(getattr(entry.callback, "view_class", None), "fast_answer"):
            yield prefix + str(entry.pattern)


def frame_chunked_body(environ: dict[str, Any]) -> None:
    """A body sent with ``Transfer-Encoding: chunked`` (no Content-Length): Django reads such a
    body as empty, which turned a PUT into an object of defaults. When the server says the input
    ends with the body (``wsgi.input_terminated``, as gunicorn does), read it — at most one byte
    more than the upload limit: a larger body is refused whole (413) — and hand it on with its
    length; otherwise mark the request for a 411."""
    if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    if not environ.get("wsgi.input_terminated"):
        environ[LENGTH_REQUIRED_META] = True
        return
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:  # refused whole (413), never parsed cut short
        environ[BODY_TOO_LARGE_META] = True
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


class FastPathApplication:
    """The WSGI application: fast answers where a view has one, Django's handler otherwise."""

    def __init__(self, application: WSGIHandler) -> None:
        self.application = application
        self._chain: Callable[[HttpRequest], HttpResponseBase] | None = None
        self._last_segments: frozenset[str] = frozenset()
        self._ready = False

    def _prepare(self) -> None:
        """On the first request (the URL conf is loaded then): the routes and the middleware."""
        self._ready = True
        unsupported = unsupported_middleware(settings.MIDDLEWARE)
        if unsupported or not settings.SHELFWISE_FAST_PATH:
            logger.info("fast path off: %s", ", ".join(unsupported) or "SHELFWISE_FAST_PATH=false")
            return
        # Only requests whose last path segment is one of these routes' (a literal) are resolved
        # twice when they are not answered here; every other request goes straight to Django.
        self._last_segments = frozenset(route.rsplit("/", 1)[-1] for route in _fast_routes(get_resolver().url_patterns))
        handler: Callable[[HttpRequest], HttpResponseBase] = _answer
        for path in reversed([path for path in settings.MIDDLEWARE if path in APPLIED]):
            handler = import_string(path)(handler)
        self._chain = handler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self._ready:
            self._prepare()
        frame_chunked_body(environ)
        if (
            self._chain is not None
            and environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO", "").startswith(API_PREFIX)
            and environ["PATH_INFO"].rsplit("/", 1)[-1] in self._last_segments
        ):
            response = self._fast(environ)
            if response is not None:
                start_response(
                    f"{response.status_code} {response.reason_phrase}",
                    [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
                )
                return [response.content]  # type: ignore[attr-defined]  # fast answers are HttpResponses
        return self.application(environ, start_response)

    def _fast(self, environ: dict[str, Any]) -> HttpResponseBase | None:
        # WSGIRequest writes the decoded path back into the environ (its META); Django's handler
        # reads the server's latin-1 form, so a declined request gets it back as it came.
        as_sent = {name: environ[name] for name in ("PATH_INFO", "SCRIPT_NAME") if name in environ}
        response = self._answer(WSGIRequest(environ))
        if response is None:
            for name in ("PATH_INFO", "SCRIPT_NAME"):
                environ.pop(name, None)
            environ.update(as_sent)
        return response

    def _answer(self, request: WSGIRequest) -> HttpResponseBase | None:
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return None
        answer = getattr(getattr(match.func, "view_class", None), "fast_answer", None)
        if answer is None:
            return None
        request.resolver_match = match
        request._fast_answer = (answer, match.kwargs)  # type: ignore[attr-defined]
        assert self._chain is not None  # noqa: S101 - checked by the caller
        try:
            # With Sentry on, a scope of its own, as Sentry's WSGI middleware gives Django's
            # requests: the tenant tag set while answering must not outlive the request.
            with sentry_sdk.isolation_scope() if sentry_sdk.get_client().is_active() else nullcontext():
                return self._chain(request)
        except (NotHandled, DisallowedHost, PermissionDenied):
            return None  # the full handler answers (a bad Host: its 400; a refused user agent: 403)
        except Exception:
            # A bug here must not fail the request: logged (and reported), then the full path.
            logger.exception("fast path failed; answering through the full handler")
            return None
        finally:
            close_old_connections()  # as Django does when a request ends (a fast answer may query)


def _answer(request: HttpRequest) -> HttpResponseBase:
    answer, kwargs = request._fast_answer  # type: ignore[attr-defined]
    response: HttpResponseBase | None = answer(request, **kwargs)
    if response is None:
        raise NotHandled
    return response
