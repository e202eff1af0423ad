"""What ``serve`` enforces on a connection before the app sees a request.

uvicorn's httptools protocol, with three limits it does not have:

* **a connection cap** (``PRODORDER_MAX_CONNECTIONS`` per worker): a connection
  beyond it is answered 503 ``service_unavailable`` with ``Retry-After`` and closed at
  once, so idle sockets cannot pile up without end;
* **a head size** (``PRODORDER_MAX_HEADER_BYTES``, request line and headers
  together): beyond it, 431 ``headers_too_large`` and the connection closes; nothing
  is handed to the app;
* **a head timeout** (``PRODORDER_HEADER_TIMEOUT_S``): a connection whose request
  line and headers have not all arrived within it (counted from the connection, or
  from the first byte of a later request on a kept-alive one) is answered 408
  ``request_timeout`` and closed; one that sent nothing is closed silently.

Idle keep-alive connections close after ``PRODORDER_KEEP_ALIVE_S`` (uvicorn's own
``timeout_keep_alive``). The body has its own bound and timeout in ``guard``.
"""

import asyncio
import json
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from prodorder_api.errors import (
    RETRY_AFTER_S,
    AppError,
    HeadersTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)
from prodorder_api.settings import get_settings


def _answer(error: AppError, *headers: bytes) -> bytes:
    """A whole HTTP/1.1 response that closes the connection: the problem document the
    app would have given, written before there is a request to hand it."""
    body = json.dumps(error.body()).encode()
    reason = HTTPStatus(error.status).phrase
    head = [
        f"HTTP/1.1 {error.status} {reason}".encode(),
        b"content-type: application/problem+json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and re-raises it as an error."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_connections = settings.max_connections
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout_s = settings.header_timeout_s
        self.head_bytes = 0
        self.head_started = False
        self.head_too_large = False
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            detail = "Too many open connections; try again shortly."
            retry = f"retry-after: {RETRY_AFTER_S}".encode()
            transport.write(_answer(ServiceUnavailable(detail), retry))
            transport.close()
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    # A request's head: timed from its first byte, counted as it is parsed.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0
        self.head_started = True
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF, as on the wire
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        self.head_started = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_header_bytes:
            self.head_too_large = True
            raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is also how a callback's
        exception comes back out of httptools."""
        self._stop_head_timer()
        if not self.head_too_large:
            super().send_400_response(msg)
            return
        detail = f"The request line and headers are over {self.max_header_bytes} bytes."
        self.transport.write(_answer(HeadersTooLarge(detail)))
        self.transport.close()

    def _start_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.head_started:
            detail = f"The request's headers did not arrive within {self.header_timeout_s:g} s."
            self.transport.write(_answer(RequestTimeout(detail)))
        self.transport.close()
