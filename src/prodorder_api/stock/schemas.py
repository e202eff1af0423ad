import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator
from typing_extensions import TypeAliasType

from prodorder_api.fields import (
    DecimalOut,
    LotCode,
    LotCodeOut,
    NonNegativeDecimal,
    NonZeroDecimal,
    PositiveDecimal,
    Reference,
    RequestModel,
    ResponseModel,
    Serial,
    Text,
)

# A named type, so the OpenAPI document has one enum `$ref` for generated clients.
MovementType = TypeAliasType(
    "MovementType",
    Literal[
        "receipt",
        "adjustment",
        "transfer_out",
        "transfer_in",
        "consumption",
        "output",
        "scrap",
        "return",
        "disassembly",
        "recovery",
    ],
)
Serials = list[Serial]


def _distinct(serials: list[str] | None) -> list[str] | None:
    if serials is not None and len(set(serials)) != len(serials):
        raise ValueError("serials must be distinct")
    return serials


class ReceiptCreate(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal
    location_id: uuid.UUID | None = Field(default=None, description="Default: `MAIN`.")
    unit_cost: NonNegativeDecimal | None = Field(
        default=None,
        description="Cost per unit; default the item's average cost, else its standard cost,"
        " else 0.",
    )
    lot_code: LotCode | None = Field(default=None, description="Required for lot-tracked items.")
    expiry_date: date | None = Field(default=None, description="Kept on the lot when it is new.")
    serials: Serials | None = Field(
        default=None, max_length=10_000, description="Serial-tracked items: one per unit."
    )
    reference: Reference | None = Field(default=None, description="e.g. the purchase order.")

    _distinct_serials = field_validator("serials")(_distinct)


class AdjustmentCreate(RequestModel):
    item_id: uuid.UUID
    quantity_delta: NonZeroDecimal = Field(description="Signed change: counted minus expected.")
    reason: Text = Field(min_length=1, examples=["cycle count"])
    location_id: uuid.UUID | None = Field(default=None, description="Default: `MAIN`.")
    lot_code: LotCode | None = Field(
        default=None,
        description="Lot-tracked items: required to add; when taking, lots are picked FEFO"
        " if absent.",
    )
    expiry_date: date | None = None
    serials: Serials | None = Field(default=None, max_length=10_000)
    reference: Reference | None = None

    _distinct_serials = field_validator("serials")(_distinct)


class TransferCreate(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    lot_code: LotCode | None = Field(default=None, description="Default: lots picked FEFO.")
    serials: Serials | None = Field(default=None, max_length=10_000)
    reference: Reference | None = None

    _distinct_serials = field_validator("serials")(_distinct)


class MovementOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    location_id: uuid.UUID
    lot_code: LotCodeOut
    quantity: DecimalOut = Field(description="Signed: positive in, negative out.")
    type: MovementType
    unit_cost: DecimalOut
    value: DecimalOut = Field(description="Signed inventory value: quantity × unit cost, rounded.")
    production_order_id: uuid.UUID | None
    unbuild_order_id: uuid.UUID | None = Field(
        default=None, description="The unbuild order of a `disassembly` or `recovery` movement."
    )
    purchase_order_id: uuid.UUID | None = Field(
        default=None, description="The purchase order a `receipt` was received against."
    )
    reference: str | None
    reason: str | None
    created_at: datetime


class StockOperation(ResponseModel):
    """What one receipt, adjustment or transfer wrote to the ledger."""

    movements: list[MovementOut]


class BalanceOut(ResponseModel):
    item_id: uuid.UUID
    location_id: uuid.UUID
    lot_code: LotCodeOut
    on_hand: DecimalOut
    reserved: DecimalOut
    available: DecimalOut = Field(description="on_hand − reserved")
    updated_at: datetime
