import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import DecimalOut, Name, PositiveDecimal, RequestModel, ResponseModel

PlanStatus = TypeAliasType("PlanStatus", Literal["new", "proposed", "firmed"])
PegType = TypeAliasType("PegType", Literal["plan_line", "proposal", "production_order"])
ProposalKind = TypeAliasType("ProposalKind", Literal["production", "purchase"])
MAX_LINES = 10_000


class PlanLineIn(RequestModel):
    item_id: uuid.UUID = Field(description="The product (or bought item) needed.")
    quantity: PositiveDecimal
    due_date: date = Field(description="When it must be ready.")


class PlanCreate(RequestModel):
    name: Name | None = Field(default=None, examples=["Week 12 webshop demand"])
    lines: list[PlanLineIn] = Field(min_length=1, max_length=MAX_LINES)


class FirmRequest(RequestModel):
    purchases: bool = Field(
        default=False,
        description="Also turn the purchase proposals into open purchase orders, one per "
        "supplier (the item's `default_supplier`, or none).",
    )


class PlanLineOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    quantity: DecimalOut
    due_date: date


class PegOut(ResponseModel):
    """One demand a proposal serves, and how much of it."""

    type: PegType = Field(
        description="`plan_line`: a line of this plan (`lines[].id`); `proposal`: a "
        "production proposal of this run that needs the item on its `start_date`; "
        "`production_order`: an open order's requirement not yet consumed or reserved."
    )
    id: uuid.UUID = Field(description="The plan line's, proposal's or order's id.")
    quantity: DecimalOut = Field(description="The part of that demand this proposal covers.")


class ProposalOut(ResponseModel):
    id: uuid.UUID
    kind: ProposalKind = Field(
        description="`production` for items with a default BOM, `purchase` for bought ones."
    )
    item_id: uuid.UUID
    quantity: DecimalOut = Field(description="Net requirement of the day, lot-for-lot.")
    start_date: date = Field(description="`due_date` less the item's `lead_time_days`.")
    due_date: date = Field(description="When the demands it serves need it.")
    level: int = Field(
        description="The item's low-level code: the deepest level at which it occurs below "
        "the plan's products (0 = a product only ever planned directly)."
    )
    pegged_to: list[PegOut] = Field(
        description="The demands it serves; their quantities add up to `quantity`."
    )
    production_order_id: uuid.UUID | None = Field(
        description="The planned order `firm` created from it; null until then."
    )
    purchase_order_id: uuid.UUID | None = Field(
        description="The purchase order `firm` with `purchases` put it on (a line of its "
        "own); null until then."
    )


class PlanSummary(ResponseModel):
    """A list row: the plan without its lines and proposals."""

    id: uuid.UUID
    name: str | None
    status: PlanStatus = Field(
        description="`new`: never run; `proposed`: the last run's proposals are stored; "
        "`firmed`: their production proposals are planned orders (and, when firmed with "
        "`purchases`, their purchase proposals lines of open purchase orders)."
    )
    run_at: datetime | None = Field(description="When the last run was.")
    firmed_at: datetime | None = Field(description="When `firm` last created orders.")
    version: int
    created_at: datetime
    updated_at: datetime


class PlanOut(PlanSummary):
    """Rendered by ``planning.presenter``; ``proposals`` must stay the last field."""

    lines: list[PlanLineOut]
    proposals: list[ProposalOut] = Field(
        description="The last run's, by level, item and due date; empty before the first run."
    )
