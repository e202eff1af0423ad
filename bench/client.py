"""A minimal keep-alive HTTP/1.1 client on asyncio + httptools (both come with
uvicorn[standard]): one request at a time per connection, no redirects, no TLS.

It does a few microseconds of work per request, so one driver process keeps far
ahead of the service it loads; httpx spends several times that per request.
"""

import asyncio
import json
from typing import Any

import httptools


class HttpError(Exception):
    """The connection broke, or the response could not be parsed."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.status = 0
        self.lost: Exception | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or HttpError("connection closed")
        self._fail(self.lost)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, b"".join(self.body)))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class Connection:
    """One keep-alive connection; ``request`` may not be called concurrently."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host, self.port = host, port
        self._head = f"Host: {host}:{port}\r\n"
        if token:
            self._head += f"Authorization: Bearer {token}\r\n"
        self._protocol: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        return protocol

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Status and body. Never retried: a POST that broke may have been applied."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = self._protocol = await self._connect()
        try:
            return await self._send(protocol, method, path, body, headers)
        except (HttpError, ConnectionError):
            self._protocol = None
            raise

    async def _send(
        self,
        protocol: _Protocol,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self._head}"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        waiter = protocol.waiter = asyncio.get_running_loop().create_future()
        assert protocol.transport is not None
        protocol.transport.write(head.encode() + payload)
        try:
            return await waiter
        finally:
            protocol.waiter = None

    async def json(
        self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201)
    ) -> Any:
        """The parsed body of a response whose status is ``expect``; else HttpError."""
        status, raw = await self.request(method, path, body)
        wanted = (expect,) if isinstance(expect, int) else expect
        if status not in wanted:
            raise HttpError(f"{method} {path} → {status}: {raw[:500]!r}")
        return json.loads(raw)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
