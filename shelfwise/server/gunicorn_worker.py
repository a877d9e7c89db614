"""gunicorn's sync worker, closing a finished connection the way nginx does by default.

The sync worker answers one request per connection and then closes it. Since gunicorn 27 it
always closes with a *lingering close* (``gunicorn.util.close_graceful``, RFC 9112 §9.6):
half-close, then read until the client closes its side, for up to two seconds. That protects
a response from being cut off by a TCP reset when the client is still sending (a request body
the application did not read, a pipelined request): closing a socket with unread data makes
the kernel answer with a reset, which can erase the response before the client reads it.

When the client has nothing more to send, the lingering close protects nothing, yet the worker
— which serves one connection at a time — sits idle until the client has read the response
and closed its side. nginx (``lingering_close on``, its default) lingers only when the client
may still be sending; this worker does the same: after a request that completed normally, if

- its body was read to the end (or it declared none),
- nothing the client sent after it is buffered (no pipelined request), and
- nothing is waiting in the socket,

it shuts the socket's read side, so that gunicorn's lingering read sees the end at once and
the connection closes (with a FIN, as before). Any other request keeps gunicorn's lingering
close, as does any request that raised. TLS connections are left to gunicorn. Measurements and
the alternatives considered: docs/adr/0005-web-worker-closes-finished-connections.md.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from gunicorn.http.body import EOFReader, LengthReader
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker


def nothing_more_to_read(req: Any, client: socket.socket) -> bool:
    """Whether the client has sent all it will send on this connection (as far as we can tell
    without waiting): the request's body was consumed, nothing is read ahead, nothing is queued."""
    body = getattr(req, "body", None)
    reader = getattr(body, "reader", None)
    if isinstance(reader, LengthReader):
        if reader.length:  # the application did not read the whole body
            return False
    elif not isinstance(reader, EOFReader):  # chunked, or something unknown: linger
        return False
    unreader = getattr(req, "unreader", None)
    if unreader is None or unreader.buf.getbuffer().nbytes:  # a pipelined request read ahead
        return False
    try:
        client.setblocking(False)
        pending = client.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            client.setblocking(True)
    return not pending  # b"": the client already closed its side


# What gunicorn itself refuses before the application sees a request (a malformed request line,
# a URI or headers beyond its limits...), answered in the API's one error shape. The codes are
# registered in shelfwise.http.errors, so their ``type`` resolves at /api/problems/<code>. The
# detail never repeats what the client sent.
SERVER_PROBLEMS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "Bad request", "The request could not be understood."),
    403: ("permission_denied", "Permission denied", "This action is not allowed."),
    414: ("uri_too_long", "URI too long", "The request line is longer than the server accepts (8190 bytes)."),
    417: ("expectation_failed", "Expectation failed", "The server cannot meet the request's Expect header."),
    431: (
        "request_header_fields_too_large",
        "Request header fields too large",
        "The request's headers are more or larger than the server accepts.",
    ),
    500: ("internal_error", "Internal error", "Something went wrong on our side; it has been reported."),
    501: ("not_implemented", "Not implemented", "The request uses a transfer coding the server does not support."),
}


def problem_answer(status: int) -> bytes:
    """A whole HTTP/1.1 answer for a request the server refused: problem+json, then close."""
    code, title, detail = SERVER_PROBLEMS.get(status, SERVER_PROBLEMS[400 if status < 500 else 500])
    body = json.dumps(
        {"type": f"/api/problems/{code}", "title": title, "status": status, "detail": detail, "code": code,
         "request_id": None},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _ErrorCapture:
    """Stands in for the client socket while gunicorn writes its HTML error page: keeps the
    status and sends nothing (the problem+json answer is sent instead)."""

    def __init__(self) -> None:
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        return None

    def sendall(self, data: bytes) -> None:
        self.written += data

    @property
    def status(self) -> int:
        try:
            return int(self.written.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 500


class SyncWorker(GunicornSyncWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn decides the status and logs as it always does; the answer it would send as an
        HTML page goes out as problem+json."""
        capture = _ErrorCapture()
        super().handle_error(req, capture, addr, exc)
        if not capture.written:
            return
        with contextlib.suppress(OSError):
            client.sendall(problem_answer(capture.status))

    def handle_request(self, listener: Any, req: Any, client: Any, addr: Any) -> None:
        super().handle_request(listener, req, client, addr)
        if not self.cfg.is_ssl and nothing_more_to_read(req, client):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RD)
