"""Production orders in the database: load, lock, number and list them."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Select, bindparam, inspect, select
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from prodorder_api import db, metadata
from prodorder_api.boms import service as boms
from prodorder_api.orders.models import (
    OrderEvent,
    OrderOperation,
    OrderRequirement,
    OrderReservation,
    ProductionOrder,
)
from prodorder_api.pagination import PageParams, paginate

Child = Literal["requirements", "reservations", "operations", "history"]
CHILDREN: tuple[Child, ...] = ("requirements", "reservations", "operations", "history")

# An order with its requirements joined (a second joined collection would multiply the
# rows); every other collection by its own prebuilt SELECT (``load_children``), handed
# to the order with ``set_committed_value``: ``selectinload`` built its IN query anew
# each time, ~0.4 ms of CPU per collection against ~0.13 ms for a plain SELECT.
_BY_ID = (
    select(ProductionOrder)
    .where(ProductionOrder.id == bindparam("order_id"))
    .options(joinedload(ProductionOrder.requirements))
    .execution_options(populate_existing=True)
)
# The order alone, locked for an action. Its children must not be read by the
# statement that takes the lock: one that waited for the lock sees the order row as
# the action before it left it, but every other row as it was when the statement began
# (PostgreSQL's READ COMMITTED). Requirements joined to the lock, as they once were,
# lost all but a few of twelve racing consumptions (tests/test_order_races.py).
_LOCK = (
    select(ProductionOrder)
    .where(ProductionOrder.id == bindparam("order_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_CHILD_ROWS: dict[str, Select[Any]] = {
    name: select(model)
    .where(model.order_id == bindparam("order_id"))
    .order_by(*order_by)
    .execution_options(populate_existing=True)
    for name, model, order_by in (
        ("requirements", OrderRequirement, (OrderRequirement.position, OrderRequirement.id)),
        ("reservations", OrderReservation, (OrderReservation.id,)),
        ("operations", OrderOperation, (OrderOperation.sequence,)),
        ("history", OrderEvent, (OrderEvent.id,)),
    )
}


# Requirements and reservations in one statement: each reservation is of a
# requirement's component (``materials.reserve`` reserves only open needs), so joined
# on the item, every reservation comes with a requirement.
_REQUIREMENTS_WITH_RESERVATIONS = (
    select(OrderRequirement, OrderReservation)
    .outerjoin(
        OrderReservation,
        (OrderReservation.order_id == OrderRequirement.order_id)
        & (OrderReservation.item_id == OrderRequirement.component_item_id),
    )
    .where(OrderRequirement.order_id == bindparam("order_id"))
    .order_by(OrderRequirement.position, OrderRequirement.id, OrderReservation.id)
    .execution_options(populate_existing=True)
)


def _load_requirements_with_reservations(session: Session, order: ProductionOrder) -> None:
    requirements: dict[uuid.UUID, OrderRequirement] = {}
    reservations: dict[uuid.UUID, OrderReservation] = {}
    for requirement, reservation in session.execute(
        _REQUIREMENTS_WITH_RESERVATIONS, {"order_id": order.id}
    ):
        requirements.setdefault(requirement.id, requirement)
        if reservation is not None:
            reservations.setdefault(reservation.id, reservation)
    set_committed_value(order, "requirements", list(requirements.values()))
    set_committed_value(order, "reservations", list(reservations.values()))


async def load(
    session: AsyncSession, order_id: uuid.UUID, children: Sequence[Child] = CHILDREN
) -> ProductionOrder | None:
    """The order with ``children`` loaded, or None."""
    order = (await session.scalars(_BY_ID, {"order_id": order_id})).unique().one_or_none()
    if order is not None and children:
        await session.run_sync(load_children, order, children)
    return order


async def lock(
    session: AsyncSession, order_id: uuid.UUID, children: Sequence[Child]
) -> ProductionOrder | None:
    """The order locked for an action (on SQLite the writer holds the database
    already), then its ``children`` read, or None."""
    order = await session.scalar(_LOCK, {"order_id": order_id})
    if order is not None and children:
        await session.run_sync(load_children, order, children)
    return order


def load_children(
    session: Session, order: ProductionOrder, children: Sequence[Child] = CHILDREN
) -> None:
    """Load those of the order's collections that are not loaded yet (sync: also
    called while the request's events are rendered, inside ``run_sync``).

    An order's operations are its BOM's, copied when it was made, and no route adds
    any: an order of a used BOM known to have none has none (a statement less).
    """
    missing = [name for name in children if name in inspect(order).unloaded]
    if "operations" in missing and order.bom_id in boms.used_without(session, "operations"):
        missing.remove("operations")
        set_committed_value(order, "operations", [])
    if missing and (session.new or session.dirty or session.deleted):
        session.flush()  # a history entry ``record`` added is among the rows read
    if "requirements" in missing and "reservations" in missing:
        _load_requirements_with_reservations(session, order)
        missing = [name for name in missing if name not in ("requirements", "reservations")]
    for name in missing:
        rows = session.scalars(_CHILD_ROWS[name], {"order_id": order.id}).all()
        set_committed_value(order, name, rows)


ORDER_NUMBERS = DbSequence("production_order_number_seq")


async def next_numbers(session: AsyncSession, count: int) -> list[int]:
    """``count`` new order numbers, unique and increasing (``db.next_numbers``)."""
    return await db.next_numbers(session, ORDER_NUMBERS, ProductionOrder.number, count)


# A list page's columns, as rows rather than ORM objects: loading 51 orders of every
# column into the session took most of a page's CPU.
_SUMMARY = select(
    *(
        ProductionOrder.__table__.c[name]
        for name in (
            "id", "number", "status", "item_id", "quantity", "bom_id", "produced_quantity",
            "scrapped_quantity", "due_date", "planned_start", "reference", "priority",
            "production_plan_id", "demand_source", "external_order_id", "external_line_id",
            "customer_ref", "version", "created_at", "updated_at",
        )
    ),
    ProductionOrder.meta,
)  # fmt: skip


async def list_orders(
    session: AsyncSession,
    params: PageParams,
    statuses: Sequence[str] = (),
    item_id: uuid.UUID | None = None,
    reference: str | None = None,
    due_before: date | None = None,
    due_after: date | None = None,
    updated_after: datetime | None = None,
    production_plan_id: uuid.UUID | None = None,
    external_order_id: str | None = None,
    meta: dict[str, str] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of orders in id order, as rows of ``SUMMARY`` (what a list shows); each
    filter given narrows it (all: AND)."""
    stmt = _SUMMARY.where(await metadata.matching(session, ProductionOrder.meta, meta or {}))
    if external_order_id is not None:
        stmt = stmt.where(ProductionOrder.external_order_id == external_order_id)
    if production_plan_id is not None:
        stmt = stmt.where(ProductionOrder.production_plan_id == production_plan_id)
    if statuses:
        stmt = stmt.where(ProductionOrder.status.in_(statuses))
    if item_id is not None:
        stmt = stmt.where(ProductionOrder.item_id == item_id)
    if reference is not None:
        stmt = stmt.where(ProductionOrder.reference == reference)
    if due_before is not None:
        stmt = stmt.where(ProductionOrder.due_date < due_before)
    if due_after is not None:
        stmt = stmt.where(ProductionOrder.due_date > due_after)
    if updated_after is not None:
        stmt = stmt.where(ProductionOrder.updated_at > updated_after)
    return await paginate(session, stmt, ProductionOrder.id, params)
