"""The /v1 guard against the real server (``prodorder-api serve``), on both databases:
big bodies from callers without a key, streamed bodies, and a revoke seen by a second
instance. Raw sockets, so that the client controls exactly what is sent when."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from scripts.live_server import LiveServer, live_server

MB = 1024 * 1024
ANSWER_WITHIN_S = 30.0  # a bound for a hung server, never a speed requirement


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, database_url) as live:
        yield live


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_WITHIN_S)
    return sock


def _status_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status code and the head of the first response on ``sock``."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65_536)
        if not chunk:
            break
        received += chunk
    head = received.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), head


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server answered and closed: as it should
        sock.sendall(data)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_50_mb_without_a_key_is_401_before_the_body_and_costs_no_memory(
    server: LiveServer,
) -> None:
    body = b"[" + b"1," * (25 * MB - 1) + b"1]"  # a 50 MB JSON array
    before = _rss_kib(server.pid)
    with _connect(server.base_url) as sock:
        started = time.monotonic()
        sock.sendall(_head("/v1/items", {"Content-Length": str(len(body))}))
        sock.sendall(body[:MB])
        # The answer comes while 49 MB are still unsent: the body was not waited for.
        status, _ = _status_of(sock)
        elapsed = time.monotonic() - started
        sender = threading.Thread(target=_send_quietly, args=(sock, body[MB:]))
        sender.start()
        sender.join(ANSWER_WITHIN_S)
    after = _rss_kib(server.pid)
    print(f"401 after {elapsed * 1000:.1f} ms; RSS {before} KiB → {after} KiB")
    assert status == 401
    assert after - before < 8 * 1024, f"the worker grew from {before} to {after} KiB"
    # And the server serves on.
    assert httpx.get(f"{server.base_url}/healthz", timeout=ANSWER_WITHIN_S).status_code == 200


def test_50_mb_with_a_key_is_413_before_the_body(server: LiveServer) -> None:
    before = _rss_kib(server.pid)
    with _connect(server.base_url) as sock:
        length = str(50 * MB)
        sock.sendall(
            _head(
                "/v1/items", {"Content-Length": length, "Authorization": f"Bearer {server.token}"}
            )
        )
        status, head = _status_of(sock)
    assert status == 413
    assert b"application/problem+json" in head
    assert _rss_kib(server.pid) - before < 8 * 1024


def test_a_chunked_body_is_refused_once_it_passes_the_bound(server: LiveServer) -> None:
    before = _rss_kib(server.pid)
    chunk = b" " * 65_536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _connect(server.base_url) as sock:
        headers = {"Transfer-Encoding": "chunked", "Authorization": f"Bearer {server.token}"}
        sock.sendall(_head("/v1/items", headers))
        # 3 MiB and no last chunk: the answer can only come from counting.
        sender = threading.Thread(target=_send_quietly, args=(sock, framed * 48))
        sender.start()
        status, head = _status_of(sock)
        sender.join(ANSWER_WITHIN_S)
    assert status == 413
    assert b"application/problem+json" in head
    assert _rss_kib(server.pid) - before < 8 * 1024


def test_a_revoked_key_is_refused_by_a_second_instance_within_a_second(
    database_url: str, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    with (
        live_server(tmp_path / "one", database_url) as one,
        live_server(tmp_path / "two", database_url) as two,
    ):
        admin = {"Authorization": f"Bearer {one.token}"}
        created = httpx.post(
            f"{one.base_url}/v1/api-keys", json={"name": "short-lived", "scope": "write"},
            headers=admin, timeout=ANSWER_WITHIN_S,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['token']}"}
        for live in (one, two):  # both have looked the key up and cached it
            assert httpx.get(f"{live.base_url}/v1/items", headers=key).status_code == 200

        revoked = httpx.delete(f"{one.base_url}/v1/api-keys/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 200
        assert httpx.get(f"{one.base_url}/v1/items", headers=key).status_code == 401
        time.sleep(1.0)  # the bound promised; each lookup is cached for half of it
        refused = httpx.post(f"{two.base_url}/v1/items", json={}, headers=key)
        assert refused.status_code == 401
