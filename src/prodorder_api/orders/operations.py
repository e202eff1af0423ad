"""Shop-floor progress on an order's operations, and the labour booked against them.

Operations have a small state table of their own (``OPERATION_ALLOWED``), read by
the service and by the 409 problem like the order's. Every action bumps the
order's version and lands in its history. Booked time is a labour cost entry,
valued at the work center's rate at that moment; outputs relieve it with the
material cost (see ``production.py``).
"""

from decimal import Decimal, localcontext
from typing import Final, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import utcnow
from prodorder_api.errors import InvalidTransition, NotFound
from prodorder_api.money import EXACT_CONTEXT, ZERO, quantize
from prodorder_api.orders import states
from prodorder_api.orders.models import OrderLabour, OrderOperation, ProductionOrder
from prodorder_api.orders.schemas import TimeBooking
from prodorder_api.orders.service import lock, record
from prodorder_api.workcenters.models import WorkCenter

OperationStatus = Literal["pending", "in_progress", "done"]
OperationAction = Literal["start", "time", "complete"]

OPERATION_ALLOWED: Final[dict[OperationStatus, tuple[OperationAction, ...]]] = {
    "pending": ("start", "complete"),
    "in_progress": ("time", "complete"),
    "done": (),
}


def check_operation(operation: OrderOperation, action: OperationAction) -> None:
    allowed = OPERATION_ALLOWED.get(operation.status, ())  # type: ignore[call-overload]
    if action not in allowed:
        raise InvalidTransition(
            f"cannot {action} operation {operation.sequence}: it is {operation.status}",
            current_status=operation.status,
            allowed_actions=list(allowed),
        )


async def _locked(
    session: AsyncSession,
    order_id: str,
    sequence: int,
    action: OperationAction,
    if_match: Precondition = ANY,
) -> tuple[ProductionOrder, OrderOperation]:
    """Lock the order, find the operation (404), and check both state tables.
    Starting an operation on a released order starts the order."""
    order = await lock(session, order_id)
    if_match.check(order.version)
    operation = next((op for op in order.operations if op.sequence == sequence), None)
    if operation is None:
        raise NotFound(f"the order has no operation with sequence {sequence}")
    if action == "start" and order.status == "released":
        record(order, "start", by_operation=sequence)
    states.check(order.status, "operation")
    check_operation(operation, action)
    return order, operation


async def start(
    session: AsyncSession, order_id: str, sequence: int, if_match: Precondition = ANY
) -> ProductionOrder:
    order, operation = await _locked(session, order_id, sequence, "start", if_match)
    operation.status = "in_progress"
    operation.started_at = utcnow()
    record(order, "operation_start", sequence=sequence)
    return order


async def book_time(
    session: AsyncSession,
    order_id: str,
    sequence: int,
    data: TimeBooking,
    if_match: Precondition = ANY,
) -> ProductionOrder:
    order, operation = await _locked(session, order_id, sequence, "time", if_match)
    rate = ZERO
    if operation.work_center_id is not None:
        center = await session.get(WorkCenter, operation.work_center_id)
        rate = center.cost_per_hour if center is not None else ZERO
    value = labour_value(data.minutes, rate)
    operation.actual_minutes += data.minutes
    if data.quantity is not None:
        operation.completed_quantity += data.quantity
    order.labour_cost += value
    session.add(
        OrderLabour(
            order_id=order.id,
            operation_sequence=sequence,
            work_center_id=operation.work_center_id,
            minutes=data.minutes,
            quantity=data.quantity,
            cost_per_hour=rate,
            value=value,
            note=data.note,
            at=utcnow(),
        )
    )
    record(
        order,
        "operation_time",
        sequence=sequence,
        minutes=str(data.minutes),
        value=str(value),
        note=data.note,
    )
    return order


async def complete(
    session: AsyncSession, order_id: str, sequence: int, if_match: Precondition = ANY
) -> ProductionOrder:
    order, operation = await _locked(session, order_id, sequence, "complete", if_match)
    now = utcnow()
    operation.status = "done"
    operation.started_at = operation.started_at or now
    operation.completed_at = now
    record(order, "operation_complete", sequence=sequence)
    return order


def labour_value(minutes: Decimal, cost_per_hour: Decimal) -> Decimal:
    """minutes × rate ÷ 60, to six places: no float, no early rounding."""
    with localcontext(EXACT_CONTEXT):
        return quantize(minutes * cost_per_hour / 60)
