"""Request ids and JSON logs.

Every response carries ``X-Request-ID`` (the caller's, when it sent a sane one) and
every log line written while a request runs carries the same id.
"""

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodorder_api.errors import RETRY_AFTER_S, UNAVAILABLE, database_unavailable

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = logging.getLogger("prodorder_api.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("prodorder_api")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def problem_messages(
    body: dict[str, Any], *headers: tuple[bytes, bytes]
) -> tuple[Message, Message]:
    """The two ASGI messages of a problem document answered from middleware."""
    payload = json.dumps(body).encode()
    start: Message = {
        "type": "http.response.start",
        "status": body["status"],
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(payload)).encode()),
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": payload}


_INTERNAL_ERROR = problem_messages(
    {
        "type": "urn:prodorder:problem:internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "An unexpected error occurred; it has been logged.",
        "code": "internal_error",
    }
)
_UNAVAILABLE = problem_messages(UNAVAILABLE, (b"retry-after", str(RETRY_AFTER_S).encode()))


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so it adds no task per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # An error no handler caught: answer here, inside this middleware, so the
            # answer carries the request id too (Starlette's outermost handler would
            # not). A database out of reach is a 503 to retry, anything else a 500.
            if response_started:
                access_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                raise
            if database_unavailable(exc):
                access_log.warning("database unavailable: %r", exc)
                answer = _UNAVAILABLE
            else:
                access_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                answer = _INTERNAL_ERROR
            for message in answer:
                await send_with_id(dict(message))
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
            request_id_var.reset(token)
