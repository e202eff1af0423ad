import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import DecimalOut, RequestModel, ResponseModel
from prodorder_api.metadata import Metadata, metadata_out
from prodorder_api.orders.schemas import OrderStatus

TraceDirection = TypeAliasType("TraceDirection", Literal["backward", "forward"])
Direction = TraceDirection


class LotOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    code: str
    expiry_date: date | None
    created_at: datetime
    on_hand: DecimalOut = Field(description="Σ on hand of the lot over all locations.")
    metadata: Metadata = metadata_out()


class LotUpdate(RequestModel):
    """A lot's quantities and dates are the ledger's; only its metadata is yours."""

    metadata: Metadata


class TraceRow(ResponseModel):
    lot_id: uuid.UUID
    item_id: uuid.UUID
    code: str
    expiry_date: date | None
    level: int = Field(description="1: directly linked to the traced lot; 2: one step further.")
    via_lot_id: uuid.UUID = Field(
        description="The lot one level closer to the traced lot that this one is linked to "
        "(the traced lot itself at level 1)."
    )
    production_order_id: uuid.UUID | None = Field(
        description="The order that links them: forward, the order that made this lot; "
        "backward, the order that consumed it. Null for a link through an unbuild."
    )
    production_order_number: str | None = Field(examples=["MO-000042"])
    production_order_status: OrderStatus | None
    reference: str | None = Field(description="The order's `reference` (e.g. webshop order).")
    unbuild_order_id: uuid.UUID | None = Field(
        description="The unbuild that links them: forward, the unbuild that took the traced "
        "side apart into this lot; backward, the unbuild this lot was recovered from."
    )


class LotTrace(ResponseModel):
    lot: LotOut
    direction: TraceDirection
    data: list[TraceRow] = Field(
        description="One row per link, by level, then order number: the lots found over all "
        "levels, each with the order that links it."
    )
