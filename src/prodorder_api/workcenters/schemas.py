import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import Field

from prodorder_api.fields import (
    Code,
    DecimalOut,
    Name,
    NonNegativeDecimal,
    PositiveDecimal,
    RequestModel,
    ResponseModel,
)


class WorkCenterCreate(RequestModel):
    code: Code = Field(examples=["ASSEMBLY"])
    name: Name = Field(examples=["Assembly bench"])
    cost_per_hour: NonNegativeDecimal = Field(
        default=Decimal(0), description="Labour rate; time booked is valued at it."
    )
    minutes_per_day: PositiveDecimal = Field(
        default=Decimal(480), description="Capacity per day, for the capacity report."
    )


class WorkCenterUpdate(RequestModel):
    """Only the fields sent change. A new rate applies to time booked from now on."""

    code: Code | None = None
    name: Name | None = None
    cost_per_hour: NonNegativeDecimal | None = None
    minutes_per_day: PositiveDecimal | None = None


class WorkCenterOut(ResponseModel):
    id: uuid.UUID
    code: str
    name: str
    cost_per_hour: DecimalOut
    minutes_per_day: DecimalOut
    version: int
    created_at: datetime
    updated_at: datetime
