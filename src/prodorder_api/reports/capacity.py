"""Capacity: per work center and day, the load of open orders' remaining operations.

An order's operations fall on its ``planned_start``, or on today when it has none
or it has passed. Remaining = planned − actual minutes (never below 0) of
operations not done, for orders that are planned, released or in progress.
Computed with one grouped SQL query.
"""

import uuid
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.money import ZERO, Exact
from prodorder_api.orders.models import OrderOperation, ProductionOrder
from prodorder_api.orders.states import OPEN_STATUSES
from prodorder_api.reports.schemas import CapacityReport, CapacityRow
from prodorder_api.workcenters.models import WorkCenter


async def capacity(
    session: AsyncSession,
    date_from: date | None,
    date_to: date | None,
    work_center_id: uuid.UUID | None,
    today: date,
) -> CapacityReport:
    day_expr = case(
        (ProductionOrder.planned_start.is_(None), literal(today)),
        (ProductionOrder.planned_start < today, literal(today)),
        else_=ProductionOrder.planned_start,
    )
    day = day_expr.label("day")
    remaining = case(
        (
            OrderOperation.planned_minutes > OrderOperation.actual_minutes,
            OrderOperation.planned_minutes - OrderOperation.actual_minutes,
        ),
        else_=literal(ZERO, Exact()),
    )
    stmt = (
        select(
            OrderOperation.work_center_id,
            day,
            func.sum(remaining, type_=Exact()),
            # Only orders with minutes left load the day (an over-booked one adds none).
            func.count(func.distinct(case((remaining > 0, ProductionOrder.id)))),
            WorkCenter.minutes_per_day,
        )
        .join(ProductionOrder, ProductionOrder.id == OrderOperation.order_id)
        .join(WorkCenter, WorkCenter.id == OrderOperation.work_center_id)
        .where(ProductionOrder.status.in_(OPEN_STATUSES), OrderOperation.status != "done")
        .group_by(OrderOperation.work_center_id, day, WorkCenter.minutes_per_day)
        .order_by(OrderOperation.work_center_id, day)
    )
    if work_center_id is not None:
        stmt = stmt.where(OrderOperation.work_center_id == work_center_id)
    if date_from is not None:
        stmt = stmt.where(day_expr >= date_from)
    if date_to is not None:
        stmt = stmt.where(day_expr <= date_to)
    rows = []
    for center_id, on_day, planned, orders, per_day in await session.execute(stmt):
        on_day = on_day if isinstance(on_day, date) else date.fromisoformat(str(on_day))
        planned = planned or ZERO
        if planned <= 0:
            continue
        load = (planned * 100 / per_day).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        rows.append(
            CapacityRow(
                work_center_id=center_id,
                date=on_day,
                planned_minutes=planned,
                capacity_minutes=per_day,
                load_percent=load,
                orders=orders,
            )
        )
    return CapacityReport(data=rows)
