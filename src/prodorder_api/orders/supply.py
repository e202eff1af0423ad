"""An item's stock totals with what open orders and purchase orders will still bring in.

Here, not in ``items/``: the figure needs the orders, and master data stands below
the lifecycle (``items/`` imports nothing of ``orders/``). The route keeps its path
under ``/v1/items``.
"""

import uuid
from collections.abc import Sequence
from decimal import Decimal

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Session
from prodorder_api.errors import problem_responses
from prodorder_api.items import service as items
from prodorder_api.items.schemas import ItemStock
from prodorder_api.money import ZERO
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.states import OPEN_STATUSES
from prodorder_api.purchasing import repository as purchases
from prodorder_api.routing import ApiRoute
from prodorder_api.stock.models import StockBalance

router = APIRouter(
    prefix="/v1/items",
    tags=["items"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.get(
    "/{item_id}/stock",
    response_model=ItemStock,
    summary="Get an item's stock totals",
    responses=problem_responses(404),
)
async def get_item_stock(item_id: str, session: Session) -> ItemStock:
    """On-hand, reserved, available, incoming and value over all locations and lots."""
    return await stock_totals(session, item_id)


async def stock_totals(session: AsyncSession, item_id: str) -> ItemStock:
    item = await items.get(session, item_id)
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(StockBalance.on_hand), ZERO),
                func.coalesce(func.sum(StockBalance.reserved), ZERO),
            ).where(StockBalance.item_id == item.id)
        )
    ).one()
    on_hand, reserved = row
    incoming = await incoming_of(session, [item.id])
    return ItemStock(
        item_id=item.id,
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        incoming=incoming.get(item.id, ZERO),
        average_cost=item.average_cost,
        value=item.stock_value,
    )


async def incoming_of(
    session: AsyncSession, item_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Decimal]:
    """Per item, what open supply will still bring in: the remaining output of its
    open production orders, and its open purchase-order lines not received yet. Items
    with none are left out."""
    remaining = (
        ProductionOrder.quantity
        - ProductionOrder.produced_quantity
        - ProductionOrder.scrapped_quantity
    )
    rows = await session.execute(
        select(ProductionOrder.item_id, func.sum(remaining))
        .where(
            ProductionOrder.item_id.in_(item_ids),
            ProductionOrder.status.in_(OPEN_STATUSES),
            remaining > ZERO,
        )
        .group_by(ProductionOrder.item_id)
    )
    made = {item_id: total for item_id, total in rows}
    bought = await purchases.incoming_totals(session, item_ids)
    return {i: made.get(i, ZERO) + bought.get(i, ZERO) for i in made.keys() | bought.keys()}
