"""``GET /v1/production-orders/{order_id}`` answered ahead of FastAPI's routing, when
the answer is sure to be the route's ``200``.

The GET is the API's hottest read, and once PostgreSQL renders the document
(``render_sql``) and the process keeps it (``read.document``), most of its CPU was the
framework's: matching the route, solving its five dependencies (the bearer scheme, the
key check, the session), the exception and exit-stack middleware, the response
object. Measured in-process (raw ASGI calls, ``time.process_time``, the document
kept): ~0.28 ms of CPU a GET through the route, ~0.14 ms here; in ``make bench`` the
read scenario went from 23 to 37-40 % of the no-op route's rate with the kept
documents and this together.

It answers only a GET without a query string whose path is exactly an order's, whose
bearer key this process found active within ``auth.service.CACHE_SECONDS`` with a
scope that reads, whose id parses, and whose order exists, on PostgreSQL. Anything
else goes on to the route unchanged — a missing, unknown or not recently seen key, a
bad or unknown id, SQLite, a database error — and the route answers as it always did
(and refreshes the key's cache entry). What it sends is the route's answer byte for
byte, headers included: the same ``read.document``, the same ``JsonBody`` headers, and
the route's template on ``scope["route"]`` for the metrics.
``tests/test_order_read_shortcut.py`` holds it to both.
"""

import logging
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from prodorder_api.auth import service as auth
from prodorder_api.concurrency import etag
from prodorder_api.ids import parse_id
from prodorder_api.orders import read
from prodorder_api.orders.router import get_production_order, router

PREFIX = "/v1/production-orders/"
log = logging.getLogger(__name__)
# The route it stands in for, as routing would set it on the scope.
_ROUTE = next(
    route
    for route in router.routes
    if isinstance(route, APIRoute) and route.endpoint is get_production_order
)


class OrderReadShortcut:
    """Pure ASGI, inside the request-id and metrics middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._database: tuple[AsyncEngine, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and scope["path"].startswith(PREFIX)
        ):
            found = await self._answer(scope)
            if found is not None:
                version, body = found
                headers = [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                    (b"etag", etag(version).encode()),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> tuple[int, bytes] | None:
        """(version, document) when this request's answer is the order's, else None."""
        order_id = parse_id(scope["path"][len(PREFIX) :])
        if order_id is None:
            return None
        engine, database = self._engine(scope["app"])
        if engine.dialect.name != "postgresql" or not _may_read(scope, database):
            return None
        try:
            found = await read.document(engine, order_id, _fetchrow(engine))
        except Exception:  # the route meets it again and answers as it always does
            log.debug("order read shortcut: passing on to the route", exc_info=True)
            return None
        if found is not None:
            scope["route"] = _ROUTE
        return found

    def _engine(self, app: Any) -> tuple[AsyncEngine, str]:
        engine: AsyncEngine = app.state.engine
        if self._database is None or self._database[0] is not engine:
            self._database = (engine, str(engine.url))
        return self._database


def _may_read(scope: Scope, database: str) -> bool:
    """Whether the request's bearer key is one ``authenticate`` recently found active
    with a scope that reads (as ``HTTPBearer`` and ``auth.deps`` parse it)."""
    header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
    if header is None:
        return False
    scheme, credentials = get_authorization_scheme_param(header.decode("latin-1"))
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    caller = auth.known(database, token)
    return caller is not None and auth.allows(caller[1], "read")


def _fetchrow(engine: AsyncEngine) -> Any:
    async def fetchrow(sql: str, *args: Any) -> Any:
        return await read.pooled_call(engine, "fetchrow", sql, *args)

    return fetchrow
