"""The order reads: ``GET /v1/production-orders/{id}``, the list, and the document
every action answers with.

A GET is the API's hottest read. Every change to an order bumps its version
(``service.record``; the ETag relies on it too), so the document of (id, version) never
changes: the process keeps the documents it rendered (``_Kept``), and a GET asks the
database for the order's version alone, answering from what is kept when it is the
same. A GET whose ``If-None-Match`` names the current version is answered 304 without
a body, before anything is rendered. Either way it is the route's answer, behind its
authentication like every other request.
"""

import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_object_session
from sqlalchemy.orm import Session
from starlette.responses import Response

from prodorder_api.concurrency import etag, matches, names_newer
from prodorder_api.db import on_primary
from prodorder_api.errors import NotFound
from prodorder_api.ids import parse_id
from prodorder_api.orders import repository
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.presenter import present, summary
from prodorder_api.orders.schemas import OrderList, OrderOut, OrderSummary, SplitResult
from prodorder_api.pagination import Page, PageParams
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
    external_order_id: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


# At most this many bytes of documents are kept per engine and process, the least
# recently read dropped first (an order with five requirements and its history is
# ~2-3 KB), and none larger than KEPT_LARGEST at all: an order with a long history
# must not hold memory hostage.
KEPT_BYTES = 16 * 1024 * 1024
KEPT_LARGEST = 256 * 1024


class _Kept:
    """One engine's kept documents, (id, version) → bytes, least recently read first."""

    def __init__(self) -> None:
        self.documents: OrderedDict[uuid.UUID, tuple[int, bytes]] = OrderedDict()
        self.size = 0

    def get(self, order_id: uuid.UUID, version: int) -> bytes | None:
        known = self.documents.get(order_id)
        if known is None or known[0] != version:
            return None
        self.documents.move_to_end(order_id)
        return known[1]

    def keep(self, order_id: uuid.UUID, version: int, body: bytes) -> None:
        dropped = self.documents.pop(order_id, None)
        if dropped is not None:
            self.size -= len(dropped[1])
        if len(body) > KEPT_LARGEST:
            return
        self.documents[order_id] = (version, body)
        self.size += len(body)
        while self.size > KEPT_BYTES:
            _, (_, oldest) = self.documents.popitem(last=False)
            self.size -= len(oldest)


_kept: weakref.WeakKeyDictionary[AsyncEngine, _Kept] = weakref.WeakKeyDictionary()
_VERSION = select(ProductionOrder.version).where(ProductionOrder.id == bindparam("order_id"))


async def order(session: AsyncSession, order_id: str, if_none_match: str | None) -> Response:
    """One order as ``OrderOut`` JSON with its ``ETag``, or 304 when ``If-None-Match``
    names its version."""
    parsed = parse_id(order_id)
    version = None
    if parsed is not None:  # Core, not the ORM's execution: ~0.3 ms of CPU less a GET
        version = await (await session.connection()).scalar(_VERSION, {"order_id": parsed})
        if names_newer(if_none_match, version or 0) and await on_primary(session):
            version = await (await session.connection()).scalar(_VERSION, {"order_id": parsed})
    if parsed is None or version is None:
        raise NotFound(f"no production order with id {order_id}")
    if matches(if_none_match, version):
        return Response(status_code=304, headers={"ETag": etag(version)})
    kept = _kept_for(session)
    body = kept.get(parsed, version)
    if body is None:
        found = await repository.load(session, parsed)
        if found is None:  # deleted meanwhile: orders are not, but the answer is plain
            raise NotFound(f"no production order with id {order_id}")
        version, body = found.version, present(found).model_dump_json().encode()
        kept.keep(parsed, version, body)
    response = JsonBody(body)
    response.headers["ETag"] = etag(version)
    return response


def _kept_for(session: AsyncSession) -> _Kept:
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    kept = _kept.get(engine)
    if kept is None:
        kept = _kept[engine] = _Kept()
    return kept


async def order_json(order: ProductionOrder, status_code: int = 200) -> JsonBody:
    """The order in hand as ``OrderOut`` JSON, with its ``ETag``: what every action
    answers, serialised once (no second validation against the route's
    ``response_model``). The bytes are kept on the session for the order's event,
    which shows the same document (``presented``). They are not kept for GETs: the
    action's transaction may yet roll back, and its version go to another change."""
    session = async_object_session(order)
    if session is None:
        raise RuntimeError("an order must be in a session to be rendered")
    await session.run_sync(repository.load_children, order)
    body = present(order).model_dump_json().encode()
    session.info.setdefault(_PRESENTED, {})[order.id] = (order.version, body)
    response = JsonBody(body, status_code=status_code)
    response.headers["ETag"] = etag(order.version)
    return response


async def split_json(original: ProductionOrder, new: ProductionOrder) -> JsonBody:
    """``{original, new}`` (``SplitResult``) with the original's ``ETag``; each order's
    document kept for its event, as ``order_json`` does."""
    documents = await _presented_kept(original, new)
    result = SplitResult(original=documents[0], new=documents[1])
    response = JsonBody(result.model_dump_json().encode())
    response.headers["ETag"] = etag(original.version)
    return response


async def orders_json(orders: list[ProductionOrder], status_code: int = 200) -> JsonBody:
    """``{data: [orders]}`` (``OrderList``), each document kept for its event."""
    listed = OrderList(data=await _presented_kept(*orders))
    return JsonBody(listed.model_dump_json().encode(), status_code=status_code)


async def _presented_kept(*orders: ProductionOrder) -> list[OrderOut]:
    """The orders presented, each document kept for its event as ``order_json`` does."""
    session = async_object_session(orders[0])
    if session is None:
        raise RuntimeError("an order must be in a session to be rendered")
    documents = []
    for order in orders:
        await session.run_sync(repository.load_children, order)
        document = present(order)
        body = document.model_dump_json().encode()
        session.info.setdefault(_PRESENTED, {})[order.id] = (order.version, body)
        documents.append(document)
    return documents


def presented(session: Session, order: ProductionOrder) -> bytes | None:
    """The document a response of this request already made of the order, if the
    order has not changed since (every change bumps its version)."""
    kept = session.info.get(_PRESENTED, {}).get(order.id)
    return kept[1] if kept is not None and kept[0] == order.version else None


async def page(session: AsyncSession, params: PageParams, filters: OrderFilters) -> JsonBody:
    """One page of orders as ``OrderSummary`` JSON (``Page[OrderSummary]``)."""
    rows, cursor = await repository.list_orders(
        session,
        params,
        filters.statuses,
        filters.item_id,
        filters.reference,
        filters.due_before,
        filters.due_after,
        filters.updated_after,
        filters.production_plan_id,
        filters.external_order_id,
        filters.meta,
    )
    listed = Page[OrderSummary](data=[summary(row) for row in rows], next_cursor=cursor)
    return JsonBody(listed.model_dump_json().encode())
