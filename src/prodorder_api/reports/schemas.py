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
