"""Production orders: create, read, change, and move through the lifecycle.

Each action locks the order row first (then items, then balances, inside the
stock function): one global lock order, so concurrent actions queue and never
deadlock. ``states.check`` guards every action from the one state table.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session, selectinload

from prodorder_api import metadata, metrics
from prodorder_api.boms import service as boms
from prodorder_api.boms.explosion import line_requirement
from prodorder_api.boms.models import Bom
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import utcnow
from prodorder_api.errors import Conflict, NotFound, ValidationFailed
from prodorder_api.ids import new_id, parse_id
from prodorder_api.items import service as items
from prodorder_api.locations import service as locations
from prodorder_api.money import ZERO, quantize
from prodorder_api.orders import events, materials, repository, states
from prodorder_api.orders.models import (
    OrderEvent,
    OrderOperation,
    OrderRequirement,
    ProductionOrder,
)
from prodorder_api.orders.repository import CHILDREN, Child
from prodorder_api.orders.schemas import (
    Availability,
    ComponentAvailability,
    Demand,
    OrderCreate,
    OrderUpdate,
)
from prodorder_api.purchasing import repository as purchases
from prodorder_api.stock import balances


async def get(
    session: AsyncSession, order_id: str, children: Sequence[Child] = CHILDREN
) -> ProductionOrder:
    """The order with ``children`` loaded; 404 ``not_found`` when there is none."""
    return await _found(session, order_id, children, repository.load)


async def lock(
    session: AsyncSession, order_id: str, children: Sequence[Child] = CHILDREN
) -> ProductionOrder:
    """``get``, the order locked for an action first (``repository.lock``)."""
    return await _found(session, order_id, children, repository.lock)


async def _found(
    session: AsyncSession,
    order_id: str,
    children: Sequence[Child],
    read: Callable[[AsyncSession, uuid.UUID, Sequence[Child]], Awaitable[ProductionOrder | None]],
) -> ProductionOrder:
    parsed = parse_id(order_id)
    order = await read(session, parsed, children) if parsed is not None else None
    if order is None:
        raise NotFound(f"no production order with id {order_id}")
    return order


async def for_action(
    session: AsyncSession,
    order_id: str,
    action: states.Action,
    if_match: Precondition = ANY,
    children: Sequence[Child] = ("requirements", "reservations", "operations"),
) -> ProductionOrder:
    """Lock the order, check its version against ``If-Match``, then that its status
    allows ``action``. Its ``children`` are loaded; the history is only appended to
    (``record``)."""
    order = await lock(session, order_id, children)
    if_match.check(order.version)
    states.check(order.status, action)
    return order


def record(order: ProductionOrder, action: str, **details: Any) -> None:
    """History entry, status change (``states.TARGET``), version bump and outbox
    event(s) for one action."""
    now = utcnow()
    to_status = states.target(order.status, action, order.held_from)
    entry = OrderEvent(
        order_id=order.id,
        action=action,
        from_status=order.status,
        to_status=to_status,
        details={k: v for k, v in details.items() if v is not None} or None,
        at=now,
    )
    if "history" in inspect(order).unloaded:
        object_session(order).add(entry)  # type: ignore[union-attr]
    else:
        order.history.append(entry)
    if to_status != order.status:
        metrics.note_transition(order, action, order.status, to_status)
        stamp = states.STAMPED.get(to_status)  # type: ignore[call-overload]
        if stamp and action != "resume":  # back where it was: its stamp stands
            setattr(order, stamp, now)
        order.status = to_status
    order.version += 1
    order.updated_at = now
    events.emit(order, action, **details)


async def create(session: AsyncSession, data: OrderCreate) -> ProductionOrder:
    # The item's default BOM proves the item exists (a foreign key), so the item is
    # only looked up when there is none, or a BOM is named: a statement and ~0.5 ms
    # of CPU less per order on the usual path. The errors come in the same order.
    bom = await boms.default_for(session, data.item_id) if data.bom_id is None else None
    if bom is None:
        product = await items.get_for_input(session, data.item_id, "item_id")
        if data.bom_id is None:
            raise ValidationFailed(["body", "bom_id"], "the item has no default BOM: give bom_id")
        bom = await _bom_for(session, product.id, data.bom_id)
    location = await locations.resolve(session, data.location_id, "location_id")
    output_location = (
        await locations.resolve(session, data.output_location_id, "output_location_id")
        if data.output_location_id
        else location
    )
    [order] = await place(
        session,
        [
            NewOrder(
                item_id=bom.item_id,
                bom=bom,
                quantity=data.quantity,
                location_id=location,
                output_location_id=output_location,
                due_date=data.due_date,
                planned_start=data.planned_start,
                priority=data.priority,
                reference=data.reference,
                notes=data.notes,
                demand=demand_columns(data.demand),
                meta=metadata.created(data.metadata),
            )
        ],
    )
    return order


@dataclass(frozen=True)
class NewOrder:
    """A planned order whose inputs are resolved and checked; ``bom`` has its lines and
    operations loaded."""

    item_id: uuid.UUID
    bom: Bom
    quantity: Decimal
    location_id: uuid.UUID
    output_location_id: uuid.UUID
    due_date: date | None = None
    planned_start: date | None = None
    priority: int = 0
    reference: str | None = None
    notes: str | None = None
    production_plan_id: uuid.UUID | None = None
    # The columns of its demand link (``demand_columns``) and its metadata.
    demand: dict[str, str | None] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


DEMAND_COLUMNS = ("demand_source", "external_order_id", "external_line_id", "customer_ref")


def demand_columns(demand: Demand | None) -> dict[str, str | None]:
    """A demand link as the order's columns; all None without one."""
    if demand is None:
        return dict.fromkeys(DEMAND_COLUMNS)
    return {
        "demand_source": demand.source,
        "external_order_id": demand.external_order_id,
        "external_line_id": demand.external_line_id,
        "customer_ref": demand.customer_ref,
    }


