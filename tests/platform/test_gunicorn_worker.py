"""The web server's connection handling (shelfwise/server/gunicorn_worker.py), against a real gunicorn
started with the production settings (shelfwise/server/gunicorn_conf.py) and one worker process.

The worker closes a connection as soon as its request is answered when the client has nothing
more to send, instead of waiting up to two seconds for the client to close first; a request
whose body it did not read keeps gunicorn's lingering close, so the answer is not lost to a
TCP reset."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from shelfwise.http.errors import PROBLEM_TYPES
from tests.fixtures.processes import AppServer, start_app_server, stop_process


@pytest.fixture(scope="module")
def probe_server() -> Iterator[AppServer]:
    server = start_app_server("worker-probe", workers=1, app="tests.probes.wsgi_probe:application")
    yield server
    stop_process(server.process)


def _connect(server: AppServer, timeout: float) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def _read_to_end(client: socket.socket) -> bytes:
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_worker_takes_the_next_connection_without_waiting_for_the_last_client_to_close(
    probe_server: AppServer,
) -> None:
    first = _connect(probe_server, timeout=5)
    try:
        first.sendall(b"GET /a HTTP/1.1\r\nHost: probe\r\n\r\n")
        assert _read_to_end(first).endswith(b"ok 0")  # the whole answer and the server's end of it
        # The first client keeps its socket open. gunicorn's lingering close would keep the only
        # worker reading from it for 2 s before accepting anything else; this client gives up
        # after 1.5 s (a socket timeout, not a speed target: the failure is a 2 s stall).
        second = _connect(probe_server, timeout=1.5)
        try:
            second.sendall(b"POST /b HTTP/1.1\r\nHost: probe\r\nContent-Length: 5\r\n\r\nhello")
            answer = _read_to_end(second)
        finally:
            second.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"ok 5")
    finally:
        first.close()


def test_a_client_still_sending_a_body_the_application_did_not_read_gets_its_answer(
    probe_server: AppServer,
) -> None:
    client = _connect(probe_server, timeout=5)
    try:
        # The application answers 413 without reading the body, while the client is still
        # uploading it: part of it sits unread on the server's side of the connection.
        client.sendall(b"POST /reject HTTP/1.1\r\nHost: probe\r\nContent-Length: 100000\r\n\r\n" + b"x" * 40000)
        readable, _w, _x = select.select([client], [], [], 5)
        assert readable
        time.sleep(0.2)  # the server has answered and closed its side (or is lingering on it)
        # The upload goes on. Had the server closed with unread data, its TCP reset would make
        # this fail (ConnectionResetError / BrokenPipeError) and the client never reads the answer.
        client.sendall(b"x" * 1000)
        time.sleep(0.1)
        client.sendall(b"x" * 1000)
        answer = _read_to_end(client)
    finally:
        client.close()
    assert answer.startswith(b"HTTP/1.1 413")
    assert answer.endswith(b"too large")


def test_what_gunicorn_refuses_itself_is_answered_as_problem_json(app_server: AppServer) -> None:
    """Issue 19.15: gunicorn's own 400/414/431 answers were HTML pages."""
    cases = {
        414: b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
        431: b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-Filler: y\r\n" * 200 + b"\r\n",
        400: b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n",
    }
    for status, request in cases.items():
        with socket.create_connection(("127.0.0.1", app_server.port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        problem = json.loads(body)

        assert head.split(b" ", 2)[1] == str(status).encode(), head
        assert b"Content-Type: application/problem+json" in head
        assert problem["status"] == status
        assert problem["code"] in PROBLEM_TYPES  # its type resolves at /api/problems/<code>
        assert PROBLEM_TYPES[problem["code"]].status == status
        assert b"aaaa" not in body  # nothing the client sent is echoed
        assert b"Bad Header" not in body
