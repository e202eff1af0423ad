"""An order's stock: reserving, freeing and issuing components, receiving output.

Everything here builds :class:`~prodorder_api.stock.ledger.Move` lists for the one
stock function; reservation rows of the order change in the same transaction.
Items are locked (in id order) before any stock is read to decide, so what was
decided on cannot change before the ledger applies it.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from prodorder_api.db import Base, update_loaded
from prodorder_api.items.models import Item
from prodorder_api.money import ZERO, to_json
from prodorder_api.orders.models import OrderRequirement, OrderReservation, ProductionOrder
from prodorder_api.stock import balances, ledger
from prodorder_api.stock.balances import FreeStock, Shortage, free_stock, insufficient
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT, Movement


def reserved_by_item(order: ProductionOrder) -> dict[uuid.UUID, Decimal]:
    totals: dict[uuid.UUID, Decimal] = defaultdict(lambda: ZERO)
    for reservation in order.reservations:
        totals[reservation.item_id] += reservation.quantity
    return totals


def open_need(order: ProductionOrder, requirement: OrderRequirement) -> Decimal:
    """What is still to be reserved: required − consumed − reserved, never below 0."""
    reserved = reserved_by_item(order).get(requirement.component_item_id, ZERO)
    return max(requirement.required_quantity - requirement.consumed_quantity - reserved, ZERO)


async def reserve(
    session: AsyncSession, order: ProductionOrder, *, all_or_nothing: bool
) -> Decimal:
    """Reserve every requirement's open need at the order's location; returns the total.

    ``all_or_nothing``: any shortage refuses the whole order with the shortages listed
    and reserves nothing. Otherwise what exists is reserved.
    """
    needs = {r.component_item_id: open_need(order, r) for r in order.requirements}
    needs = {item_id: need for item_id, need in needs.items() if need > 0}
    if not needs:
        return ZERO
    await ledger.lock_items(session, needs)
    async with ledger.batch(session):
        return await _reserve_free(session, order, needs, all_or_nothing=all_or_nothing)


async def _reserve_free(
    session: AsyncSession,
    order: ProductionOrder,
    needs: dict[uuid.UUID, Decimal],
    *,
    all_or_nothing: bool,
) -> Decimal:
    free, locked = await balances.lock_free_stock(session, sorted(needs), order.location_id)
    ledger.locked_ahead(session, locked)
    shortages = [
        Shortage(item_id, order.location_id, need, free[item_id].total)
        for item_id, need in needs.items()
        if free[item_id].total < need
    ]
    if shortages and all_or_nothing:
        raise insufficient(f"{len(shortages)} component(s) short; nothing was reserved", shortages)
    moves = [
        Move(item_id=item_id, location_id=order.location_id, lot_code=lot, reserved=quantity)
        for item_id, need in needs.items()
        for lot, quantity in free[item_id].take(need)
    ]
    await ledger.apply(session, moves)
    for move in moves:
        change_held(order, move.item_id, move.location_id, move.lot_code, move.reserved)
    await drop_empty_reservations(session, order)
    return sum((m.reserved for m in moves), ZERO)


async def free_reservations(session: AsyncSession, order: ProductionOrder) -> None:
    moves = [
        Move(
            item_id=r.item_id, location_id=r.location_id, lot_code=r.lot_code, reserved=-r.quantity
        )
        for r in order.reservations
        if r.quantity > 0
    ]
    await ledger.apply(session, moves)
    for reservation in order.reservations:
        reservation.quantity = ZERO
    await drop_empty_reservations(session, order)


async def drop_empty_reservations(session: AsyncSession, order: ProductionOrder) -> None:
    """Reservations down to 0 go: with one ``DELETE`` where the ORM would send one per
    row, the collection then set without the ORM noticing. While the collection holds
    a reservation added in this request (not stored yet, so the ORM must still insert
    it from the collection's history), the ORM removes them as usual."""
    empty = [r for r in order.reservations if r.quantity == 0]
    if not empty:
        return
    kept = [r for r in order.reservations if r.quantity != 0]
    if not all(inspect(r).persistent for r in order.reservations):
        for reservation in empty:
            order.reservations.remove(reservation)
        return
    await session.execute(
        delete(OrderReservation).where(OrderReservation.id.in_([r.id for r in empty]))
    )
    for reservation in empty:
        session.expunge(reservation)
    set_committed_value(order, "reservations", kept)


def change_held(
    order: ProductionOrder, item_id: uuid.UUID, location_id: uuid.UUID, lot: str, delta: Decimal
) -> None:
    for reservation in order.reservations:
        if (reservation.item_id, reservation.location_id, reservation.lot_code) == (
            item_id,
            location_id,
            lot,
        ):
            reservation.quantity += delta  # at 0, see drop_empty_reservations
            return
    if delta > 0:
        order.reservations.append(
            OrderReservation(item_id=item_id, location_id=location_id, lot_code=lot, quantity=delta)
        )


@dataclass(frozen=True)
class Issue:
    """Components to take for an order: reserved stock first, then free stock."""

    item_id: uuid.UUID
    quantity: Decimal
    lot_code: str | None = None
    serials: tuple[str, ...] = ()


async def issue(
    session: AsyncSession, order: ProductionOrder, issues: list[Issue]
) -> list[Movement]:
    """Consume components for the order in one ledger call; values go on the order."""
    if not issues:
        return []
    items = await ledger.lock_items(session, {i.item_id for i in issues})
    # Free stock and lot order matter only for lot-tracked items: skip both queries
    # when there are none (the common case on the backflush hot path).
    lot_items = sorted(i for i, item in items.items() if item.tracking == "lot")
    free = await free_stock(session, lot_items, order.location_id) if lot_items else {}
    free = {item_id: free.get(item_id, FreeStock()) for item_id in items}
    rank = await balances.lot_ranks(session, lot_items, order.location_id) if lot_items else {}
    moves: list[Move] = []
    for wanted in issues:
        moves += _issue_moves(order, items[wanted.item_id], free[wanted.item_id], wanted, rank)
    movements = await ledger.apply(session, moves)
    await drop_empty_reservations(session, order)
    consumed: dict[uuid.UUID, Decimal] = defaultdict(lambda: ZERO)
    for wanted in issues:
        consumed[wanted.item_id] += wanted.quantity
    stored: list[tuple[Base, dict[str, Any]]] = []
    for item_id, quantity in consumed.items():
        requirement = _requirement(order, item_id)
        if inspect(requirement).persistent:
            total = requirement.consumed_quantity + quantity
            stored.append((requirement, {"consumed_quantity": total}))
        else:
            requirement.consumed_quantity += quantity
    # One UPDATE for the stored requirements, where the ORM would send one per row.
    await update_loaded(session, stored)
    order.material_cost += -sum((m.value for m in movements), ZERO)
    return movements


def _issue_moves(
    order: ProductionOrder,
    item: Item,
    free: FreeStock,
    wanted: Issue,
    rank: dict[tuple[uuid.UUID, str], int],
) -> list[Move]:
    base: dict[str, Any] = {
        "item_id": item.id,
        "location_id": order.location_id,
        "type": "consumption",
        "production_order_id": order.id,
        "serials": wanted.serials,
    }
    moves: list[Move] = []
    remaining = wanted.quantity
    held = [r for r in order.reservations if r.item_id == item.id]
    for reservation in sorted(held, key=lambda r: rank.get((item.id, r.lot_code), -1)):
        if remaining <= 0:
            break
        if reservation.quantity <= 0:
            continue  # taken by an earlier line of the same call
        if reservation.item_id != item.id or reservation.location_id != order.location_id:
            continue
        if wanted.lot_code is not None and reservation.lot_code != wanted.lot_code:
            continue
        take = min(reservation.quantity, remaining)
        moves.append(Move(quantity=-take, reserved=-take, lot_code=reservation.lot_code, **base))
        # Held no more; a failure later rolls the whole request back, this included.
        change_held(order, item.id, order.location_id, reservation.lot_code, -take)
        remaining -= take
    if remaining <= 0:
        return moves
    if item.tracking != "lot" or wanted.lot_code is not None:
        # One move; the ledger refuses it with insufficient_stock if it is not there.
        moves.append(Move(quantity=-remaining, lot_code=wanted.lot_code or NO_LOT, **base))
        return moves
    picks = free.take(remaining)
    taken = sum((q for _, q in picks), ZERO)
    if taken < remaining:
        raise insufficient(
            f"only {to_json(taken)} more of {item.sku} is available in any lot",
            [Shortage(item.id, order.location_id, remaining, taken)],
        )
    moves += [Move(quantity=-q, lot_code=lot, **base) for lot, q in picks]
    return moves


def _requirement(order: ProductionOrder, item_id: uuid.UUID) -> OrderRequirement:
    """The order's requirement for an item; issuing outside the BOM records a new one."""
    for requirement in order.requirements:
        if requirement.component_item_id == item_id:
            return requirement
    requirement = OrderRequirement(
        component_item_id=item_id,
        required_quantity=ZERO,
        consumed_quantity=ZERO,
        consumption="manual",
        in_bom=False,
        position=len(order.requirements),
    )
    order.requirements.append(requirement)
    return requirement
