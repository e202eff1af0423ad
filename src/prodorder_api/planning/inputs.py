"""What an MRP run reads, in five queries whatever the size of the plan.

Every query starts from the same recursive CTE: the items reachable from the plan's
lines through default BOMs (``UNION``, so a cycle could not loop). The database
walks the levels, not Python: on the 5,000-item bench (``bench/mrp_bench.py``) the
CTE takes 10 ms on PostgreSQL, and the same five queries run at 1,000 items.
"""

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import CTE, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.boms.explosion import line_factor
from prodorder_api.boms.models import Bom, BomLine
from prodorder_api.items.models import Item
from prodorder_api.money import ZERO
from prodorder_api.orders.models import OrderRequirement, OrderReservation, ProductionOrder
from prodorder_api.orders.states import OPEN_STATUSES
from prodorder_api.planning.models import PlanLine, ProductionPlan
from prodorder_api.planning.mrp import Demand, Inputs, Receipt, Recipe
from prodorder_api.purchasing import repository as purchases
from prodorder_api.stock.models import StockBalance


def reachable(plan_id: uuid.UUID) -> CTE:
    """The plan's items and, recursively, the components of their default BOMs."""
    reach = (
        select(PlanLine.item_id.label("item_id"))
        .where(PlanLine.plan_id == plan_id)
        .cte("reach", recursive=True)
    )
    below = (
        select(BomLine.component_item_id)
        .join(Bom, Bom.id == BomLine.bom_id)
        .join(reach, reach.c.item_id == Bom.item_id)
        .where(Bom.is_default)
    )
    return reach.union(below)


async def load(session: AsyncSession, plan: ProductionPlan, today: date) -> Inputs:
    reach = reachable(plan.id)
    inputs = await _structure(session, reach)
    inputs.available = await _available(session, reach)
    inputs.receipts = await _incoming(session, reach)
    # Open orders' demand before the plan's lines: stock covers what is committed first.
    inputs.demands = await _open_demand(session, reach, today)
    inputs.demands += [
        Demand(line.item_id, line.due_date, line.quantity, "plan_line", line.id)
        for line in plan.lines
    ]
    return inputs


async def _structure(session: AsyncSession, reach: CTE) -> Inputs:
    """Lead times of every item, default BOMs with their lines: one row per line."""
    rows = await session.execute(
        select(
            reach.c.item_id,
            Item.lead_time_days,
            Bom.output_quantity,
            BomLine.component_item_id,
            BomLine.quantity,
            BomLine.scrap_factor,
        )
        .select_from(reach)
        .join(Item, Item.id == reach.c.item_id)
        .outerjoin(Bom, (Bom.item_id == reach.c.item_id) & Bom.is_default)
        .outerjoin(BomLine, BomLine.bom_id == Bom.id)
    )
    lead_times: dict[uuid.UUID, int] = {}
    outputs: dict[uuid.UUID, Decimal] = {}
    lines: dict[uuid.UUID, list[tuple[uuid.UUID, Decimal]]] = {}
    for item_id, lead_time, output_quantity, component, quantity, scrap in rows:
        lead_times[item_id] = lead_time
        if output_quantity is not None:
            outputs[item_id] = output_quantity
            made = lines.setdefault(item_id, [])
            if component is not None:
                made.append((component, line_factor(quantity, scrap)))
    recipes = {
        item_id: Recipe(outputs[item_id], tuple(sorted(made))) for item_id, made in lines.items()
    }
    return Inputs(lead_times=lead_times, recipes=recipes)


async def _available(session: AsyncSession, reach: CTE) -> dict[uuid.UUID, Decimal]:
    """On hand − reserved, over all locations and lots."""
    free = func.sum(StockBalance.on_hand - StockBalance.reserved)
    rows = await session.execute(
        select(StockBalance.item_id, free)
        .where(StockBalance.item_id.in_(select(reach.c.item_id)))
        .group_by(StockBalance.item_id)
    )
    return {item_id: quantity for item_id, quantity in rows}


async def _incoming(session: AsyncSession, reach: CTE) -> list[Receipt]:
    """Scheduled receipts: open orders' remaining output, due on their due date (at once
    without one), then open purchase orders' lines still to come, on theirs."""
    order = ProductionOrder
    remaining = order.quantity - order.produced_quantity - order.scrapped_quantity
    rows = await session.execute(
        select(order.item_id, order.due_date, remaining)
        .where(
            order.status.in_(OPEN_STATUSES),
            order.item_id.in_(select(reach.c.item_id)),
            remaining > ZERO,
        )
        .order_by(order.id)
    )
    receipts = [Receipt(item_id, due, quantity) for item_id, due, quantity in rows]
    bought = await session.execute(purchases.open_lines_of(select(reach.c.item_id)))
    return receipts + [Receipt(item_id, due, quantity) for _, _, item_id, due, quantity in bought]


async def _open_demand(session: AsyncSession, reach: CTE, today: date) -> list[Demand]:
    """Open orders' requirements: required − consumed − reserved, needed on the order's
    planned start (else its due date, else today)."""
    held = (
        select(
            OrderReservation.order_id,
            OrderReservation.item_id,
            func.sum(OrderReservation.quantity).label("quantity"),
        )
        .group_by(OrderReservation.order_id, OrderReservation.item_id)
        .subquery()
    )
    requirement = OrderRequirement
    need = (
        requirement.required_quantity
        - requirement.consumed_quantity
        - func.coalesce(held.c.quantity, ZERO)
    )
    rows = await session.execute(
        select(
            ProductionOrder.id,
            ProductionOrder.planned_start,
            ProductionOrder.due_date,
            requirement.component_item_id,
            need,
        )
        .join(requirement, requirement.order_id == ProductionOrder.id)
        .outerjoin(
            held,
            (held.c.order_id == ProductionOrder.id)
            & (held.c.item_id == requirement.component_item_id),
        )
        .where(
            ProductionOrder.status.in_(OPEN_STATUSES),
            requirement.component_item_id.in_(select(reach.c.item_id)),
            need > ZERO,
        )
        .order_by(ProductionOrder.id, requirement.position)
    )
    return [
        Demand(item_id, start or due or today, quantity, "production_order", order_id)
        for order_id, start, due, item_id, quantity in rows
    ]
