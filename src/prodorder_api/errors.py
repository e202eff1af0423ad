"""Errors are types: one base exception carries the HTTP status and the problem code,
and one set of handlers renders every failure as RFC 9457 ``application/problem+json``."""

import logging
import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import TypeAliasType

from prodorder_api.money import to_json

log = logging.getLogger("prodorder_api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    return f"urn:prodorder:problem:{code}"


class AppError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal error"

    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class ValidationFailed(AppError):
    """A rule about the input that only the service can check (unknown referenced id,
    a lot code missing for a lot-tracked item, ...): 422 like a schema error."""

    status, code, title = 422, "validation_error", "Validation error"

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg, errors=[{"loc": loc, "msg": msg}])


class InsufficientStock(AppError):
    status, code, title = 409, "insufficient_stock", "Insufficient stock"

    def __init__(self, detail: str, shortages: list[dict[str, Any]]) -> None:
        super().__init__(detail, shortages=shortages)


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="prodorder-api"'}


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class RequestTimeout(AppError):
    status, code, title = 408, "request_timeout", "Request timeout"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class HeadersTooLarge(AppError):
    status, code, title = 431, "headers_too_large", "Request header fields too large"


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class IdempotencyKeyReused(AppError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class IdempotencyKeyInUse(AppError):
    status, code, title = 409, "idempotency_key_in_use", "Idempotency key in use"


class InvalidTransition(AppError):
    status, code, title = 409, "invalid_transition", "Invalid transition"

    def __init__(self, detail: str, current_status: str, allowed_actions: list[str]) -> None:
        super().__init__(detail, current_status=current_status, allowed_actions=allowed_actions)


# --- The problem documents, as the OpenAPI document describes them -------------------
# One schema per `code`, under `Problem`: a `oneOf` with a discriminator on `code`, so a
# generated client narrows a problem by its code (`shortages` exists only on
# `insufficient_stock`). They describe the bodies built above; nothing is validated
# against them.

# Answered by the handlers below for Starlette's own HTTP errors.
_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}
# Any other HTTP error Starlette raises: its own status, this code.
HTTP_ERROR = "http_error"
NOT_READY = "not_ready"  # /readyz (health/router.py)


class ValidationErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where the error is, e.g. `["body", "quantity"]`.')
    msg: str = Field(description="What is wrong, in words.")


class Shortage(BaseModel):
    item_id: str = Field(description="The component that is short.")
    location_id: str | None = Field(description="Where it was looked for.")
    lot_code: str | None = Field(description="The lot asked for, if one was.")
    required: str = Field(description="Exact decimal: what the request needs.")
    available: str = Field(description="Exact decimal: what is free there now.")
    shortage: str = Field(description="Exact decimal: `required` − `available`.")


class ProblemBase(BaseModel):
    """What every problem document carries (RFC 9457)."""

    type: str = Field(
        description="`urn:prodorder:problem:<code>`.",
        examples=["urn:prodorder:problem:not_found"],
    )
    title: str = Field(description="The code in words; the same for every problem of a code.")
    status: int = Field(description="The HTTP status, repeated.")
    detail: str = Field(description="This occurrence, in words.")


def _problem_model(code: str, status: int | None, title: str, doc: str) -> type[ProblemBase]:
    name = "Problem" + "".join(part.capitalize() for part in code.split("_"))
    fields: dict[str, Any] = {
        "code": (Literal[code], Field(description=f"`{code}`.")),
        "title": (str, Field(description="The code in words.", examples=[title])),
    }
    if status is not None:
        fields["status"] = (Literal[status], Field(description=f"{status}."))
    model = create_model(name, __base__=ProblemBase, __doc__=f"{status or 'Any'}: {doc}", **fields)
    model.model_config["title"] = name
    return model


class ProblemValidationError(ProblemBase):
    """422: the input is invalid; `errors` names every field that is."""

    code: Literal["validation_error"]
    status: Literal[422]
    errors: list[ValidationErrorItem] = Field(description="One entry per invalid field.")


class ProblemInsufficientStock(ProblemBase):
    """409: not enough free stock; nothing was reserved or moved."""

    code: Literal["insufficient_stock"]
    status: Literal[409]
    shortages: list[Shortage] = Field(description="What is missing, per item and location.")


class ProblemInvalidTransition(ProblemBase):
    """409: the action is not allowed in the current status (of the order, or of the
    operation for an operation's action)."""

    code: Literal["invalid_transition"]
    status: Literal[409]
    current_status: str = Field(description="The order's (or operation's) status now.")
    allowed_actions: list[str] = Field(description="What that status permits; empty if final.")


_DESCRIBED: dict[str, str] = {
    "not_found": "the resource does not exist.",
    "conflict": "the request conflicts with the current state (a unique code taken, a BOM "
    "an order used, ...).",
    "precondition_failed": "the `If-Match` version is stale, or not an ETag of this API.",
    "unauthorized": "no API key, or not a valid one.",
    "forbidden": "the API key's scope is too low.",
    "idempotency_key_reused": "the `Idempotency-Key` was used for a different request.",
    "idempotency_key_in_use": "a request with this `Idempotency-Key` is still running.",
    "request_timeout": "the request did not arrive in time.",
    "payload_too_large": "the body is larger than the service accepts.",
    "headers_too_large": "the request line and headers are too large.",
    "service_unavailable": "the database or the server is out of capacity; retry after "
    "`Retry-After` seconds.",
    "rate_limited": "too many requests for this API key; retry after `Retry-After` seconds.",
    "internal_error": "an unexpected error, logged with the request id.",
}
_HTTP_DESCRIBED = {
    "bad_request": "the request could not be read.",
    "method_not_allowed": "the path does not take this method; `Allow` lists those it does.",
    "not_acceptable": "no representation matches `Accept`.",
    "unsupported_media_type": "the body's media type is not accepted.",
}


