"""Demands: what a webshop's or ERP's order has become, rolled up over the production
orders that carry its ``external_order_id``."""

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.demands.schemas import DemandOrder, DemandRollup
from prodorder_api.errors import NotFound
from prodorder_api.money import ZERO
from prodorder_api.orders.models import OrderRequirement, ProductionOrder
from prodorder_api.orders.schemas import format_number

_O = ProductionOrder


async def rollup(session: AsyncSession, external_order_id: str) -> DemandRollup:
    orders = list(
        (
            await session.execute(
                select(
                    _O.id, _O.number, _O.status, _O.item_id, _O.quantity,
                    _O.produced_quantity, _O.due_date, _O.started_at, _O.completed_at,
                )
                .where(_O.external_order_id == external_order_id)
                .order_by(_O.number)
            )
        ).all()
    )  # fmt: skip
    if not orders:
        raise NotFound(f"no production order carries the demand {external_order_id!r}")
    active = [o for o in orders if o.status != "cancelled"]
    consumed = set(
        await session.scalars(
            select(OrderRequirement.component_item_id).where(
                OrderRequirement.order_id.in_([o.id for o in active])
            )
        )
    )
    ordered = [o for o in active if o.item_id not in consumed]
    completed = [o for o in active if o.status == "completed"]
    status = "cancelled"
    expected: date | None = None
    if active and len(completed) == len(active):
        status = "completed"
        expected = max(o.completed_at for o in completed).date()
    elif active:
        if completed:
            status = "partially_completed"
        elif any(o.started_at is not None for o in active):
            status = "in_production"
        else:
            status = "planned"
        due = [o.due_date for o in active if o.status != "completed" and o.due_date]
        expected = max(due, default=None)
    return DemandRollup(
        external_order_id=external_order_id,
        status=status,
        quantity=sum((o.quantity for o in ordered), ZERO),
        produced_quantity=sum((o.produced_quantity for o in ordered), ZERO),
        expected_completion=expected,
        orders=[
            DemandOrder(
                id=o.id,
                number=format_number(o.number),
                status=o.status,
                item_id=o.item_id,
                quantity=o.quantity,
                produced_quantity=o.produced_quantity,
                due_date=o.due_date,
            )
            for o in orders
        ],
    )
