"""The two order reads: ``GET /v1/production-orders/{id}`` and the list.

They are the API's hottest paths and were CPU-bound in Python. Measured in-process on
PostgreSQL (2,000 requests straight into the ASGI app, ``time.process_time``): a GET
took 2.2 ms of CPU — five ORM statements for the order and its children, ``OrderOut``
built, then validated again by FastAPI and serialised — and a list page of 50 as much.

On PostgreSQL the database now renders the response body (``render_sql``) in one
statement, and the route sends those bytes with the ``ETag`` already set: 0.42 ms per
GET, 0.52 ms per page, most of it now the framework's. The statement goes straight to
asyncpg, on a connection from the engine's pool unless the session already holds one:
one round trip instead of three (a single statement is its own snapshot, so no BEGIN
and COMMIT around it), and 0.15-0.2 ms less CPU than through the session's transaction
and SQLAlchemy's execution. ``tests/test_order_reads.py`` proves the bytes are those
pydantic gives. The process then keeps the document, checked against the order's
version at each GET (``document``), and ``shortcut.py`` answers most GETs of one order
before FastAPI's routing.

SQLite keeps the ORM path and pydantic, serialised once instead of validated twice.
"""

import json
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

import pydantic_core
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_object_session
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from prodorder_api.concurrency import etag
from prodorder_api.db import column_values, pg_call, table_of
from prodorder_api.errors import NotFound
from prodorder_api.events import service as events
from prodorder_api.events.models import Event
from prodorder_api.ids import parse_id
from prodorder_api.orders import events as order_events
from prodorder_api.orders import render_sql, service
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.presenter import present, summary
from prodorder_api.orders.schemas import OrderSummary
from prodorder_api.pagination import Page, PageParams, decode_cursor, encode_cursor
from prodorder_api.routing import JsonBody

_PRESENTED = "prodorder.orders.presented"


@dataclass(frozen=True)
class OrderFilters:
    """The list's filters; each one given narrows it (all of them: AND)."""

    statuses: list[str] = field(default_factory=list)
    item_id: uuid.UUID | None = None
    reference: str | None = None
    due_before: date | None = None
    due_after: date | None = None
    updated_after: datetime | None = None
    production_plan_id: uuid.UUID | None = None


async def order(session: AsyncSession, order_id: str) -> JsonBody:
    """One order as ``OrderOut`` JSON, with its ``ETag``."""
    engine = _postgresql(session)
    if engine is None:
        return await order_json(await service.get(session, order_id))
    found = None
    if (parsed := parse_id(order_id)) is not None:
        found = await document(engine, parsed, partial(_fetch, session, engine, "fetchrow"))
    if found is None:
        raise NotFound(f"no production order with id {order_id}")
    version, body = found
    response = JsonBody(body)
    response.headers["ETag"] = etag(version)
    return response


# The documents GET rendered last, per engine: order id → (version, bytes), the least
# recently read dropped beyond KEPT_BYTES (an order with five requirements and its
# history is ~2-3 KB), and none larger than KEPT_LARGEST kept at all. Every change to
# an order bumps its version (``service.record``; the ETag relies on it too), so a
# kept document is the order's as long as its version is the same: a GET of a kept
# order asks PostgreSQL for the version alone and renders only if it moved (two
# statements then). Only GET keeps documents: they are of committed rows, where an
# action's rendering is of its own transaction, which may yet roll back and its
# version go to another change. In ``make bench``'s read scenario PostgreSQL's CPU per
# GET fell from 0.21 to 0.03-0.04 ms.
KEPT_BYTES = 16 * 1024 * 1024
KEPT_LARGEST = 256 * 1024


