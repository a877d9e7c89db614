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


class SyncWorker(GunicornSyncWorker):
    def handle_request(self, listener: Any, req: Any, client: Any, addr: Any) -> None:
        super().handle_request(listener, req, client, addr)
        if not self.cfg.is_ssl and nothing_more_to_read(req, client):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RD)
