import uuid
from datetime import date

from pydantic import Field

from prodorder_api.fields import DecimalOut, ResponseModel
from prodorder_api.orders.schemas import OrderStatus


class CapacityRow(ResponseModel):
    work_center_id: uuid.UUID
    date: date
    planned_minutes: DecimalOut = Field(
        description="Remaining planned minutes of open orders' unfinished operations."
    )
    capacity_minutes: DecimalOut = Field(description="The work center's minutes_per_day.")
    load_percent: DecimalOut = Field(description="planned ÷ capacity × 100, two places.")
    orders: int = Field(description="How many orders load the work center that day.")


class CapacityReport(ResponseModel):
    data: list[CapacityRow]


class WorkCenterMinutes(ResponseModel):
    work_center_id: uuid.UUID
    planned_minutes: DecimalOut
    actual_minutes: DecimalOut


class LateOrder(ResponseModel):
    id: uuid.UUID
    number: str
    status: OrderStatus
    item_id: uuid.UUID
    due_date: date
    reference: str | None


class ProductionReport(ResponseModel):
    date_from: date | None = Field(serialization_alias="from")
    date_to: date | None = Field(serialization_alias="to")
    orders_completed: int
    output_quantity: DecimalOut = Field(description="Σ produced over the completed orders.")
    scrapped_quantity: DecimalOut
    scrap_rate: DecimalOut | None = Field(description="scrapped ÷ (produced + scrapped).")
    on_time_rate: DecimalOut | None = Field(
        description="Share of completed orders with a due date that finished on or before it."
    )
    average_lead_time_hours: DecimalOut | None = Field(
        description="Mean hours from release (else creation) to completion."
    )
    minutes_by_work_center: list[WorkCenterMinutes] = Field(
        description="Planned vs. actual minutes of the completed orders' operations."
    )
    late_orders: list[LateOrder] = Field(description="Open orders past their due date now.")


class ShortageOrder(ResponseModel):
    id: uuid.UUID
    number: str = Field(examples=["MO-000042"])
    status: str
    location_id: uuid.UUID
    due_date: date | None
    reference: str | None
    need: DecimalOut = Field(description="This order's open need: required − consumed − reserved.")


class ShortageRow(ResponseModel):
    item_id: uuid.UUID
    sku: str
    required: DecimalOut = Field(description="Σ open need of the orders below.")
    available: DecimalOut = Field(description="On hand − reserved, over the locations looked at.")
    shortage: DecimalOut = Field(description="required − available (> 0).")
    orders: list[ShortageOrder] = Field(description="The orders that need it, by number.")


class ShortageReport(ResponseModel):
    data: list[ShortageRow]


class ValuationRow(ResponseModel):
    item_id: uuid.UUID
    sku: str
    on_hand: DecimalOut = Field(description="Σ on hand over all locations and lots.")
    average_cost: DecimalOut | None = Field(description="The item's moving-average cost.")
    value: DecimalOut = Field(
        description="The item's exact inventory value (Σ of its movement values). It equals "
        "on_hand × average_cost up to the rounding of the average to six places."
    )


class ValuationReport(ResponseModel):
    data: list[ValuationRow]
    total_value: DecimalOut = Field(description="Σ value over the items listed.")


class ConsumptionRow(ResponseModel):
    item_id: uuid.UUID
    sku: str
    quantity: DecimalOut = Field(description="Quantity consumed (positive).")
    value: DecimalOut = Field(description="Value consumed at moving-average cost (positive).")
    movements: int = Field(description="How many consumption movements.")


class ConsumptionReport(ResponseModel):
    date_from: date | None = Field(serialization_alias="from")
    date_to: date | None = Field(serialization_alias="to")
    data: list[ConsumptionRow]
    total_value: DecimalOut = Field(description="Σ value over the components listed.")
