"""Production KPIs over a period, computed with SQL aggregates.

The period selects orders by their completion time, in whole UTC days
(``period.within``). Late orders are open orders whose due date has passed today.
"""

import uuid
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import date_of, hours_between
from prodorder_api.money import ZERO, Exact
from prodorder_api.orders.models import OrderOperation, ProductionOrder
from prodorder_api.orders.schemas import format_number
from prodorder_api.orders.states import OPEN_STATUSES
from prodorder_api.reports.period import within
from prodorder_api.reports.schemas import (
    LateOrder,
    ProductionReport,
    WorkCenterMinutes,
)

P = ProductionOrder
RATE = Decimal("0.0001")


async def production(
    session: AsyncSession,
    date_from: date | None,
    date_to: date | None,
    item_id: uuid.UUID | None,
    today: date,
) -> ProductionReport:
    period = [P.status == "completed"]
    late_filter = [P.status.in_(OPEN_STATUSES), P.due_date < today]
    if item_id is not None:
        period.append(P.item_id == item_id)
        late_filter.append(P.item_id == item_id)
    period.extend(within(P.completed_at, date_from, date_to))
    start = func.coalesce(P.released_at, P.created_at)
    on_time = case((date_of(P.completed_at) <= P.due_date, 1), else_=0)
    row = (
        await session.execute(
            select(
                func.count(P.id),
                func.coalesce(func.sum(P.produced_quantity), ZERO),
                func.coalesce(func.sum(P.scrapped_quantity), ZERO),
                func.count(P.due_date),
                func.coalesce(func.sum(case((P.due_date.is_(None), 0), else_=on_time)), 0),
                func.avg(cast(hours_between(start, P.__table__.c.completed_at), Float)),
            ).where(and_(*period))
        )
    ).one()
    completed, produced, scrapped, with_due, in_time, lead_hours = row
    produced = produced or ZERO
    scrapped = scrapped or ZERO
    minutes = await session.execute(
        select(
            OrderOperation.work_center_id,
            func.sum(OrderOperation.planned_minutes, type_=Exact()),
            func.sum(OrderOperation.actual_minutes, type_=Exact()),
        )
        .join(P, P.id == OrderOperation.order_id)
        .where(and_(*period), OrderOperation.work_center_id.is_not(None))
        .group_by(OrderOperation.work_center_id)
        .order_by(OrderOperation.work_center_id)
    )
    late = await session.scalars(
        select(P).where(*late_filter).order_by(P.due_date, P.number).limit(500)
    )
    total = produced + scrapped
    return ProductionReport(
        date_from=date_from,
        date_to=date_to,
        orders_completed=completed,
        output_quantity=produced,
        scrapped_quantity=scrapped,
        scrap_rate=_ratio(scrapped, total),
        on_time_rate=_ratio(Decimal(in_time), Decimal(with_due)),
        average_lead_time_hours=(
            Decimal(str(lead_hours)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
            if lead_hours is not None
            else None
        ),
        minutes_by_work_center=[
            WorkCenterMinutes(
                work_center_id=wc, planned_minutes=p or ZERO, actual_minutes=a or ZERO
            )
            for wc, p, a in minutes
        ],
        late_orders=[
            LateOrder(
                id=o.id,
                number=format_number(o.number),
                status=o.status,
                item_id=o.item_id,
                due_date=o.due_date,
                reference=o.reference,
            )
            for o in late
            if o.due_date is not None
        ],
    )


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part / whole).quantize(RATE, ROUND_HALF_EVEN)
