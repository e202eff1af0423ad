"""The gate of every ``/v1`` request, before routing: the key, the rate limit, the body.

Pure ASGI, so that nothing is read that a caller without a key has sent:

1. **The key.** ``Authorization: Bearer <token>`` is looked up (cached, see
   ``auth.service``) before the body is touched. Without a valid key: 401, and the
   body is never read (uvicorn then closes the connection).
2. **The rate limit** of the key (``ratelimit``): 429 ``rate_limited`` with
   ``Retry-After`` beyond it, and the ``RateLimit-*`` headers on every answer while a
   limit is set. Failed attempts count against the client's address instead, so that
   guessing keys is limited too.
3. **The body**, at most ``PRODORDER_MAX_BODY_BYTES``: a ``Content-Length`` over it is
   413 ``payload_too_large`` at once; a streamed body is counted as it arrives and
   refused as soon as it passes the bound, before anything is parsed. A body that
   does not arrive within ``PRODORDER_BODY_TIMEOUT_S`` is 408 ``request_timeout``.
   The body is then handed on whole.

The route's scope check (403) and idempotency stay in ``auth.deps``: they depend on
the route. The caller found here is passed on in the request's state.
"""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodorder_api.auth import service as auth
from prodorder_api.errors import (
    AppError,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unauthorized,
)
from prodorder_api.observability import problem_messages
from prodorder_api.ratelimit import RateLimits, Verdict
from prodorder_api.settings import Settings

PREFIX = "/v1/"


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.body_timeout = settings.body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        limits: RateLimits = state.rate_limits
        headers = _headers(scope)
        token = _bearer(headers.get(b"authorization"))
        caller = await _authenticate(state.sessionmaker, token) if token else None
        if caller is None:
            client = scope.get("client")
            verdict = await limits.hit(f"address:{client[0] if client else '?'}")
            if verdict is not None and not verdict.allowed:
                await _refuse(send, _rate_limited(verdict), verdict)
                return
            detail = (
                "the API key is unknown or revoked"
                if token
                else "send an API key as `Authorization: Bearer <token>`"
            )
            await _refuse(send, Unauthorized(detail), verdict)
            return
        verdict = await limits.hit(f"key:{caller.key_id}")
        if verdict is not None and not verdict.allowed:
            await _refuse(send, _rate_limited(verdict), verdict)
            return
        scope.setdefault("state", {})["caller"] = caller

        if b"content-length" in headers or b"transfer-encoding" in headers:
            try:
                receive = await self._bounded_body(headers, receive)
            except _TooLarge:
                await _refuse(send, PayloadTooLarge(self._too_large()), verdict)
                return
            except TimeoutError:
                detail = f"the body did not arrive within {self.body_timeout:g} s"
                await _refuse(send, RequestTimeout(detail), verdict)
                return
            except _Disconnected:
                return
        await self.app(scope, receive, _with_headers(send, verdict))

    def _too_large(self) -> str:
        return f"the body is larger than {self.max_body} bytes (PRODORDER_MAX_BODY_BYTES)"

    async def _bounded_body(self, headers: dict[bytes, bytes], receive: Receive) -> Receive:
        """The whole body, read here within the bounds, as a ``receive`` for the app."""
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_body:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise _TooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # from here on only http.disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}


def _bearer(value: bytes | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _authenticate(
    sessionmaker: async_sessionmaker[AsyncSession], token: str
) -> auth.Caller | None:
    async with sessionmaker() as session, session.begin():
        return await auth.authenticate(session, token)


def _rate_limited(verdict: Verdict) -> RateLimited:
    return RateLimited(
        f"more than {verdict.limit} requests in the window; retry in {verdict.reset_s} s"
    )


async def _refuse(send: Send, error: AppError, verdict: Verdict | None) -> None:
    own = error.headers or {}
    extra = [(name.lower().encode(), value.encode()) for name, value in own.items()]
    if verdict is not None:
        extra += verdict.headers()
    if isinstance(error, PayloadTooLarge | RequestTimeout):
        extra.append((b"connection", b"close"))
    for message in problem_messages(error.body(), *extra):
        await send(dict(message))


def _with_headers(send: Send, verdict: Verdict | None) -> Send:
    if verdict is None:
        return send

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *verdict.headers()]
        await send(message)

    return send_with_limits
