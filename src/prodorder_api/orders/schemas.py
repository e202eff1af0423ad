import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.boms.schemas import Consumption
from prodorder_api.fields import (
    DecimalOut,
    LotCode,
    LotCodeOut,
    NonNegativeDecimal,
    PositiveDecimal,
    Reference,
    RequestModel,
    ResponseModel,
    Serial,
    Text,
)
from prodorder_api.metadata import Metadata, metadata_field, metadata_out
from prodorder_api.orders.states import Action, Status
from prodorder_api.purchasing.schemas import IncomingSupply

# Named types: one `$ref` each in the OpenAPI document, so generated clients get
# `OrderStatus` rather than `OrderOutStatus`, `OrderSummaryStatus`, ...
OrderStatus = TypeAliasType("OrderStatus", Status)
OrderAction = TypeAliasType("OrderAction", Action)
OperationStatus = TypeAliasType("OperationStatus", Literal["pending", "in_progress", "done"])
# What an operation's status permits (operations.OPERATION_ALLOWED): in a 409
# `invalid_transition` on an operation's action, beside the order's `OrderAction`s.
OperationAction = TypeAliasType("OperationAction", Literal["start", "time", "complete"])
# Every `action` an order's history records (`service.record`, and `create`).
HistoryAction = TypeAliasType(
    "HistoryAction",
    Literal[
        "create",
        "update",
        "release",
        "reserve",
        "unrelease",
        "start",
        "consume",
        "output",
        "scrap",
        "complete",
        "cancel",
        "hold",
        "resume",
        "split",
        "return",
        "operation_start",
        "operation_time",
        "operation_complete",
    ],
)
AvailabilityStatus = TypeAliasType(
    "AvailabilityStatus", Literal["available", "partial", "unavailable"]
)
HistoryDetails = TypeAliasType("HistoryDetails", dict[str, Any])


def format_number(number: int) -> str:
    return f"MO-{number:06d}"


class Demand(RequestModel):
    """The demand an order is made for: a webshop's or ERP's order, and its line."""

    source: Reference | None = Field(
        default=None, description="The system it comes from.", examples=["shop"]
    )
    external_order_id: Reference = Field(
        description="That system's order id; `GET /v1/demands/{external_order_id}` rolls up"
        " every order carrying it.",
        examples=["1234"],
    )
    external_line_id: Reference | None = Field(default=None, description="Its line, if any.")
    customer_ref: Reference | None = Field(default=None, description="The customer, if any.")


class DemandOut(ResponseModel):
    source: str | None
    external_order_id: str
    external_line_id: str | None
    customer_ref: str | None


class OrderCreate(RequestModel):
    item_id: uuid.UUID = Field(description="The product to make.")
    quantity: PositiveDecimal
    bom_id: uuid.UUID | None = Field(default=None, description="Default: the item's default BOM.")
    location_id: uuid.UUID | None = Field(
        default=None, description="Where components are reserved and issued. Default: `MAIN`."
    )
    output_location_id: uuid.UUID | None = Field(
        default=None, description="Where finished goods are received. Default: `location_id`."
    )
    due_date: date | None = None
    planned_start: date | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    reference: Reference | None = Field(
        default=None, description="Your own key, e.g. the webshop order number; filterable."
    )
    notes: Text | None = None
    demand: Demand | None = Field(default=None, description="The demand it is made for.")
    metadata: Metadata = metadata_field()


class OrderUpdate(RequestModel):
    """`quantity` only while planned (requirements are recomputed); the rest until final.
    `demand` replaces the link (`null` removes it); `metadata` merges."""

    quantity: PositiveDecimal | None = None
    due_date: date | None = None
    planned_start: date | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    reference: Reference | None = None
    notes: Text | None = None
    demand: Demand | None = None
    metadata: Metadata | None = None


class MakeToOrderRequest(RequestModel):
    item_id: uuid.UUID = Field(description="The product ordered; it needs a default BOM.")
    quantity: PositiveDecimal
    due_date: date = Field(description="When the demand wants it.")
    demand: Demand
    sub_assemblies: bool = Field(
        default=True,
        description="Also make a planned order for every made component, at any depth,"
        " that free stock and open supply cannot cover.",
    )
    metadata: Metadata = metadata_field()


class ReleaseRequest(RequestModel):
    allow_shortage: bool = Field(
        default=False, description="Reserve what there is instead of refusing with 409."
    )


