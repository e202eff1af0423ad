import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.db import utcnow
from prodorder_api.deps import Session
from prodorder_api.errors import problem_responses
from prodorder_api.reports import capacity, production
from prodorder_api.reports.schemas import CapacityReport, ProductionReport
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/reports",
    tags=["reports"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.get(
    "/capacity",
    response_model=CapacityReport,
    summary="Work center load per day",
    responses=problem_responses(422),
)
async def get_capacity_report(
    session: Session,
    date_from: Annotated[date | None, Query(alias="from", description="First day.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day.")] = None,
    work_center_id: uuid.UUID | None = None,
) -> CapacityReport:
    """Per work center and day: the remaining planned minutes of open orders' unfinished
    operations against `minutes_per_day`, as a load percentage. An order's operations
    fall on its `planned_start`, or today when it has none or it has passed."""
    return await capacity.capacity(session, date_from, date_to, work_center_id, utcnow().date())


@router.get(
    "/production",
    response_model=ProductionReport,
    summary="Production KPIs over a period",
    responses=problem_responses(422),
)
async def get_production_report(
    session: Session,
    date_from: Annotated[date | None, Query(alias="from", description="First day.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day.")] = None,
    item_id: Annotated[uuid.UUID | None, Query(description="Only orders for this product.")] = None,
) -> ProductionReport:
    """Orders completed in the period, their output, scrap rate, on-time rate and lead
    time, planned vs. actual minutes per work center; and the orders late now."""
    return await production.production(session, date_from, date_to, item_id, utcnow().date())
