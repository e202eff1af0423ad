"""Material consumed per component over a period, from the ledger's consumption movements.

The period is by the movement's time: ``from`` ≤ created_at < the day after ``to``
(UTC days). Quantity and value are the negated sums of the consumption movements,
so positive numbers, and equal to what ``GET /v1/stock/movements?type=consumption``
lists for the same period to the millionth. One grouped SQL statement.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.errors import ValidationFailed
from prodorder_api.items.models import Item
from prodorder_api.money import ZERO, Exact
from prodorder_api.reports.schemas import ConsumptionReport, ConsumptionRow
from prodorder_api.stock.models import StockMovement

M = StockMovement


async def consumption(
    session: AsyncSession,
    date_from: date | None,
    date_to: date | None,
    item_ids: Sequence[uuid.UUID] | None,
    location_id: uuid.UUID | None,
) -> ConsumptionReport:
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ValidationFailed(["query", "to"], "must not be before `from`")
    stmt = (
        select(
            M.item_id,
            Item.sku,
            func.sum(M.quantity, type_=Exact()),
            func.sum(M.value, type_=Exact()),
            func.count(M.id),
            func.count(func.distinct(M.production_order_id)),
        )
        .join(Item, Item.id == M.item_id)
        .where(M.type == "consumption")
        .group_by(M.item_id, Item.sku)
        .order_by(Item.sku)
    )
    if date_from is not None:
        stmt = stmt.where(M.created_at >= datetime.combine(date_from, time(), UTC))
    if date_to is not None:
        stmt = stmt.where(M.created_at < datetime.combine(date_to + timedelta(1), time(), UTC))
    if item_ids:
        stmt = stmt.where(M.item_id.in_(item_ids))
    if location_id is not None:
        stmt = stmt.where(M.location_id == location_id)
    data = [
        ConsumptionRow(
            item_id=item_id,
            sku=sku,
            quantity=-quantity,
            value=-value,
            movements=movements,
            orders=orders,
        )
        for item_id, sku, quantity, value, movements, orders in await session.execute(stmt)
    ]
    return ConsumptionReport(
        date_from=date_from,
        date_to=date_to,
        data=data,
        total_value=sum((row.value for row in data), ZERO),
    )