class ConsumptionLine(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal
    lot_code: LotCode | None = Field(default=None, description="Default: reserved lots, then FEFO.")
    serials: list[Serial] | None = Field(default=None, max_length=10_000)


class ConsumptionRequest(RequestModel):
    lines: list[ConsumptionLine] = Field(min_length=1, max_length=1000)


class OutputRequest(RequestModel):
    quantity: PositiveDecimal
    lot_code: LotCode | None = Field(default=None, description="Required for lot-tracked products.")
    expiry_date: date | None = None
    serials: list[Serial] | None = Field(
        default=None, max_length=10_000, description="Serial-tracked products: one per unit."
    )


class ScrapRequest(RequestModel):
    quantity: PositiveDecimal
    reason: Text = Field(min_length=1)


class CompleteRequest(RequestModel):
    output_quantity: NonNegativeDecimal | None = Field(
        default=None, description="Final output; default quantity − produced − scrapped (≥ 0)."
    )
    lot_code: LotCode | None = None
    expiry_date: date | None = None
    serials: list[Serial] | None = Field(default=None, max_length=10_000)
    backorder: bool = Field(
        default=False,
        description="When produced + scrapped stays below the quantity, make a planned "
        "order for the rest (`backorder_of` names this one; this one's `backorder_id` "
        "names it).",
    )


class HoldRequest(RequestModel):
    reason: Text = Field(min_length=1, description="Why the line stopped; kept in the history.")


class SplitRequest(RequestModel):
    quantity: PositiveDecimal = Field(
        description="Carved off into a new order; more than 0, less than the order's quantity."
    )


class ReturnLine(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal
    lot_code: LotCode | None = Field(
        default=None, description="Required for lot-tracked components: the lot going back."
    )


class ReturnRequest(RequestModel):
    lines: list[ReturnLine] = Field(min_length=1, max_length=1000)


class TimeBooking(RequestModel):
    minutes: PositiveDecimal = Field(description="Minutes worked, exact (e.g. 12.5).")
    quantity: NonNegativeDecimal | None = Field(
        default=None, description="Units finished in this operation, added to completed_quantity."
    )
    note: Text | None = None


class CancelRequest(RequestModel):
    reason: Text | None = None


class ReservationOut(ResponseModel):
    location_id: uuid.UUID
    lot_code: LotCodeOut
    quantity: DecimalOut


class RequirementOut(ResponseModel):
    component_item_id: uuid.UUID
    required_quantity: DecimalOut = Field(description="Scrap included.")
    reserved_quantity: DecimalOut
    consumed_quantity: DecimalOut
    consumption: Consumption
    in_bom: bool = Field(description="False for items issued from outside the BOM.")
    reservations: list[ReservationOut] = Field(description="Per location and lot.")


class OperationOut(ResponseModel):
    sequence: int
    name: str
    instructions: str | None
    work_center_id: uuid.UUID | None
    planned_minutes: DecimalOut
    actual_minutes: DecimalOut
    completed_quantity: DecimalOut
    status: OperationStatus
    started_at: datetime | None
    completed_at: datetime | None


class HistoryEntry(ResponseModel):
    action: HistoryAction
    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    details: HistoryDetails | None


class OrderOut(ResponseModel):
    id: uuid.UUID
    number: str = Field(examples=["MO-000001"])
    status: OrderStatus
    allowed_actions: list[OrderAction] = Field(description="What the current status permits.")
    item_id: uuid.UUID
    quantity: DecimalOut
    bom_id: uuid.UUID
    location_id: uuid.UUID
    output_location_id: uuid.UUID
    produced_quantity: DecimalOut
    scrapped_quantity: DecimalOut
    requirements: list[RequirementOut]
    operations: list[OperationOut]
    due_date: date | None
    planned_start: date | None
    released_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    reference: str | None
    priority: int
    notes: str | None
    demand: DemandOut | None = Field(description="The demand it is made for; null if none.")
    metadata: Metadata = metadata_out()
    production_plan_id: uuid.UUID | None = Field(
        description="The production plan whose `firm` created the order; null otherwise."
    )
    held_from: OrderStatus | None = Field(
        description="While `on_hold`: the status `resume` returns to; null otherwise."
    )
    split_from: uuid.UUID | None = Field(description="The order this one was split off.")
    backorder_of: uuid.UUID | None = Field(description="The order this one finishes.")
    backorder_id: uuid.UUID | None = Field(
        description="The planned order made for the rest when this one completed short."
    )
    material_cost: DecimalOut = Field(description="Σ value of the components consumed.")
    labour_cost: DecimalOut = Field(description="Σ value of the time booked on operations.")
    output_value: DecimalOut = Field(description="Cost relieved to finished goods so far.")
    scrap_value: DecimalOut = Field(description="Cost relieved to scrap and write-offs.")
    unit_cost: DecimalOut | None = Field(
        description="output_value ÷ produced_quantity: material and labour per unit."
    )
    version: int
    history: list[HistoryEntry]
    created_at: datetime
    updated_at: datetime


class OrderSummary(ResponseModel):
    """A list row: the order without requirements, operations and history."""

    id: uuid.UUID
    number: str
    status: OrderStatus
    item_id: uuid.UUID
    quantity: DecimalOut
    bom_id: uuid.UUID
    produced_quantity: DecimalOut
    scrapped_quantity: DecimalOut
    due_date: date | None
    planned_start: date | None
    reference: str | None
    priority: int
    production_plan_id: uuid.UUID | None
    demand: DemandOut | None
    metadata: Metadata = metadata_out()
    version: int
    created_at: datetime
    updated_at: datetime


class ComponentAvailability(ResponseModel):
    item_id: uuid.UUID
    required: DecimalOut = Field(description="Still needed: required − consumed − reserved.")
    reserved: DecimalOut = Field(description="Already held for this order.")
    available: DecimalOut = Field(description="Free stock at the order's location.")
    shortage: DecimalOut
    incoming: list[IncomingSupply] = Field(
        description="Open purchase-order lines of the component still to come, by due "
        "date: supply on its way, not yet in `available` (nor in `shortage`)."
    )


class Availability(ResponseModel):
    order_id: uuid.UUID
    status: AvailabilityStatus
    components: list[ComponentAvailability]


class OrderList(ResponseModel):
    data: list["OrderOut"] = Field(description="The orders made: the top order first.")


class SplitResult(ResponseModel):
    original: "OrderOut" = Field(description="The order split, less the quantity carved off.")
    new: "OrderOut" = Field(description="The new order, `split_from` the original.")