async def place(session: AsyncSession, new_orders: Sequence[NewOrder]) -> list[ProductionOrder]:
    """Create planned orders: numbers, requirements, operations, history, one flush.

    ``create`` places one; firming a production plan places many at once (a fixed
    number of statements however many orders).
    """
    numbers = await repository.next_numbers(session, len(new_orders))
    now = utcnow()
    orders = [
        ProductionOrder(
            id=new_id(),
            number=number,
            status="planned",
            item_id=new.item_id,
            bom_id=new.bom.id,
            quantity=new.quantity,
            location_id=new.location_id,
            output_location_id=new.output_location_id,
            due_date=new.due_date,
            planned_start=new.planned_start,
            priority=new.priority,
            reference=new.reference,
            notes=new.notes,
            production_plan_id=new.production_plan_id,
            **new.demand,
            meta=new.meta,
            requirements=_requirements(new.bom, new.quantity),
            operations=_operations(new.bom, new.quantity),
            reservations=[],
            labour=[],
            history=[OrderEvent(action="create", from_status=None, to_status="planned", at=now)],
        )
        for new, number in zip(new_orders, numbers, strict=True)
    ]
    await boms.mark_used(session, *{new.bom.id: new.bom for new in new_orders}.values())
    session.add_all(orders)
    await session.flush()
    for order in orders:
        events.emit(order, "create")
    return orders


async def bom_of(session: AsyncSession, order: ProductionOrder) -> Bom:
    """The order's BOM, with its lines and operations."""
    return await _bom_for(session, order.item_id, order.bom_id)


async def _bom_for(session: AsyncSession, item_id: uuid.UUID, bom_id: uuid.UUID) -> Bom:
    """The named BOM, with its lines and operations, which must make the item."""
    bom = await session.scalar(
        select(Bom)
        .where(Bom.id == bom_id)
        .options(selectinload(Bom.lines), selectinload(Bom.operations))
    )
    if bom is None:
        raise ValidationFailed(["body", "bom_id"], f"no BOM with id {bom_id}")
    if bom.item_id != item_id:
        raise ValidationFailed(["body", "bom_id"], "the BOM makes another item")
    return bom


def _requirements(bom: Bom, quantity: Decimal) -> list[OrderRequirement]:
    return [
        OrderRequirement(
            position=line.position,
            component_item_id=line.component_item_id,
            required_quantity=line_requirement(quantity, line, bom.output_quantity),
            consumed_quantity=ZERO,
            consumption=line.consumption,
            in_bom=True,
        )
        for line in bom.lines
    ]