def _problem_models() -> list[type[ProblemBase]]:
    special: list[type[ProblemBase]] = [
        ProblemValidationError,
        ProblemInsufficientStock,
        ProblemInvalidTransition,
    ]
    taken = {_code_of(model) for model in special}
    models = list(special)
    errors: list[type[AppError]] = [AppError, *_subclasses(AppError)]
    for error in errors:
        if error.code not in taken:
            taken.add(error.code)
            models.append(
                _problem_model(
                    error.code, error.status, error.title, _DESCRIBED.get(error.code, error.title)
                )
            )
    for status, (code, title) in _HTTP_CODES.items():
        if code not in taken:
            taken.add(code)
            models.append(_problem_model(code, status, title, _HTTP_DESCRIBED.get(code, title)))
    models.append(
        _problem_model(
            NOT_READY,
            503,
            "Not ready",
            "the database cannot be reached or its schema is behind the migrations (`/readyz`).",
        )
    )
    models.append(_problem_model(HTTP_ERROR, None, "HTTP error", "any other HTTP error."))
    return models


def _code_of(model: type[ProblemBase]) -> str:
    code: str = get_args(model.model_fields["code"].annotation)[0]
    return code


def _subclasses(cls: type[AppError]) -> list[type[AppError]]:
    found: list[type[AppError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


PROBLEM_MODELS: tuple[type[ProblemBase], ...] = tuple(_problem_models())
PROBLEM_CODES: tuple[str, ...] = tuple(_code_of(model) for model in PROBLEM_MODELS)
Problem = TypeAliasType(
    "Problem",
    Annotated[Union[PROBLEM_MODELS], Field(discriminator="code")],  # type: ignore[valid-type]  # noqa: UP007
)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return to_json(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _validation_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    items = []
    for error in exc.errors():
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif error.get("type") == "json_invalid":
            msg = "malformed JSON: " + str(error.get("ctx", {}).get("error", "cannot parse"))
            # FastAPI puts the character offset into the location; the message has it.
            error = {**error, "loc": ("body",)}
        items.append(
            {"loc": [p if isinstance(p, int) else str(p) for p in error["loc"]], "msg": msg}
        )
    return items


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def on_app_error(_request: Request, exc: AppError) -> JSONResponse:
        return problem_response(_jsonable(exc.body()), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_items(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(
            {
                "type": problem_type("validation_error"),
                "title": "Validation error",
                "status": 422,
                "detail": detail,
                "code": "validation_error",
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, (HTTP_ERROR, "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 405:  # Starlette names one route's methods; list them all
            exc.headers = {"Allow": ", ".join(_methods_for(request))}
        return problem_response(
            {
                "type": problem_type(code),
                "title": title,
                "status": exc.status_code,
                "detail": detail,
                "code": code,
            },
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            {
                "type": problem_type("internal_error"),
                "title": "Internal error",
                "status": 500,
                "detail": "An unexpected error occurred; it has been logged.",
                "code": "internal_error",
            }
        )


# Answered by observability.RequestIdMiddleware, which sees every unhandled error first.
RETRY_AFTER_S = 1
UNAVAILABLE = {
    "type": problem_type("service_unavailable"),
    "title": "Service unavailable",
    "status": 503,
    "detail": "The database cannot be reached or has no connection free; try again shortly. "
    "Nothing was changed, unless the connection broke while the change was being "
    "committed: retry with the same Idempotency-Key to apply it exactly once.",
    "code": "service_unavailable",
}

# What says the database is down, restarting, out of connections or out of reach, as
# opposed to a bug: those stay 500s. asyncpg's class 08 (connection exceptions) and
# 57P01-57P03 (shut down, crashed, starting up); a refused or reset socket; the pool's
# own timeout; SQLite's lock wait running out or its file missing.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    sqlalchemy.exc.TimeoutError,
)
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file")
# A read on a streaming replica cancelled because replay had to remove rows it could
# still see (40001 "canceling statement due to conflict with recovery"): the request
# changed nothing, and the same read succeeds when retried.
_RECOVERY_CONFLICT = "conflict with recovery"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, ``__cause__``, ``__context__``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None]
        todo += [current.__cause__, current.__context__]


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database being out of reach (503), not a bug."""
    for cause in _causes(exc):
        if isinstance(cause, _UNAVAILABLE):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, sqlite3.OperationalError) and str(cause) in _SQLITE_UNAVAILABLE:
            return True
        if isinstance(cause, asyncpg.SerializationError) and _RECOVERY_CONFLICT in str(cause):
            return True
    return False


def _methods_for(request: Request) -> list[str]:
    """Every method the API document lists for the requested path."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entry declaring the problem documents a route can return."""
    descriptions = {
        401: "No or invalid API key (`unauthorized`).",
        403: "The API key's scope is too low (`forbidden`).",
        408: "The body did not arrive in time (`request_timeout`).",
        404: "The resource does not exist (`not_found`).",
        409: "The request conflicts with the current state.",
        412: "The `If-Match` version is stale (`precondition_failed`).",
        413: "The body is larger than the service accepts (`payload_too_large`).",
        422: "The input is invalid (`validation_error`), with one entry per field.",
        429: "Too many requests for this API key (`rate_limited`); retry after "
        "`Retry-After` seconds.",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
