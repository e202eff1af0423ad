"""Purchase orders in the database: load, lock, number, list, and what is still to come."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from prodorder_api import db, metadata
from prodorder_api.money import ZERO
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.purchasing.models import PurchaseOrder, PurchaseOrderLine
from prodorder_api.purchasing.schemas import IncomingSupply
from prodorder_api.purchasing.states import OPEN_STATUSES

NUMBERS = DbSequence("purchase_order_number_seq")

_BY_ID = select(PurchaseOrder).where(PurchaseOrder.id == bindparam("po_id"))
# The order alone takes the lock; its lines are read by a statement of their own after
# it. One that waited for the lock then reads the lines as the receipt before it left
# them (PostgreSQL's READ COMMITTED gives each statement a fresh snapshot, but a
# statement that waits on a row lock keeps its own for every other row: the lesson of
# orders/repository.py). Every change of a line takes the order's lock first.
_LOCK = _BY_ID.with_for_update()
_LINES = (
    select(PurchaseOrderLine)
    .where(PurchaseOrderLine.purchase_order_id.in_(bindparam("po_ids", expanding=True)))
    .order_by(PurchaseOrderLine.purchase_order_id, PurchaseOrderLine.position)
)


async def load(
    session: AsyncSession, po_id: uuid.UUID, *, for_update: bool = False
) -> PurchaseOrder | None:
    """The purchase order with its lines, or None; ``for_update``: locked first, and
    its lines with it (on SQLite the writer holds the database already)."""
    stmt = _LOCK if for_update else _BY_ID
    order = await session.scalar(stmt.execution_options(populate_existing=True), {"po_id": po_id})
    if order is not None:
        lines = _LINES.with_for_update() if for_update else _LINES
        await with_lines(session, [order], lines)
    return order


async def with_lines(
    session: AsyncSession, orders: Sequence[PurchaseOrder], stmt: Select[Any] = _LINES
) -> None:
    """Hand each order its lines, read in one statement."""
    if not orders:
        return
    rows = await session.scalars(
        stmt.execution_options(populate_existing=True), {"po_ids": [o.id for o in orders]}
    )
    by_order: dict[uuid.UUID, list[PurchaseOrderLine]] = defaultdict(list)
    for line in rows:
        by_order[line.purchase_order_id].append(line)
    for order in orders:
        set_committed_value(order, "lines", by_order.get(order.id, []))


async def next_numbers(session: AsyncSession, count: int) -> list[int]:
    return await db.next_numbers(session, NUMBERS, PurchaseOrder.number, count)


async def list_orders(
    session: AsyncSession,
    params: PageParams,
    statuses: Sequence[str] = (),
    item_id: uuid.UUID | None = None,
    supplier: str | None = None,
    meta: dict[str, str] | None = None,
) -> tuple[list[PurchaseOrder], str | None]:
    """One page of purchase orders in id order, with their lines; each filter given
    narrows it (all: AND). ``item_id``: orders with a line of that item."""
    stmt = select(PurchaseOrder).where(
        await metadata.matching(session, PurchaseOrder.meta, meta or {})
    )
    if statuses:
        stmt = stmt.where(PurchaseOrder.status.in_(statuses))
    if supplier is not None:
        stmt = stmt.where(PurchaseOrder.supplier == supplier)
    if item_id is not None:
        has_item = select(PurchaseOrderLine.purchase_order_id).where(
            PurchaseOrderLine.item_id == item_id
        )
        stmt = stmt.where(PurchaseOrder.id.in_(has_item))
    rows, cursor = await paginate(session, stmt, PurchaseOrder.id, params)
    await with_lines(session, rows)
    return rows, cursor


def open_lines_of(items: Any) -> Select[uuid.UUID, uuid.UUID, uuid.UUID, date, Decimal]:
    """Open orders' lines of the items ``items`` names (a list of ids or a subquery) with
    something still to come, by due date: (order, line, item, due date, remaining).
    What MRP, availability and an item's ``incoming`` count."""
    line = PurchaseOrderLine
    remaining = line.quantity - line.received_quantity
    return (
        select(line.purchase_order_id, line.id, line.item_id, line.due_date, remaining)
        .join(PurchaseOrder, PurchaseOrder.id == line.purchase_order_id)
        .where(PurchaseOrder.status.in_(OPEN_STATUSES), remaining > ZERO, line.item_id.in_(items))
        .order_by(line.due_date, line.id)
    )


async def incoming_totals(
    session: AsyncSession, item_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Decimal]:
    """Per item, Σ of what open orders' lines still bring in; items with none left out."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    line = PurchaseOrderLine
    remaining = line.quantity - line.received_quantity
    rows = await session.execute(
        select(line.item_id, func.sum(remaining))
        .join(PurchaseOrder, PurchaseOrder.id == line.purchase_order_id)
        .where(line.item_id.in_(ids), PurchaseOrder.status.in_(OPEN_STATUSES), remaining > ZERO)
        .group_by(line.item_id)
    )
    return {item_id: total for item_id, total in rows}


async def incoming_by_item(
    session: AsyncSession, item_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[IncomingSupply]]:
    """Per item, its open lines' quantities still to come, by due date (one query)."""
    ids = sorted(set(item_ids))
    found: dict[uuid.UUID, list[IncomingSupply]] = defaultdict(list)
    if not ids:
        return found
    for po_id, line_id, item_id, due, quantity in await session.execute(open_lines_of(ids)):
        supply = IncomingSupply(
            purchase_order_id=po_id, line_id=line_id, due_date=due, quantity=quantity
        )
        found[item_id].append(supply)
    return found
