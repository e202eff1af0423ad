"""Make-to-order: one call makes the order for a demand and, level by level, a planned
order for every made component that free stock and open supply cannot cover.

A component is *made* when it has a default BOM. Its cover is its free stock at the
order's location (on hand − reserved) plus its open supply (``supply.incoming_of``:
open production orders and purchase-order lines), counted once per call however
many parents need it: what one parent takes from it is not there for the next. The
shortfall becomes a planned order due the day its parent starts, started its own
``lead_time_days`` earlier (``planning.mrp.start_for``, the rule MRP dates by), and
carrying the demand and metadata. BOMs are acyclic (``boms`` refuses a cycle), so
the walk ends; it reads a fixed number of statements per level.
"""

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api import metadata
from prodorder_api.boms import service as boms
from prodorder_api.boms.explosion import line_requirement
from prodorder_api.boms.models import Bom, BomLine
from prodorder_api.errors import ValidationFailed
from prodorder_api.items import service as items
from prodorder_api.items.models import Item
from prodorder_api.locations import service as locations
from prodorder_api.money import ZERO
from prodorder_api.orders import supply
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import MakeToOrderRequest
from prodorder_api.orders.service import NewOrder, demand_columns, place
from prodorder_api.planning.mrp import start_for
from prodorder_api.stock import balances


async def make_to_order(session: AsyncSession, data: MakeToOrderRequest) -> list[ProductionOrder]:
    """The top order first, then the sub-assembly orders level by level."""
    product = await items.get_for_input(session, data.item_id, "item_id")
    bom = (await boms.defaults_for(session, [product.id])).get(product.id)
    if bom is None:
        raise ValidationFailed(["body", "item_id"], "the item has no default BOM")
    location = await locations.resolve(session, None, "location_id")
    demand, meta = demand_columns(data.demand), metadata.created(data.metadata)

    def new(item_id: uuid.UUID, made_by: Bom, quantity: Decimal, due: date, lead: int) -> NewOrder:
        return NewOrder(
            item_id=item_id,
            bom=made_by,
            quantity=quantity,
            location_id=location,
            output_location_id=location,
            due_date=due,
            planned_start=start_for(due, lead),
            demand=demand,
            meta=meta,
        )

    top = new(product.id, bom, data.quantity, data.due_date, product.lead_time_days)
    orders = [top]
    level = [top] if data.sub_assemblies else []
    cover: dict[uuid.UUID, Decimal] = {}
    while level:
        needs = [
            (line.component_item_id, _need(parent, line), parent)
            for parent in level
            for line in parent.bom.lines
        ]
        components = list(dict.fromkeys(item_id for item_id, _, _ in needs))
        made = await boms.defaults_for(session, components)
        unseen = [item_id for item_id in made if item_id not in cover]
        cover |= await _cover(session, unseen, location)
        lead_times = await _lead_times(session, list(made))
        level = []
        for item_id, need, parent in needs:
            if item_id not in made:
                continue  # bought: MRP proposes its purchase
            taken = min(max(cover[item_id], ZERO), need)
            cover[item_id] -= taken
            if need > taken:
                assert parent.planned_start is not None
                due, lead = parent.planned_start, lead_times[item_id]
                order = new(item_id, made[item_id], need - taken, due, lead)
                orders.append(order)
                level.append(order)
    return await place(session, orders)


def _need(parent: NewOrder, line: BomLine) -> Decimal:
    return line_requirement(parent.quantity, line, parent.bom.output_quantity)


async def _cover(
    session: AsyncSession, item_ids: list[uuid.UUID], location_id: uuid.UUID
) -> dict[uuid.UUID, Decimal]:
    """Free stock at the location plus open supply, per item."""
    if not item_ids:
        return {}
    free = await balances.free_stock(session, item_ids, location_id)
    incoming = await supply.incoming_of(session, item_ids)
    return {item_id: free[item_id].total + incoming.get(item_id, ZERO) for item_id in item_ids}


async def _lead_times(session: AsyncSession, item_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not item_ids:
        return {}
    rows = await session.execute(select(Item.id, Item.lead_time_days).where(Item.id.in_(item_ids)))
    return defaultdict(int, {item_id: days for item_id, days in rows})
