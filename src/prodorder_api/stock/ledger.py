"""The one way stock changes.

Every change of on-hand or reserved stock, from a receipt to an order's backflush,
is a list of :class:`Move` handed to :func:`apply`, which in one transaction:

1. locks the items, then the balances, each in ascending key order — one global
   order for every caller (``balances.py``), so racing requests queue instead of
   deadlocking;
2. checks that no balance goes negative and that nothing takes reserved stock
   (``0 <= reserved <= on_hand`` after the change), refusing the whole list with
   ``insufficient_stock`` otherwise;
3. values each movement (``valuation.py``);
4. writes the balances, the movement rows, the lots and the serial numbers
   (``serials.py``), and registers a ``stock.changed`` event per item
   (``stock/events.py``).
"""

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from prodorder_api.db import table_of, update_loaded, utcnow
from prodorder_api.errors import Conflict, ValidationFailed
from prodorder_api.ids import new_id
from prodorder_api.items.models import Item
from prodorder_api.money import MAX_MAGNITUDE, ZERO
from prodorder_api.stock import balances as balances_
from prodorder_api.stock import events as stock_events
from prodorder_api.stock.balances import Balance, BalanceKey, Shortage, insufficient, lock_items
from prodorder_api.stock.models import Movement, StockMovement
from prodorder_api.stock.moves import Move
from prodorder_api.stock.serials import move_serials
from prodorder_api.stock.valuation import Valuation, item_changes

__all__ = ["Move", "apply", "batch", "lock_items", "locked_ahead"]


async def apply(session: AsyncSession, moves: Sequence[Move]) -> list[Movement]:
    """Apply ``moves`` all or nothing; returns the movement rows written.

    Statements for the usual call (items already locked by the caller, balance rows
    existing): lock the balances, reading each item's total on-hand with them (1);
    update the balances (1), the items (1) and insert the movements (1) — each one
    statement whatever the number of rows. The ORM's unit of work sent ~5 statements
    per balance (lock, sum, update item, update balance, insert).
    """
    if not moves:
        return []
    items = await balances_.lock_items(session, (m.item_id for m in moves))
    for move in moves:
        _check_tracking(items[move.item_id], move)
    valued = {m.item_id for m in moves if m.type is not None}
    pending: _Batch | None = session.info.get(_BATCH)
    balances, totals = await _lock_for(session, {m.key for m in moves}, valued, pending)
    inbound = {m.key for m in moves if m.quantity > 0} - balances.keys()
    if inbound:
        lots = {
            (m.item_id, m.lot_code): m.expiry_date for m in moves if m.quantity > 0 and m.lot_code
        }
        await balances_.ensure_rows(session, inbound, lots)
        more, more_totals = await balances_.lock_balances(session, inbound, valued)
        balances |= more
        totals = more_totals | totals
    if pending is not None:  # this batch's changes are newer than the rows just read
        balances = {key: pending.balances.get(b.id, b) for key, b in balances.items()}
    now = utcnow()
    changed = _check_and_update(balances, moves, now)
    if valued - totals.keys():
        totals |= await balances_.on_hand_by_item(session, valued - totals.keys())
    if pending is not None:
        totals = {item_id: total + pending.on_hand[item_id] for item_id, total in totals.items()}

    valuations = {item_id: Valuation(items[item_id], totals[item_id]) for item_id in valued}
    movements = []
    for move in moves:
        if move.type is None:
            continue
        valuation = valuations[move.item_id]
        unit_cost, value = valuation.take(move)
        movements.append(
            Movement(
                id=new_id(),
                item_id=move.item_id,
                location_id=move.location_id,
                lot_code=move.lot_code,
                quantity=move.quantity,
                type=move.type,
                unit_cost=unit_cost,
                value=value,
                production_order_id=move.production_order_id,
                unbuild_order_id=move.unbuild_order_id,
                purchase_order_id=move.purchase_order_id,
                reference=move.reference,
                reason=move.reason,
                created_at=now,
            )
        )
    changed_items = item_changes(list(valuations.values()), now)
    if pending is None:
        await balances_.write_balances(session, changed)
        await update_loaded(session, changed_items)
        await _insert_movements(session, movements)
    else:
        pending.balances |= {balance.id: balance for balance in changed}
        for item, values in changed_items:
            for name, value in values.items():  # later valuations in the batch start here
                set_committed_value(item, name, value)
            pending.items[item.id] = (item, pending.items.get(item.id, (item, {}))[1] | values)
        pending.movements += movements
        for move in moves:
            pending.on_hand[move.item_id] += move.quantity
    await move_serials(session, items, moves)
    stock_events.announce(session, balances.values(), movements)
    return movements


# The pending writes of ``batch``, while one is open on the session.
_BATCH: Final = "prodorder.ledger.batch"


