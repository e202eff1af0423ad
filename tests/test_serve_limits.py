"""What ``prodorder-api serve`` enforces on a connection (http_protocol.py), against the
real server over raw sockets: slow heads, idle connections, oversized heads, the
connection cap and idle keep-alives. No database is involved beyond start-up, so the
embedded SQLite default serves.

Timing: a limit can only fire after its time has passed, so a lower bound is exact;
the upper bounds are generous and only tell a closed connection from a hung one."""

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from scripts.live_server import LiveServer, live_server

HEADER_TIMEOUT_S = 2.0
KEEP_ALIVE_S = 3.0
MAX_CONNECTIONS = 4
MAX_HEADER_BYTES = 4096
HUNG_S = 30.0  # far beyond every limit: a connection still open by then was not closed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {
        "PRODORDER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "PRODORDER_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
        "PRODORDER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "PRODORDER_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    with live_server(tmp_path_factory.mktemp("serve"), settings=settings) as live:
        yield live


def _connect(server: LiveServer) -> socket.socket:
    parts = urlsplit(server.base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=HUNG_S)


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    received = b""
    while chunk := sock.recv(65_536):
        received += chunk
    return received


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), {k.lower(): v for k, v in headers.items()}, body


def _get(server: LiveServer, sock: socket.socket, path: str = "/v1/items") -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {server.token}\r\n\r\n"
    sock.sendall(request.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65_536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(_response(head + b"\r\n\r\n")[1]["content-length"])
    while len(body) < length:
        body += sock.recv(65_536)
    return _response(received)[0]


def test_a_head_sent_one_byte_a_second_is_answered_408_and_closed(server: LiveServer) -> None:
    head = f"GET /v1/items HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {server.token}\r\n\r\n"
    sock = _connect(server)
    started = time.monotonic()
    sent = 0
    with sock:
        sock.settimeout(1.0)  # one byte a second, reading in between
        received = b""
        while sent < len(head):
            try:
                chunk = sock.recv(65_536)
            except TimeoutError:
                sock.sendall(head[sent : sent + 1].encode())
                sent += 1
                continue
            if not chunk:
                break
            received += chunk
        closed_after = time.monotonic() - started
    assert sent < len(head), "the whole head went through one byte a second"
    status, headers, body = _response(received)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert json.loads(body)["code"] == "request_timeout"
    assert HEADER_TIMEOUT_S <= closed_after < HUNG_S


def test_a_connection_that_sends_nothing_is_closed_silently(server: LiveServer) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        received = _read_all(sock)
        closed_after = time.monotonic() - started
    assert received == b""
    assert HEADER_TIMEOUT_S * 0.9 <= closed_after < HUNG_S


def test_a_head_over_the_limit_is_431_and_one_under_it_is_served(server: LiveServer) -> None:
    big = "x" * MAX_HEADER_BYTES
    with _connect(server) as sock:
        sock.sendall(
            f"GET /v1/items HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {server.token}\r\n"
            f"X-Padding: {big}\r\n\r\n".encode()
        )
        status, headers, body = _response(_read_all(sock))
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "headers_too_large"
    assert str(MAX_HEADER_BYTES) in problem["detail"]

    # The same request with a header well within the limit is served as usual.
    with _connect(server) as sock:
        sock.sendall(
            f"GET /v1/items HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {server.token}\r\n"
            f"X-Padding: {'x' * (MAX_HEADER_BYTES // 2)}\r\nConnection: close\r\n\r\n".encode()
        )
        assert _response(_read_all(sock))[0] == 200


def test_a_long_url_counts_towards_the_head(server: LiveServer) -> None:
    with _connect(server) as sock:
        sock.sendall(f"GET /v1/items?q={'a' * MAX_HEADER_BYTES} HTTP/1.1\r\n\r\n".encode())
        assert _response(_read_all(sock))[0] == 431


def test_connections_beyond_the_cap_are_503_and_room_comes_back(server: LiveServer) -> None:
    held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each is served: the cap counts, it does not refuse these
            assert _get(server, sock) == 200
        with _connect(server) as extra:
            status, headers, body = _response(_read_all(extra))
        assert status == 503
        assert headers["retry-after"] == "1"
        assert json.loads(body)["code"] == "service_unavailable"
    finally:
        for sock in held:
            sock.close()
    # Once the held ones are gone, connections are served again (the server notices
    # each close on its own time, so ask until it has, within HUNG_S).
    deadline = time.monotonic() + HUNG_S
    while True:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            status = _response(_read_all(sock))[0]
        if status == 200 or time.monotonic() > deadline:
            break
    assert status == 200


def test_an_idle_keep_alive_connection_is_closed(server: LiveServer) -> None:
    with _connect(server) as sock:
        assert _get(server, sock) == 200
        assert _get(server, sock) == 200  # kept alive between requests
        served = time.monotonic()
        assert _read_all(sock) == b""
        idle = time.monotonic() - served
    assert KEEP_ALIVE_S * 0.9 <= idle < HUNG_S


def test_the_head_timer_is_per_request_not_per_connection(server: LiveServer) -> None:
    """Requests on one kept-alive connection over longer than the header timeout."""
    with _connect(server) as sock:
        started = time.monotonic()
        while time.monotonic() - started < HEADER_TIMEOUT_S * 1.5:
            assert _get(server, sock) == 200
            time.sleep(KEEP_ALIVE_S / 5)
