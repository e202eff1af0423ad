"""Cursor pagination: ``{data, next_cursor}`` walked by keyset on the time-ordered id.

A keyset cursor (``WHERE id > :last ORDER BY id``) never repeats or skips a row
that existed when the walk began, however many rows are inserted meanwhile.
"""

import base64
import binascii
import uuid
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from prodorder_api.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """`Page[ItemOut]` is named `ItemPage` in the OpenAPI document and generated clients."""
        name: str = params[0].__name__
        return name.removesuffix("Out") + "Page"


class PageParams(BaseModel):
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Rows per page (1–500).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    # async only so that FastAPI calls it in the event loop: a plain function would be
    # sent to the thread pool, a round trip that cost every list request about 60 µs.
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(["query", "cursor"], "not a cursor this API returned") from exc


def to_page(model: type[BaseModel], rows: list[Any], next_cursor: str | None) -> dict[str, Any]:
    """A page body; the route's ``response_model`` (``Page[model]``) validates it."""
    return {"data": [model.model_validate(row) for row in rows], "next_cursor": next_cursor}


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    params: PageParams,
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` for one page; returns the rows and the next cursor. A ``stmt`` of one
    entity gives its objects; one of columns gives rows, read by attribute as well."""
    if params.cursor is not None:
        stmt = stmt.where(id_column > decode_cursor(params.cursor))
    result = await session.execute(stmt.order_by(id_column).limit(params.limit + 1))
    rows: list[Any] = list(result.scalars() if len(stmt.column_descriptions) == 1 else result)
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
