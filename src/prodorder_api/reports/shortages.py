"""Shortages: components that open orders still need and stock cannot cover.

An order's open need of a component is ``required − consumed − reserved`` (what
release or reserve would still have to find), counted when above 0. Per component
the needs of the orders looked at (planned and released by default) are summed and
set against the available stock (``on_hand − reserved``) over all locations, or at
one location when ``location_id`` is given (then only orders at that location
count). A component is short when the need exceeds what is available.

One SQL statement: the needs, their totals, the stock and the comparison are CTEs;
only the order lines of short components come back, so the cost follows the size
of the answer, not of the ledger.
"""

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BindParameter, Select, and_, func, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.items.models import Item
from prodorder_api.money import ZERO, Exact
from prodorder_api.orders.models import OrderRequirement, OrderReservation, ProductionOrder
from prodorder_api.orders.schemas import format_number
from prodorder_api.reports.schemas import ShortageReport
from prodorder_api.stock.models import StockBalance

R, P, B, H = OrderRequirement, ProductionOrder, StockBalance, OrderReservation
# A held order still needs its components when it resumes: counted by default.
DEFAULT_STATUSES = ("planned", "released", "on_hold")


def _zero() -> BindParameter[Decimal]:
    return literal(ZERO, Exact())


def _needs(
    statuses: Sequence[str], item_id: uuid.UUID | None, location_id: uuid.UUID | None
) -> Select[*tuple[Any, ...]]:
    """Each order's open need per component (> 0), with the order's own columns, so
    the answer needs no second pass over the orders."""
    held = (
        select(H.order_id, H.item_id, func.sum(H.quantity, type_=Exact()).label("reserved"))
        .group_by(H.order_id, H.item_id)
        .subquery("held")
    )
    reserved = func.coalesce(held.c.reserved, _zero(), type_=Exact())
    need = type_coerce(R.required_quantity - R.consumed_quantity - reserved, Exact())
    stmt = (
        select(
            R.component_item_id.label("item_id"),
            need.label("need"),
            P.id,
            P.number,
            P.status,
            P.location_id,
            P.due_date,
            P.reference,
        )
        .select_from(R)
        .join(P, P.id == R.order_id)
        .outerjoin(held, and_(held.c.order_id == R.order_id, held.c.item_id == R.component_item_id))
        .where(P.status.in_(statuses), need > 0)
    )
    if item_id is not None:
        stmt = stmt.where(R.component_item_id == item_id)
    if location_id is not None:
        stmt = stmt.where(P.location_id == location_id)
    return stmt


async def shortages(
    session: AsyncSession,
    statuses: Sequence[str],
    item_id: uuid.UUID | None,
    location_id: uuid.UUID | None,
) -> ShortageReport:
    needs = _needs(statuses, item_id, location_id).cte("needs")
    stock_stmt = select(
        B.item_id, func.sum(B.on_hand - B.reserved, type_=Exact()).label("available")
    ).group_by(B.item_id)
    if location_id is not None:
        stock_stmt = stock_stmt.where(B.location_id == location_id)
    totals = (
        select(needs.c.item_id, func.sum(needs.c.need, type_=Exact()).label("required"))
        .group_by(needs.c.item_id)
        .cte("totals")
    )
    stock = stock_stmt.where(B.item_id.in_(select(totals.c.item_id))).cte("stock")
    available = func.coalesce(stock.c.available, _zero(), type_=Exact())
    short = (
        select(totals.c.item_id, totals.c.required, available.label("available"))
        .outerjoin(stock, stock.c.item_id == totals.c.item_id)
        .where(totals.c.required > available)
        .cte("short")
    )
    rows = await session.execute(
        select(
            short.c.item_id,
            Item.sku,
            short.c.required,
            short.c.available,
            needs.c.id,
            needs.c.number,
            needs.c.status,
            needs.c.location_id,
            needs.c.due_date,
            needs.c.reference,
            needs.c.need,
        )
        .join(Item, Item.id == short.c.item_id)
        .join(needs, needs.c.item_id == short.c.item_id)
        .order_by(Item.sku, short.c.item_id, needs.c.number)
    )
    # Plain dicts validated once, in pydantic's compiled core: with 2,500 order lines,
    # building a model per line in Python cost more than the query itself.
    report: dict[uuid.UUID, dict[str, Any]] = {}
    for component, sku, required, free, *order, need in rows:
        row = report.get(component)
        if row is None:
            row = report[component] = {
                "item_id": component,
                "sku": sku,
                "required": required,
                "available": free,
                "shortage": required - free,
                "orders": [],
            }
        order_id, number, status, at, due, reference = order
        row["orders"].append(
            {
                "id": order_id,
                "number": format_number(number),
                "status": status,
                "location_id": at,
                "due_date": due,
                "reference": reference,
                "need": need,
            }
        )
    return ShortageReport.model_validate({"data": list(report.values())})