@dataclass
class _Batch:
    balances: dict[uuid.UUID, Balance] = field(default_factory=dict)  # by id, latest
    items: dict[uuid.UUID, tuple[Item, dict[str, Any]]] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)
    on_hand: defaultdict[uuid.UUID, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    expected: set[BalanceKey] = field(default_factory=set)  # to lock with the first call
    ahead: dict[BalanceKey, Balance] = field(default_factory=dict)  # locked ahead
    totals: dict[uuid.UUID, Decimal] = field(default_factory=dict)  # their items', then


async def _lock_for(
    session: AsyncSession, keys: set[BalanceKey], valued: set[uuid.UUID], pending: _Batch | None
) -> tuple[dict[BalanceKey, Balance], dict[uuid.UUID, Decimal]]:
    """``_lock_balances`` inside a batch: the balances the batch expects are locked with
    the first call's, and a later call takes them from there instead of asking again.

    Sound because the caller holds the items' locks, which every change of their
    balances takes: rows locked ahead cannot change but through this batch, whose
    changes stand in for them anyway; and their items' on-hand, read then, is before
    every move of the batch, as ``apply`` counts it.
    """
    if pending is None:
        return await balances_.lock_balances(session, keys, valued)
    ahead = {key: pending.ahead[key] for key in keys if key in pending.ahead}
    extra, pending.expected = pending.expected - keys - pending.ahead.keys(), set()
    balances: dict[BalanceKey, Balance] = {}
    totals: dict[uuid.UUID, Decimal] = {}
    if keys - ahead.keys():
        extra_items = {key[0] for key in extra}
        balances, totals = await balances_.lock_balances(
            session, (keys - ahead.keys()) | extra, valued | extra_items
        )
        pending.ahead |= {key: balances.pop(key) for key in extra if key in balances}
        pending.totals |= {i: totals[i] for i in extra_items if i in totals}
    totals |= {
        key[0]: pending.totals[key[0]]
        for key in ahead
        if key[0] in pending.totals and key[0] not in totals
    }
    return balances | ahead, totals


def locked_ahead(session: AsyncSession, balances: Iterable[Balance]) -> None:
    """Balances the caller has locked and read itself (``balances.lock_free_stock``),
    for the open batch's calls to take instead of asking again; the caller holds
    their items' locks (see ``_lock_for``)."""
    pending: _Batch = session.info[_BATCH]
    for balance in balances:
        pending.ahead[balance.key] = balance


@asynccontextmanager
async def batch(session: AsyncSession, expect: Iterable[BalanceKey] = ()) -> AsyncIterator[None]:
    """The ``apply`` calls inside write once, together, when the block ends: one
    UPDATE of the balances, one of the items and one INSERT of the movements instead
    of one each per call. A completion backflushes and then receives its output,
    valued by what the backflush consumed: 4 statements less.

    Each call still locks and checks at once, and all or nothing; the rows it changed
    and has not written yet stand in for what a later call reads (the balances it
    locks, each item's total on hand, the items' value), so the figures are exactly
    those of separate calls, and so is what a block that raises leaves written.

    The balances of ``expect`` (a completion's output) are locked together with the
    first call's: a statement less. The caller must hold their items' locks.
    """
    if _BATCH in session.info:
        yield  # the outer batch writes
        return
    pending = session.info[_BATCH] = _Batch(expected=set(expect))
    try:
        yield
    finally:
        # Also when the block raises: what the calls that returned did is written, as
        # separate calls would have written it (their events are already pending).
        session.info.pop(_BATCH, None)
        await balances_.write_balances(session, list(pending.balances.values()))
        await update_loaded(session, list(pending.items.values()))
        await _insert_movements(session, pending.movements)


def _check_tracking(item: Item, move: Move) -> None:
    if item.tracking == "lot" and move.quantity != 0 and not move.lot_code:
        raise ValidationFailed(["body", "lot_code"], f"item {item.sku} is lot-tracked: name a lot")
    if item.tracking != "lot" and move.lot_code:
        raise ValidationFailed(["body", "lot_code"], f"item {item.sku} is not lot-tracked")
    if item.tracking != "serial" and move.serials:
        raise ValidationFailed(["body", "serials"], f"item {item.sku} is not serial-tracked")
    if item.tracking == "serial" and move.quantity != move.quantity.to_integral_value():
        raise ValidationFailed(
            ["body", "quantity"], f"item {item.sku} is serial-tracked: whole units only"
        )


def _check_and_update(
    balances: dict[BalanceKey, Balance], moves: Sequence[Move], now: datetime
) -> list[Balance]:
    """New on-hand and reserved of every balance ``moves`` touch; all or nothing."""
    on_hand_delta: dict[BalanceKey, Decimal] = defaultdict(lambda: ZERO)
    reserved_delta: dict[BalanceKey, Decimal] = defaultdict(lambda: ZERO)
    for move in moves:
        on_hand_delta[move.key] += move.quantity
        reserved_delta[move.key] += move.reserved

    shortages: list[Shortage] = []
    changed: list[Balance] = []
    for key in sorted(on_hand_delta):
        balance = balances.get(key)
        on_hand = balance.on_hand if balance else ZERO
        reserved = balance.reserved if balance else ZERO
        new_on_hand = on_hand + on_hand_delta[key]
        new_reserved = reserved + reserved_delta[key]
        if new_reserved < 0:
            raise Conflict(f"cannot free {-reserved_delta[key]}: only {reserved} is reserved")
        if new_on_hand - new_reserved < 0:
            available = on_hand - reserved
            required = available - (new_on_hand - new_reserved)
            shortages.append(Shortage(key[0], key[1], required, available, key[2]))
            continue
        if new_on_hand >= MAX_MAGNITUDE:
            raise ValidationFailed(["body", "quantity"], "the on-hand would exceed 10^12")
        if balance is not None:
            balance.on_hand, balance.reserved, balance.updated_at = new_on_hand, new_reserved, now
            changed.append(balance)
    if shortages:
        raise insufficient(
            f"not enough available stock for {len(shortages)} balance(s); nothing was changed",
            shortages,
        )
    return changed


async def _insert_movements(session: AsyncSession, movements: list[Movement]) -> None:
    """Core rows, not the unit of work: one multi-row INSERT (the ORM would make
    objects and track them for nothing: movements are never changed)."""
    if movements:
        rows = [{c: getattr(m, c) for c in _MOVEMENT_COLUMNS} for m in movements]
        await session.execute(insert(_MOVEMENTS), rows)


_MOVEMENTS = table_of(StockMovement)
_MOVEMENT_COLUMNS = tuple(c.key for c in _MOVEMENTS.columns)