class _Kept:
    """One engine's kept documents, least recently read first."""

    def __init__(self) -> None:
        self.documents: OrderedDict[uuid.UUID, tuple[int, bytes]] = OrderedDict()
        self.size = 0

    def get(self, order_id: uuid.UUID) -> tuple[int, bytes] | None:
        return self.documents.get(order_id)

    def touch(self, order_id: uuid.UUID) -> None:
        if order_id in self.documents:  # another request may have dropped it meanwhile
            self.documents.move_to_end(order_id)

    def drop(self, order_id: uuid.UUID) -> None:
        dropped = self.documents.pop(order_id, None)
        if dropped is not None:
            self.size -= len(dropped[1])

    def keep(self, order_id: uuid.UUID, found: tuple[int, bytes]) -> None:
        self.drop(order_id)
        if len(found[1]) > KEPT_LARGEST:
            return
        self.documents[order_id] = found
        self.size += len(found[1])
        while self.size > KEPT_BYTES:
            _, (_, body) = self.documents.popitem(last=False)
            self.size -= len(body)


_documents: weakref.WeakKeyDictionary[AsyncEngine, _Kept] = weakref.WeakKeyDictionary()


async def document(
    engine: AsyncEngine, order_id: uuid.UUID, fetchrow: Callable[..., Awaitable[Any]]
) -> tuple[int, bytes] | None:
    """(version, ``OrderOut`` JSON) of the order as committed, or None if there is none;
    ``fetchrow`` runs a statement."""
    kept = _documents.get(engine)
    if kept is None:
        kept = _documents[engine] = _Kept()
    known = kept.get(order_id)
    if known is not None:
        row = await fetchrow(render_sql.VERSION, order_id)
        if row is not None and row["version"] == known[0]:
            kept.touch(order_id)
            return known
    row = await fetchrow(render_sql.ORDER, order_id)
    if row is None:
        kept.drop(order_id)
        return None
    found = (row["version"], _with_details(row["body"], row["details"]))
    kept.keep(order_id, found)
    return found


async def order_json(order: ProductionOrder, status_code: int = 200) -> JsonBody:
    """The order in hand as ``OrderOut`` JSON, with its ``ETag``: what every action
    answers, serialised once (no second validation against the route's
    ``response_model``).

    When the action left collections unloaded (a start loads none), PostgreSQL gets
    the request's changes flushed and renders the document, as for ``GET``: one
    statement instead of up to three SELECTs and ``present``; the same statement
    inserts the request's outbox events, the order's own with that document (one
    statement less an action). Otherwise (a new order, or SQLite after loading what is
    missing) the order is presented from memory. The bytes are kept on the session for
    the order's event, which shows the same document (``presented``).
    """
    session = async_object_session(order)
    if session is None:
        raise RuntimeError("an order must be in a session to be rendered")
    engine = _postgresql(session)
    unloaded = inspect(order).unloaded & set(service.CHILDREN)
    if engine is not None and unloaded:
        await service.write_changes(session, order)
        await session.flush()
        outbox = session.in_transaction() and events.take(session, lambda d: _shows(d, order))
        if outbox:
            arrays = [column_values(_EVENTS, c, [r[c] for r in outbox]) for c in _EVENT_COLUMNS]
            sql, args = render_sql.ORDER_WITH_EVENTS, (order.id, *arrays)
        else:
            sql, args = render_sql.ORDER, (order.id,)
        row = await _fetch(session, engine, "fetchrow", sql, *args)
        body = _with_details(row["body"], row["details"])
    else:
        if unloaded:
            await session.run_sync(service.load_children, order)
        body = present(order).model_dump_json().encode()
    session.info.setdefault(_PRESENTED, {})[order.id] = (order.version, body)
    response = JsonBody(body, status_code=status_code)
    response.headers["ETag"] = etag(order.version)
    return response


_EVENTS = table_of(Event)
_EVENT_COLUMNS = ("id", "type", "created_at", "data")


def _shows(data: events.Data, order: ProductionOrder) -> bool:
    """Whether an event's data is ``order`` as ``GET`` shows it."""
    return isinstance(data, order_events.Snapshot) and data.order is order


def presented(session: Session, order: ProductionOrder) -> bytes | None:
    """The document a response of this request already made of the order, if the
    order has not changed since (every change bumps its version)."""
    kept = session.info.get(_PRESENTED, {}).get(order.id)
    return kept[1] if kept is not None and kept[0] == order.version else None


