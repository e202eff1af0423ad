"""The route class every router uses.

Request bodies are parsed with JSON numbers as ``Decimal``, never ``float`` (nor
``int``, whose parser gives up on very long literals): a
quantity sent as ``1.0000000000000001`` arrives with all its digits and is refused
for having more than six places, instead of being rounded to ``1`` on the way in.
Bodies that are not JSON at all (bad UTF-8, absurdly long integers, nesting deeper
than the parser goes) become the same 422 ``validation_error`` as malformed JSON.
"""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


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
            except json.JSONDecodeError:
                raise
            except (ValueError, RecursionError) as exc:
                raise json.JSONDecodeError(str(exc)[:200], text[:0], 0) from exc
        return self._json


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact_json_handler