def _operations(bom: Bom, quantity: Decimal) -> list[OrderOperation]:
    """planned minutes = setup + run × order quantity ÷ output quantity."""
    return [
        OrderOperation(
            sequence=op.sequence,
            name=op.name,
            instructions=op.instructions,
            work_center_id=op.work_center_id,
            planned_minutes=quantize(
                op.setup_minutes + op.run_minutes * quantity / bom.output_quantity
            ),
            actual_minutes=ZERO,
            completed_quantity=ZERO,
            status="pending",
        )
        for op in bom.operations
    ]


async def update(
    session: AsyncSession, order_id: str, data: OrderUpdate, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "update", if_match)
    changes = data.model_dump(exclude_unset=True)
    if "priority" in changes and changes["priority"] is None:
        raise ValidationFailed(["body", "priority"], "may not be null")
    if "quantity" in changes:
        if changes["quantity"] is None:
            raise ValidationFailed(["body", "quantity"], "may not be null")
        if order.status != "planned" and changes["quantity"] != order.quantity:
            raise Conflict(f"quantity can change only while planned; the order is {order.status}")
        if changes["quantity"] != order.quantity:
            await resize(session, order, changes.pop("quantity"))
            changes["quantity"] = order.quantity
    if "demand" in changes:
        demand = changes.pop("demand")
        for name, value in demand_columns(data.demand if demand else None).items():
            if getattr(order, name) != value:
                changes[name] = value
    relabelled = metadata.patch(order, changes)
    if not changes and not relabelled:
        return order
    for name, value in changes.items():
        setattr(order, name, value)
    record(order, "update", changes=sorted([*changes, *(["metadata"] * relabelled)]))
    return order


async def resize(session: AsyncSession, order: ProductionOrder, quantity: Decimal) -> Bom:
    """A new quantity, with the requirements and planned minutes its BOM gives for it;
    returns the BOM (lines and operations loaded)."""
    bom = await bom_of(session, order)
    order.quantity = quantity
    fresh = {r.component_item_id: r for r in _requirements(bom, quantity)}
    for requirement in order.requirements:
        if requirement.component_item_id in fresh:
            requirement.required_quantity = fresh[requirement.component_item_id].required_quantity
    for operation, planned in zip(order.operations, _operations(bom, quantity), strict=False):
        operation.planned_minutes = planned.planned_minutes
    return bom


async def availability(session: AsyncSession, order_id: str) -> Availability:
    order = await get(session, order_id)
    states.check(order.status, "availability")
    reserved = materials.reserved_by_item(order)
    ids = [r.component_item_id for r in order.requirements]
    free = await balances.free_stock(session, ids, order.location_id)
    incoming = await purchases.incoming_by_item(session, ids)
    components = []
    for requirement in order.requirements:
        need = materials.open_need(order, requirement)
        available = free[requirement.component_item_id].total
        components.append(
            ComponentAvailability(
                item_id=requirement.component_item_id,
                required=need,
                reserved=reserved.get(requirement.component_item_id, ZERO),
                available=available,
                shortage=max(need - available, ZERO),
                incoming=incoming.get(requirement.component_item_id, []),
            )
        )
    short = [c for c in components if c.shortage > 0]
    status = "available"
    if short:
        status = "unavailable" if all(c.available == 0 for c in short) else "partial"
    return Availability(order_id=order.id, status=status, components=components)


async def release(
    session: AsyncSession, order_id: str, allow_shortage: bool, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(
        session, order_id, "release", if_match, children=("requirements", "reservations")
    )
    reserved = await materials.reserve(session, order, all_or_nothing=not allow_shortage)
    record(order, "release", reserved=str(reserved), allow_shortage=allow_shortage)
    return order


async def reserve(
    session: AsyncSession, order_id: str, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "reserve", if_match)
    reserved = await materials.reserve(session, order, all_or_nothing=False)
    record(order, "reserve", reserved=str(reserved))
    return order


async def unrelease(
    session: AsyncSession, order_id: str, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "unrelease", if_match)
    await materials.free_reservations(session, order)
    record(order, "unrelease")
    return order


async def start(
    session: AsyncSession, order_id: str, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "start", if_match, children=())
    record(order, "start")
    return order


async def cancel(
    session: AsyncSession, order_id: str, reason: str | None, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "cancel", if_match)
    touched = (
        order.produced_quantity
        or order.scrapped_quantity
        or any(r.consumed_quantity for r in order.requirements)
    )
    if touched:
        raise Conflict("components were consumed or output reported: complete the order instead")
    await materials.free_reservations(session, order)
    record(order, "cancel", reason=reason)
    return order
