"""A minimal WSGI application for tests of the web server itself (tests/platform/test_gunicorn_worker.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/reject``: answers 413 without reading the request's body (as an application does when
    a body is too large or the caller is not allowed). Anything else: reads the body, answers 200."""
    if environ["PATH_INFO"] == "/reject":
        status, body = "413 Content Too Large", b"too large"
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received = environ["wsgi.input"].read(length) if length else b""
        status, body = "200 OK", b"ok %d" % len(received)
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