async def page(session: AsyncSession, params: PageParams, filters: OrderFilters) -> JsonBody:
    """One page of orders as ``OrderSummary`` JSON (``Page[OrderSummary]``)."""
    engine = _postgresql(session)
    if engine is None:
        rows, cursor = await service.list_orders(
            session,
            params,
            filters.statuses,
            filters.item_id,
            filters.reference,
            filters.due_before,
            filters.due_after,
            filters.updated_after,
            filters.production_plan_id,
        )
        listed = Page[OrderSummary](data=[summary(row) for row in rows], next_cursor=cursor)
        return JsonBody(listed.model_dump_json().encode())
    sql, args = _list_statement(params, filters)
    found = await _fetch(session, engine, "fetch", sql, *args)
    next_cursor = "null"
    if len(found) > params.limit:
        found = found[: params.limit]
        next_cursor = f'"{encode_cursor(found[-1]["id"])}"'  # URL-safe base64: no escapes
    data = ",".join(row["body"] for row in found)
    return JsonBody(f'{{"data":[{data}],"next_cursor":{next_cursor}}}'.encode())


def _list_statement(params: PageParams, filters: OrderFilters) -> tuple[str, list[Any]]:
    """The page's statement: what ``service.list_orders`` and ``paginate`` select, as SQL
    with only the conditions given (so each shape gets its own plan and index)."""
    conditions: list[str] = []
    args: list[Any] = []

    def where(condition: str, value: Any) -> None:
        args.append(value)
        conditions.append(condition.format(f"${len(args)}"))

    if filters.production_plan_id is not None:
        where("production_plan_id = {}", filters.production_plan_id)
    if filters.statuses:
        where("status = ANY({}::text[])", list(filters.statuses))
    if filters.item_id is not None:
        where("item_id = {}", filters.item_id)
    if filters.reference is not None:
        where("reference = {}", filters.reference)
    if filters.due_before is not None:
        where("due_date < {}", filters.due_before)
    if filters.due_after is not None:
        where("due_date > {}", filters.due_after)
    if filters.updated_after is not None:
        where("updated_at > {}", filters.updated_after)
    if params.cursor is not None:
        where("id > {}", decode_cursor(params.cursor))
    args.append(params.limit + 1)
    sql = f"SELECT id, {render_sql.SUMMARY} AS body FROM production_orders"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return f"{sql} ORDER BY id LIMIT ${len(args)}", args


def _with_details(body: str, details: list[str] | None) -> bytes:
    """The document with each ``DETAILS`` mark replaced by its history entry's details,
    serialised as the ORM path does: the stored JSON loaded, then dumped by pydantic."""
    if not details:
        return body.encode()
    pieces = body.encode().split(render_sql.DETAILS.encode())
    out = [pieces[0]]
    for stored, rest in zip(details, pieces[1:], strict=True):
        out += (pydantic_core.to_json(json.loads(stored)), rest)
    return b"".join(out)


def _postgresql(session: AsyncSession) -> AsyncEngine | None:
    """The session's engine when it is PostgreSQL's, else None (SQLite: the ORM path)."""
    engine = session.bind
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        return engine
    return None


async def _fetch(
    session: AsyncSession, engine: AsyncEngine, method: str, sql: str, *args: Any
) -> Any:
    """``asyncpg.Connection.<method>(sql, *args)``: on the session's connection when it
    already holds one (a request that held two at once could starve the pool of the
    connections it waits for), else on one taken from the pool for this statement."""
    if session.in_transaction():
        # A lost connection fails the session's rollback too, which invalidates it.
        return await pg_call(session, method, sql, *args)
    return await pooled_call(engine, method, sql, *args)


async def pooled_call(engine: AsyncEngine, method: str, sql: str, *args: Any) -> Any:
    """``asyncpg.Connection.<method>(sql, *args)`` on a connection taken from the
    engine's pool for this statement alone."""
    pooled = await engine.raw_connection()
    driver: Any = pooled.driver_connection
    try:
        return await getattr(driver, method)(sql, *args)
    except Exception:
        if driver.is_closed():  # the connection is lost: the pool must not hand it out again
            await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        # Through a greenlet, like AsyncConnection.close: a checkin may close the
        # connection (an invalidated one), and the driver's close is awaited.
        await greenlet_spawn(pooled.close)
