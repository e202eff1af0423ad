import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator
from typing_extensions import TypeAliasType

from prodorder_api.fields import (
    DecimalOut,
    LotCode,
    Name,
    NonNegativeDecimal,
    PositiveDecimal,
    Reference,
    RequestModel,
    ResponseModel,
    Serial,
)
from prodorder_api.metadata import Metadata, metadata_field, metadata_out

# Named types, so the OpenAPI document has one enum `$ref` each for generated clients.
PurchaseOrderStatus = TypeAliasType("PurchaseOrderStatus", Literal["open", "received", "cancelled"])
PurchaseOrderAction = TypeAliasType("PurchaseOrderAction", Literal["receive", "cancel"])
MAX_LINES = 1_000


def format_number(number: int) -> str:
    return f"PO-{number:06d}"


class PurchaseLineIn(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal
    unit_cost: NonNegativeDecimal = Field(
        description="Price per unit: what each receipt of the line is valued at, so it "
        "moves the item's moving-average cost."
    )
    due_date: date = Field(description="When the supplier is to deliver; MRP counts it then.")


class PurchaseOrderCreate(RequestModel):
    supplier: Name = Field(description="Who the goods are bought from.", examples=["Beech & Co"])
    reference: Reference | None = Field(
        default=None, description="Your own key, e.g. the supplier's order confirmation."
    )
    lines: list[PurchaseLineIn] = Field(min_length=1, max_length=MAX_LINES)
    metadata: Metadata = metadata_field()


class PurchaseOrderUpdate(RequestModel):
    """Only the fields sent change, in any status: `reference` (`null` removes it) and
    `metadata`, which merges. Lines, supplier and quantities are the order's terms."""

    reference: Reference | None = None
    metadata: Metadata | None = None


class PurchaseReceiptLine(RequestModel):
    line_id: uuid.UUID = Field(description="A line of this purchase order (`lines[].id`).")
    quantity: PositiveDecimal = Field(
        description="What arrived; more than is still open is allowed (over-delivery)."
    )
    lot_code: LotCode | None = Field(default=None, description="Required for lot-tracked items.")
    expiry_date: date | None = Field(default=None, description="Kept on the lot when it is new.")
    serials: list[Serial] | None = Field(
        default=None, max_length=10_000, description="Serial-tracked items: one per unit."
    )
    location_id: uuid.UUID | None = Field(default=None, description="Default: `MAIN`.")

    @field_validator("serials")
    @classmethod
    def _distinct(cls, serials: list[str] | None) -> list[str] | None:
        if serials is not None and len(set(serials)) != len(serials):
            raise ValueError("serials must be distinct")
        return serials


class PurchaseReceiptCreate(RequestModel):
    lines: list[PurchaseReceiptLine] = Field(min_length=1, max_length=MAX_LINES)


class PurchaseLineOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    quantity: DecimalOut
    unit_cost: DecimalOut
    due_date: date
    received_quantity: DecimalOut = Field(description="Σ received so far; may pass `quantity`.")
    remaining_quantity: DecimalOut = Field(
        description="Still to come: quantity − received, never below 0 (0 once cancelled)."
    )


class PurchaseOrderOut(ResponseModel):
    id: uuid.UUID
    number: str = Field(examples=["PO-000001"])
    status: PurchaseOrderStatus = Field(
        description="`open` until every line has received its quantity (then `received`) "
        "or it is cancelled."
    )
    allowed_actions: list[PurchaseOrderAction] = Field(
        description="What the current status permits."
    )
    supplier: str | None = Field(
        description="Null on an order a plan's `firm` made for items without a `default_supplier`."
    )
    reference: str | None
    production_plan_id: uuid.UUID | None = Field(
        description="The production plan whose `firm` created the order; null otherwise."
    )
    lines: list[PurchaseLineOut]
    metadata: Metadata = metadata_out()
    version: int
    created_at: datetime
    updated_at: datetime
    received_at: datetime | None
    cancelled_at: datetime | None


class IncomingSupply(ResponseModel):
    """An open purchase-order line's quantity still to come, on its due date."""

    purchase_order_id: uuid.UUID
    line_id: uuid.UUID
    due_date: date
    quantity: DecimalOut = Field(description="quantity − received_quantity, > 0.")
