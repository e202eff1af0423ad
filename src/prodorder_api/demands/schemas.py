import uuid
from datetime import date
from typing import Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import DecimalOut, ResponseModel
from prodorder_api.orders.schemas import OrderStatus

# A named type, so the OpenAPI document has one enum `$ref` for generated clients.
DemandStatus = TypeAliasType(
    "DemandStatus",
    Literal["planned", "in_production", "partially_completed", "completed", "cancelled"],
)


class DemandOrder(ResponseModel):
    id: uuid.UUID
    number: str = Field(examples=["MO-000001"])
    status: OrderStatus
    item_id: uuid.UUID
    quantity: DecimalOut
    produced_quantity: DecimalOut
    due_date: date | None


class DemandRollup(ResponseModel):
    external_order_id: str
    status: DemandStatus = Field(
        description="Over the orders not cancelled: `planned` none started, `in_production`"
        " some started and none completed, `partially_completed` some completed but not all,"
        " `completed` all completed; `cancelled` when every order is."
    )
    quantity: DecimalOut = Field(
        description="Σ quantity of the orders not cancelled that make what was ordered (not"
        " the sub-assembly orders: those whose product another of its orders consumes)."
    )
    produced_quantity: DecimalOut = Field(description="Σ produced of those same orders.")
    expected_completion: date | None = Field(
        description="Completed: the day the last order completed. Otherwise the latest"
        " `due_date` of the open orders (null if none has one, or all are cancelled)."
    )
    orders: list[DemandOrder] = Field(description="Every order carrying it, cancelled ones too.")
