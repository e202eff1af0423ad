"""The route class every router uses.

Request bodies are parsed with JSON numbers as ``Decimal``, never ``float`` (nor
``int``, whose parser gives up on very long literals): a
quantity sent as ``1.0000000000000001`` arrives with all its digits and is refused
for having more than six places, instead of being rounded to ``1`` on the way in.
Bodies that are not JSON at all (bad UTF-8, absurdly long integers, nesting deeper
than the parser goes) become the same 422 ``validation_error`` as malformed JSON, and
so does a query parameter holding NUL (``%00``), which no PostgreSQL text can hold.
"""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from prodorder_api import metrics
from prodorder_api.concurrency import etag
from prodorder_api.errors import ValidationFailed
from prodorder_api.events import service as events
from prodorder_api.idempotency import service as idempotency


class ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError("body is not UTF-8", "", exc.start) from exc
            try:
                parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
                # A bare number is never a valid body; as a plain number it gets
                # pydantic's usual "must be an object" error instead of a stranger one.
                self._json = str(parsed) if isinstance(parsed, Decimal) else parsed
            except json.JSONDecodeError as exc:
                # FastAPI reports ``exc.msg`` at ``["body", exc.pos]``: say where in words.
                where = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
                raise json.JSONDecodeError(where, exc.doc, exc.pos) from exc
            except (ValueError, ArithmeticError, RecursionError) as exc:
                # ArithmeticError: decimal.InvalidOperation for an exponent beyond
                # Decimal's range (1E+99999999999999999999), which is no ValueError.
                raise json.JSONDecodeError(str(exc)[:200], text[:0], 0) from exc
        return self._json


class ApiRoute(APIRoute):
    """Parses bodies exactly and commits the request's transaction.

    The commit happens here, after the endpoint returned and its response was built,
    but before that response is sent: a commit that fails becomes an error response,
    never a 201 for something that did not happen. Just before it, the same
    transaction records the idempotency key with the response and writes the outbox
    events the change produced.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        query_names = _query_names(self.dependant)
        takes_json = self.body_field is not None

        async def transactional_handler(request: Request) -> Response:
            exact = ExactJsonRequest(request.scope, request.receive)
            try:
                _refuse_nul_in_query(exact, query_names)
                if takes_json:
                    _refuse_other_media_types(exact)
                response = await handler(exact)
                _set_etag(response)
                session = _session_of(exact)
                if session is not None and session.in_transaction():
                    await before_commit(exact, session, response)
                    await session.commit()
                    metrics.count_committed(session)
                return response
            except BaseException:
                if (session := _session_of(exact)) is not None:
                    await session.rollback()
                raise
            finally:
                # A session that holds no transaction holds no connection either.
                if (session := _session_of(exact)) is not None and session.in_transaction():
                    await session.close()

        return transactional_handler


def _session_of(request: Request) -> AsyncSession | None:
    """The session ``db.session_dependency`` gave the request, if it asked for one."""
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    return session


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route reads, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def _refuse_nul_in_query(request: Request, names: set[str]) -> None:
    for name, value in request.query_params.multi_items():
        if name in names and "\x00" in value:
            raise ValidationFailed(["query", name], "must not contain NUL characters")


_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def _refuse_other_media_types(request: Request) -> None:
    """A body sent as anything but JSON (``curl -d`` sends a form) is named as such,
    instead of pydantic's "Input should be a valid dictionary". A body with no content
    type at all is read as JSON."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return  # no body: nothing to misread
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if not media_type:
        request.scope["headers"] = [*request.scope["headers"], _JSON_CONTENT_TYPE]
        del request._headers  # Starlette caches the headers it has read
        return
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ValidationFailed(
            ["header", "content-type"],
            f"the body must be JSON, sent with `Content-Type: application/json`, "
            f"not {media_type[:100]}",
        )


class JsonBody(Response):
    """JSON the endpoint serialised itself, with its ``ETag`` already set when it has one:
    ``_set_etag`` leaves it alone instead of parsing the body again."""

    media_type = "application/json"


def _set_etag(response: Response) -> None:
    """``ETag: "<version>"`` on every response that is one versioned resource."""
    if isinstance(response, JsonBody):
        return
    body = bytes(response.body) if hasattr(response, "body") else b""
    if not body.startswith(b"{") or b'"version":' not in body or "etag" in response.headers:
        return
    version = json.loads(body).get("version")
    if isinstance(version, int):
        response.headers["ETag"] = etag(version)


async def before_commit(request: Request, session: AsyncSession, response: Response) -> None:
    """Work that must land in the same transaction as the request's effect: its outbox
    events whenever it commits, and the idempotency record of a successful response."""
    await events.write_pending(session)
    if 200 <= response.status_code < 300:
        await idempotency.remember(request, session, response)
