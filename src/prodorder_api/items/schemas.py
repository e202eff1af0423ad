import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import (
    Code,
    DecimalOut,
    Name,
    NonNegativeDecimal,
    RequestModel,
    ResponseModel,
    Uom,
)
from prodorder_api.metadata import Metadata, metadata_field, metadata_out

# A named type, so the OpenAPI document has one enum `$ref` for generated clients.
Tracking = TypeAliasType("Tracking", Literal["none", "lot", "serial"])


class ItemCreate(RequestModel):
    sku: Code = Field(description="Your unique article number.", examples=["FRAME-01"])
    name: Name = Field(examples=["Bicycle frame"])
    uom: Uom = Field(default="pcs", description="Unit of measure.")
    tracking: Tracking = Field(
        default="none",
        description="`lot`: every unit belongs to a lot; `serial`: one serial per unit.",
    )
    standard_cost: NonNegativeDecimal | None = Field(
        default=None, description="Cost used while there is no moving average yet."
    )
    lead_time_days: int = Field(default=0, ge=0, le=3650)
    default_supplier: Name | None = Field(
        default=None,
        description="Who the item is bought from: a production plan's `firm` with "
        "`purchases` orders its purchase proposals from this supplier.",
    )
    metadata: Metadata = metadata_field()


class ItemUpdate(RequestModel):
    """Only the fields sent change.

    `tracking` can change only while the item has no stock history.
    """

    sku: Code | None = None
    name: Name | None = None
    uom: Uom | None = None
    tracking: Tracking | None = None
    standard_cost: NonNegativeDecimal | None = None
    lead_time_days: int | None = Field(default=None, ge=0, le=3650)
    default_supplier: Name | None = Field(default=None, description="`null` clears it.")
    metadata: Metadata | None = None


class ItemOut(ResponseModel):
    id: uuid.UUID
    sku: str
    name: str
    uom: str
    tracking: Tracking
    standard_cost: DecimalOut | None
    average_cost: DecimalOut | None = Field(
        description="Moving-average cost over receipts, kept by the service; null before the first."
    )
    lead_time_days: int
    default_supplier: str | None = Field(
        description="Who a plan's firmed purchases are ordered from."
    )
    metadata: Metadata = metadata_out()
    version: int
    created_at: datetime
    updated_at: datetime


class ItemStock(ResponseModel):
    item_id: uuid.UUID
    on_hand: DecimalOut
    reserved: DecimalOut
    available: DecimalOut = Field(description="on_hand − reserved")
    incoming: DecimalOut = Field(
        description="Still to come: open production orders' remaining output, and open "
        "purchase orders' lines not received yet (quantity − received, per line ≥ 0)."
    )
    average_cost: DecimalOut | None
    value: DecimalOut = Field(description="Inventory value of the on-hand stock.")
