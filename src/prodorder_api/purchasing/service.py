"""Purchase orders: place, receive in parts, cancel, read.

A receipt locks the purchase order first (``repository.load(for_update=True)``), then
reads its lines, then hands its moves to the one stock function (``ledger.apply``,
which locks items, then balances): one lock order, and no receipt reads a line's
``received_quantity`` that another is still changing. ``states.check`` guards every
action from the one state table.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api import metadata
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import utcnow
from prodorder_api.errors import Conflict, NotFound, ValidationFailed
from prodorder_api.ids import new_id, parse_id
from prodorder_api.items import service as items
from prodorder_api.locations import service as locations
from prodorder_api.locations.models import Location
from prodorder_api.money import ZERO
from prodorder_api.pagination import PageParams
from prodorder_api.purchasing import events, repository, states
from prodorder_api.purchasing.models import PurchaseOrder, PurchaseOrderLine
from prodorder_api.purchasing.schemas import (
    PurchaseOrderCreate,
    PurchaseOrderUpdate,
    PurchaseReceiptCreate,
    format_number,
)
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT


@dataclass(frozen=True)
class NewLine:
    item_id: uuid.UUID
    quantity: Decimal
    unit_cost: Decimal
    due_date: date


@dataclass(frozen=True)
class NewPurchaseOrder:
    """An open purchase order whose items are known to exist."""

    supplier: str | None
    lines: Sequence[NewLine]
    reference: str | None = None
    production_plan_id: uuid.UUID | None = None
    meta: dict[str, str] = field(default_factory=dict)


async def create(session: AsyncSession, data: PurchaseOrderCreate) -> PurchaseOrder:
    await items.check_lines(session, [line.item_id for line in data.lines])
    new = NewPurchaseOrder(
        supplier=data.supplier,
        reference=data.reference,
        lines=[NewLine(li.item_id, li.quantity, li.unit_cost, li.due_date) for li in data.lines],
        meta=metadata.created(data.metadata),
    )
    [order] = await place(session, [new])
    return order


async def place(
    session: AsyncSession, new_orders: Sequence[NewPurchaseOrder]
) -> list[PurchaseOrder]:
    """Open purchase orders: numbers, lines, one flush, a ``created`` event each.
    ``create`` places one; firming a plan's purchases places one per supplier."""
    numbers = await repository.next_numbers(session, len(new_orders))
    now = utcnow()
    orders = [
        PurchaseOrder(
            id=new_id(),
            number=number,
            status="open",
            supplier=new.supplier,
            reference=new.reference,
            production_plan_id=new.production_plan_id,
            meta=dict(new.meta),
            version=1,
            created_at=now,
            updated_at=now,
            lines=[
                PurchaseOrderLine(
                    id=new_id(),
                    position=position,
                    item_id=line.item_id,
                    quantity=line.quantity,
                    unit_cost=line.unit_cost,
                    due_date=line.due_date,
                    received_quantity=ZERO,
                )
                for position, line in enumerate(new.lines)
            ],
        )
        for new, number in zip(new_orders, numbers, strict=True)
    ]
    session.add_all(orders)
    await session.flush()
    for order in orders:
        events.emit(order, "created")
    return orders


async def get(session: AsyncSession, po_id: str) -> PurchaseOrder:
    """The purchase order with its lines; 404 ``not_found`` when there is none."""
    return await _found(session, po_id, for_update=False)


async def _found(session: AsyncSession, po_id: str, *, for_update: bool) -> PurchaseOrder:
    parsed = parse_id(po_id)
    order = await repository.load(session, parsed, for_update=for_update) if parsed else None
    if order is None:
        raise NotFound(f"no purchase order with id {po_id}")
    return order


async def for_action(
    session: AsyncSession, po_id: str, action: states.Action, if_match: Precondition = ANY
) -> PurchaseOrder:
    """Lock the order (and its lines), check ``If-Match``, then that its status
    allows ``action``."""
    order = await _found(session, po_id, for_update=True)
    if_match.check(order.version)
    states.check(order.status, action)
    return order


async def receive(
    session: AsyncSession, po_id: str, data: PurchaseReceiptCreate, if_match: Precondition = ANY
) -> PurchaseOrder:
    """Goods in: a ``receipt`` movement per line received, at the line's unit cost, so
    the moving average moves by exactly what was paid. The order is ``received`` once
    every line has received at least its quantity."""
    order = await for_action(session, po_id, "receive", if_match)
    lines = {line.id: line for line in order.lines}
    number = format_number(order.number)
    moves = []
    for index, received in enumerate(data.lines):
        line = lines.get(received.line_id)
        if line is None:
            raise ValidationFailed(
                ["body", "lines", index, "line_id"], f"{number} has no line {received.line_id}"
            )
        moves.append(
            Move(
                item_id=line.item_id,
                location_id=await _location(session, received.location_id, index),
                quantity=received.quantity,
                type="receipt",
                lot_code=received.lot_code or NO_LOT,
                unit_cost=line.unit_cost,
                expiry_date=received.expiry_date,
                serials=tuple(received.serials or ()),
                purchase_order_id=order.id,
                reference=number,
            )
        )
    await ledger.apply(session, moves)
    for received in data.lines:
        lines[received.line_id].received_quantity += received.quantity
    now = utcnow()
    if all(line.received_quantity >= line.quantity for line in order.lines):
        order.status = "received"
        order.received_at = now
    _touch(order, now)
    events.emit(order, "received")
    return order


async def _location(session: AsyncSession, location_id: uuid.UUID | None, index: int) -> uuid.UUID:
    if location_id is not None and await session.get(Location, location_id) is None:
        raise ValidationFailed(
            ["body", "lines", index, "location_id"], f"no location with id {location_id}"
        )
    return await locations.resolve(session, location_id, "location_id")


async def cancel(session: AsyncSession, po_id: str, if_match: Precondition = ANY) -> PurchaseOrder:
    """Only while nothing has been received: what arrived is in the books (409)."""
    order = await for_action(session, po_id, "cancel", if_match)
    if any(line.received_quantity > 0 for line in order.lines):
        raise Conflict(f"{format_number(order.number)} has received goods: it cannot be cancelled")
    now = utcnow()
    order.status = "cancelled"
    order.cancelled_at = now
    _touch(order, now)
    events.emit(order, "cancelled")
    return order


async def update(
    session: AsyncSession, po_id: str, data: PurchaseOrderUpdate, if_match: Precondition = ANY
) -> PurchaseOrder:
    order = await _found(session, po_id, for_update=True)
    if_match.check(order.version)
    changes = data.model_dump(exclude_unset=True)
    relabelled = metadata.patch(order, changes)
    changed = "reference" in changes and changes["reference"] != order.reference
    if changed:
        order.reference = changes["reference"]
    if changed or relabelled:
        _touch(order, utcnow())
        events.emit(order, "updated")
    return order


def _touch(order: PurchaseOrder, now: datetime) -> None:
    order.version += 1
    order.updated_at = now


async def list_orders(
    session: AsyncSession,
    params: PageParams,
    statuses: Sequence[str],
    item_id: uuid.UUID | None,
    supplier: str | None,
    meta: dict[str, str],
) -> tuple[list[PurchaseOrder], str | None]:
    return await repository.list_orders(session, params, statuses, item_id, supplier, meta)
