import uuid
from datetime import datetime

from pydantic import Field

from prodorder_api.fields import (
    DecimalOut,
    LotCode,
    LotCodeOut,
    PositiveDecimal,
    RequestModel,
    ResponseModel,
    Serial,
    Text,
)
from prodorder_api.stock.schemas import MovementOut


class UnbuildCreate(RequestModel):
    item_id: uuid.UUID = Field(description="The finished item to take apart.")
    quantity: PositiveDecimal
    production_order_id: uuid.UUID | None = Field(
        default=None,
        description="Reverse what this completed or running order actually consumed per unit "
        "produced (its lots, its by-products taken back out). Default: the item's default BOM.",
    )
    location_id: uuid.UUID | None = Field(
        default=None,
        description="Where the goods are taken from and the components go. Default: `MAIN`.",
    )
    lot_code: LotCode | None = Field(default=None, description="Required for lot-tracked goods.")
    serials: list[Serial] | None = Field(
        default=None, max_length=10_000, description="Serial-tracked goods: one per unit."
    )
    reason: Text | None = None


class UnbuildOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    quantity: DecimalOut
    production_order_id: uuid.UUID | None
    bom_id: uuid.UUID | None = Field(description="The BOM reversed, when no order was named.")
    location_id: uuid.UUID
    lot_code: LotCodeOut
    serials: list[str] | None
    reason: str | None
    value: DecimalOut = Field(
        description="What left stock (the goods at their average cost, and by-products): "
        "exactly Σ of the recovered components' values."
    )
    created_at: datetime
    movements: list[MovementOut] = Field(
        description="`disassembly` movements out (the goods, by-products), then `recovery` "
        "movements in (the components)."
    )
