"""Stock valuation: the capital tied up in stock, per item and in total.

An item's value is its ``stock_value``, which the ledger keeps equal to the sum of
its movement values to the millionth; ``on_hand × average_cost`` can differ from it
by the rounding of the average. Items with nothing on hand and no value are left
out. Two SQL statements: the rows (on hand summed over balances) and the total.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.items.models import Item
from prodorder_api.money import ZERO, Exact
from prodorder_api.reports.schemas import ValuationReport, ValuationRow
from prodorder_api.stock.models import StockBalance


async def stock_valuation(
    session: AsyncSession, item_ids: Sequence[uuid.UUID] | None
) -> ValuationReport:
    on_hand = (
        select(StockBalance.item_id, func.sum(StockBalance.on_hand, type_=Exact()).label("on_hand"))
        .group_by(StockBalance.item_id)
        .subquery("on_hand")
    )
    quantity = func.coalesce(on_hand.c.on_hand, literal(ZERO, Exact()), type_=Exact())
    rows_stmt = (
        select(Item.id, Item.sku, quantity, Item.average_cost, Item.stock_value)
        .outerjoin(on_hand, on_hand.c.item_id == Item.id)
        .where(or_(quantity != ZERO, Item.stock_value != ZERO))
        .order_by(Item.sku)
    )
    # Items left out have no value, so the total is simply Σ stock_value.
    total_stmt = select(
        func.coalesce(func.sum(Item.stock_value), literal(ZERO, Exact()), type_=Exact())
    )
    if item_ids:
        rows_stmt = rows_stmt.where(Item.id.in_(item_ids))
        total_stmt = total_stmt.where(Item.id.in_(item_ids))
    rows = await session.execute(rows_stmt)
    data = [
        ValuationRow(item_id=i, sku=sku, on_hand=q, average_cost=cost, value=value)
        for i, sku, q, cost, value in rows
    ]
    total = await session.scalar(total_stmt)
    return ValuationReport(data=data, total_value=total or ZERO)
