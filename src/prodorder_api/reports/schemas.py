import uuid
from datetime import date

from pydantic import Field

from prodorder_api.fields import DecimalOut, ResponseModel


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
    status: str
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
