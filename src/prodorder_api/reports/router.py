import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from typing_extensions import TypeAliasType

from prodorder_api.auth.deps import Authorized
from prodorder_api.db import utcnow
from prodorder_api.deps import Session
from prodorder_api.errors import problem_responses
from prodorder_api.reports import capacity, consumption, production, shortages, valuation
from prodorder_api.reports.period import TO_DESCRIPTION
from prodorder_api.reports.schemas import (
    CapacityReport,
    ConsumptionReport,
    ProductionReport,
    ShortageReport,
    ValuationReport,
)
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
    date_to: Annotated[date | None, Query(alias="to", description=TO_DESCRIPTION)] = None,
    item_id: Annotated[uuid.UUID | None, Query(description="Only orders for this product.")] = None,
) -> ProductionReport:
    """Orders completed in the period, their output, scrap rate, on-time rate and lead
    time, planned vs. actual minutes per work center; and the orders late now."""
    return await production.production(session, date_from, date_to, item_id, utcnow().date())


ShortageStatus = TypeAliasType(
    "ShortageStatus", Literal["planned", "released", "in_progress", "on_hold"]
)


@router.get(
    "/shortages",
    response_model=ShortageReport,
    summary="Components short across open orders",
    responses=problem_responses(422),
)
async def get_shortage_report(
    session: Session,
    status: Annotated[
        list[ShortageStatus] | None,
        Query(
            description="Orders to count; repeat for several. Default: planned, released "
            "and on_hold."
        ),
    ] = None,
    item_id: Annotated[uuid.UUID | None, Query(description="Only this component.")] = None,
    location_id: Annotated[
        uuid.UUID | None,
        Query(description="Only orders at this location, against stock at this location."),
    ] = None,
) -> ShortageReport:
    """Per component: the open need (required − consumed − reserved) of the orders
    against available stock (on hand − reserved, all locations unless `location_id`),
    the shortage, and the orders affected. Only components that are short are listed."""
    statuses: list[str] = list(status or shortages.DEFAULT_STATUSES)
    return await shortages.shortages(session, statuses, item_id, location_id)


@router.get(
    "/stock-valuation",
    response_model=ValuationReport,
    summary="Stock valuation",
    responses=problem_responses(422),
)
async def get_stock_valuation_report(
    session: Session,
    item_id: Annotated[
        list[uuid.UUID] | None, Query(description="Only these items; repeat for several.")
    ] = None,
) -> ValuationReport:
    """The capital tied up in stock: per item its on-hand, average cost and exact
    inventory value (Σ of its movement values), and the total. Items with nothing on
    hand and no value are left out."""
    return await valuation.stock_valuation(session, item_id)


@router.get(
    "/consumption",
    response_model=ConsumptionReport,
    summary="Material consumed over a period",
    responses=problem_responses(422),
)
async def get_consumption_report(
    session: Session,
    date_from: Annotated[date | None, Query(alias="from", description="First day (UTC).")] = None,
    date_to: Annotated[date | None, Query(alias="to", description=TO_DESCRIPTION)] = None,
    item_id: Annotated[
        list[uuid.UUID] | None, Query(description="Only these components; repeat for several.")
    ] = None,
    location_id: uuid.UUID | None = None,
) -> ConsumptionReport:
    """Per component, the quantity and value consumed by production orders in the period
    (positive numbers): exactly the ledger's `consumption` movements of those days."""
    return await consumption.consumption(session, date_from, date_to, item_id, location_id)
