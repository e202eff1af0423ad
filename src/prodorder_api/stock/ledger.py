"""The one way stock changes.

Every change of on-hand or reserved stock, from a receipt to an order's backflush,
is a list of :class:`Move` handed to :func:`apply`, which in one transaction:

1. locks the items (``FOR NO KEY UPDATE``, so rows that merely refer to an item
   never wait for it), then the balances, each in ascending key order — one global
   order for every caller, so racing requests queue instead of deadlocking;
2. checks that no balance goes negative and that nothing takes reserved stock
   (``0 <= reserved <= on_hand`` after the change), refusing the whole list with
   ``insufficient_stock`` otherwise;
3. values each movement (moving average, with the item's inventory value kept
   exactly; the movement that empties an item takes whatever value is left);
4. writes the balances, the movement rows, the lots and the serial numbers,
   and registers a ``stock.changed`` event per item (``stock/events.py``).

On SQLite ``FOR UPDATE`` renders as nothing; there every write transaction holds
the database lock from ``BEGIN IMMEDIATE`` (see ``db.py``), which serialises the
same read-decide-write sequence.
"""

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import event, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from prodorder_api.db import (
    attach,
    insert_rows,
    pg_call,
    result_values,
    table_of,
    update_loaded,
    update_rows,
    utcnow,
)
from prodorder_api.errors import Conflict, InsufficientStock, ValidationFailed
from prodorder_api.ids import new_id
from prodorder_api.items.models import Item
from prodorder_api.money import MAX_MAGNITUDE, ZERO, div, mul, to_json
from prodorder_api.stock import events as stock_events
from prodorder_api.stock.models import (
    NO_LOT,
    Lot,
    Movement,
    SerialNumber,
    StockBalance,
    StockMovement,
)

BalanceKey = tuple[uuid.UUID, uuid.UUID, str]  # item, location, lot code


@dataclass(frozen=True)
class Move:
    """One change of one balance. ``type`` None means a reservation change only."""

    item_id: uuid.UUID
    location_id: uuid.UUID
    quantity: Decimal = ZERO  # signed change of on-hand
    type: str | None = None
    reserved: Decimal = ZERO  # signed change of reserved
    lot_code: str = NO_LOT
    unit_cost: Decimal | None = None  # inbound only; None: the current average
    value: Decimal | None = None  # inbound or value-only: an explicit value (order outputs)
    expiry_date: date | None = None  # inbound lot only
    serials: tuple[str, ...] = ()
    production_order_id: uuid.UUID | None = None
    reference: str | None = None
    reason: str | None = None

    @property
    def key(self) -> BalanceKey:
        return (self.item_id, self.location_id, self.lot_code)


@dataclass
class _Valuation:
    """An item's running on-hand and value while the moves of one call are valued."""

    item: Item
    on_hand: Decimal
    value: Decimal = field(init=False)
    in_transit: Decimal = ZERO

    def __post_init__(self) -> None:
        self.value = self.item.stock_value

    @property
    def average(self) -> Decimal:
        if self.on_hand > 0:
            return div(self.value, self.on_hand)
        if self.item.average_cost is not None:
            return self.item.average_cost
        return self.item.standard_cost or ZERO

    def take(self, move: Move) -> tuple[Decimal, Decimal]:
        """Unit cost and signed value of ``move``; updates the running totals."""
        quantity = move.quantity
        if move.type == "transfer_in":
            # Whatever its transfer_out (the move just before it) took, comes back.
            unit_cost, value = self.average, self.in_transit
        elif move.value is not None:  # valued by the caller (order outputs, cost settlement)
            value = move.value
            unit_cost = move.unit_cost if move.unit_cost is not None else self.average
        elif quantity > 0:
            unit_cost = move.unit_cost if move.unit_cost is not None else self.average
            value = mul(quantity, unit_cost)
        else:
            unit_cost = self.average
            if move.type == "transfer_out" or self.on_hand + quantity > 0:
                value = -min(mul(-quantity, unit_cost), max(self.value, ZERO))
            else:  # empties the item: the rest of its value goes with it
                value = -self.value
            self.in_transit = -value
        self.on_hand += quantity
        self.value += value
        return unit_cost, value


# The items this transaction has locked, by id (see ``lock_items``).
_LOCKED: Final = "prodorder.locked_items"


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, _transaction: SessionTransaction) -> None:
    """Locks end with the transaction (a savepoint's end drops the cache too: cheap,
    and never stale after a rollback to it)."""
    session.info.pop(_LOCKED, None)


async def lock_items(session: AsyncSession, item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Item]:
    """Lock items in id order; a caller that reads stock to decide (FEFO) locks first.

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: the ledger changes only non-key columns
    of an item, and ``FOR UPDATE`` would also block the ``FOR KEY SHARE`` lock that
    PostgreSQL takes to check a foreign key. Creating an order (which refers to its
    product, then to each component) would then queue behind a stock change of a
    component while holding its product, and deadlock with a completion that holds
    the components and then locks the product (tests/test_item_locks.py).

    An item this transaction already locked is not asked for again: the lock lasts
    until the transaction ends, and the ledger keeps the loaded item in step with what
    it writes. A caller that will need several items (a completion: its components,
    its product and by-products) locks them all in one call, so the id order holds.
    """
    ids = set(item_ids)
    locked: dict[uuid.UUID, Item] = session.info.setdefault(_LOCKED, {})
    missing = sorted(ids - locked.keys())
    if missing and session.get_bind().dialect.name == "postgresql":
        # Through asyncpg, the rows attached as ORM objects: ~0.2 instead of ~0.4 ms.
        found = await pg_call(session, "fetch", _LOCK_ITEMS, missing)
        read = [result_values(_ITEMS, _ITEM_COLUMNS, row) for row in found]
        values = [dict(zip(_ITEM_COLUMNS, row, strict=True)) for row in read]
        locked.update((item.id, item) for item in attach(session, Item, values))
    elif missing:
        # populate_existing: the request may have read these items before it waited for
        # the lock; without it the session would keep (and write back) the stale values.
        rows = await session.scalars(
            select(Item)
            .where(Item.id.in_(missing))
            .order_by(Item.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        locked.update((item.id, item) for item in rows)
    return {item_id: locked[item_id] for item_id in ids if item_id in locked}


_ITEMS = table_of(Item)
_ITEM_COLUMNS = tuple(c.key for c in _ITEMS.columns)
# What the SQLAlchemy statement in ``lock_items`` renders, for ``pg_call``.
_LOCK_ITEMS = (
    f"SELECT {', '.join(_ITEM_COLUMNS)} FROM items WHERE id = ANY($1::uuid[]) "
    "ORDER BY id FOR NO KEY UPDATE"
)


@dataclass
class _Balance:
    """One locked balance row as the ledger reads and writes it (no ORM object: the
    rows are written with one statement, see ``db.update_rows``)."""

    id: uuid.UUID
    item_id: uuid.UUID
    location_id: uuid.UUID
    lot_code: str
    on_hand: Decimal
    reserved: Decimal
    updated_at: datetime

    @property
    def key(self) -> BalanceKey:
        return (self.item_id, self.location_id, self.lot_code)

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


async def apply(session: AsyncSession, moves: Sequence[Move]) -> list[Movement]:
    """Apply ``moves`` all or nothing; returns the movement rows written.

    Statements on PostgreSQL for the usual call (items already locked by the caller,
    balance rows existing): lock the balances, reading each item's total on-hand with
    them (1); update the balances (1), the items (1) and insert the movements (1) —
    each one statement whatever the number of rows. The ORM version of the same work
    sent ~5 statements per balance (lock, sum, update item, update balance, insert).
    """
    if not moves:
        return []
    items = await lock_items(session, (m.item_id for m in moves))
    for move in moves:
        _check_tracking(items[move.item_id], move)
    valued = {m.item_id for m in moves if m.type is not None}
    pending: _Batch | None = session.info.get(_BATCH)
    balances, totals = await _lock_for(session, {m.key for m in moves}, valued, pending)
    inbound = {m.key for m in moves if m.quantity > 0} - balances.keys()
    if inbound:
        await _ensure_rows(session, inbound, moves)
        more, more_totals = await _lock_balances(session, inbound, valued)
        balances |= more
        totals = more_totals | totals
    if pending is not None:  # this batch's changes are newer than the rows just read
        balances = {key: pending.balances.get(b.id, b) for key, b in balances.items()}
    now = utcnow()
    changed = _check_and_update(balances, moves, now)
    if valued - totals.keys():
        totals |= await _on_hand_by_item(session, valued - totals.keys())
    if pending is not None:
        totals = {item_id: total + pending.on_hand[item_id] for item_id, total in totals.items()}

    valuations = {item_id: _Valuation(items[item_id], totals[item_id]) for item_id in valued}
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
                reference=move.reference,
                reason=move.reason,
                created_at=now,
            )
        )
    item_changes = _item_changes(list(valuations.values()), now)
    if pending is None:
        await _write_balances(session, changed)
        await update_loaded(session, item_changes)
        await _insert_movements(session, movements)
    else:
        pending.balances |= {balance.id: balance for balance in changed}
        for item, values in item_changes:
            for name, value in values.items():  # later valuations in the batch start here
                set_committed_value(item, name, value)
            pending.items[item.id] = (item, pending.items.get(item.id, (item, {}))[1] | values)
        pending.movements += movements
        for move in moves:
            pending.on_hand[move.item_id] += move.quantity
    await _move_serials(session, items, moves)
    stock_events.announce(session, balances.values(), movements)
    return movements


# The pending writes of ``batch``, while one is open on the session.
_BATCH: Final = "prodorder.ledger.batch"


@dataclass
class _Batch:
    balances: dict[uuid.UUID, _Balance] = field(default_factory=dict)  # by id, latest
    items: dict[uuid.UUID, tuple[Item, dict[str, Any]]] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)
    on_hand: defaultdict[uuid.UUID, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    expected: set[BalanceKey] = field(default_factory=set)  # to lock with the first call
    ahead: dict[BalanceKey, _Balance] = field(default_factory=dict)  # locked ahead
    totals: dict[uuid.UUID, Decimal] = field(default_factory=dict)  # their items', then


async def _lock_for(
    session: AsyncSession, keys: set[BalanceKey], valued: set[uuid.UUID], pending: _Batch | None
) -> tuple[dict[BalanceKey, _Balance], dict[uuid.UUID, Decimal]]:
    """``_lock_balances`` inside a batch: the balances the batch expects are locked with
    the first call's, and a later call takes them from there instead of asking again.

    Sound because the caller holds the items' locks, which every change of their
    balances takes: rows locked ahead cannot change but through this batch, whose
    changes stand in for them anyway; and their items' on-hand, read then, is before
    every move of the batch, as ``apply`` counts it.
    """
    if pending is None:
        return await _lock_balances(session, keys, valued)
    ahead = {key: pending.ahead[key] for key in keys if key in pending.ahead}
    extra, pending.expected = pending.expected - keys - pending.ahead.keys(), set()
    balances: dict[BalanceKey, _Balance] = {}
    totals: dict[uuid.UUID, Decimal] = {}
    if keys - ahead.keys():
        extra_items = {key[0] for key in extra}
        balances, totals = await _lock_balances(
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


def locked_ahead(session: AsyncSession, rows: Iterable[Sequence[Any]]) -> None:
    """Balance rows the caller has locked and read itself (``_Balance``'s fields, in
    order), for the open batch's calls to take instead of asking again; the caller
    holds their items' locks (see ``_lock_for``)."""
    pending: _Batch = session.info[_BATCH]
    for row in rows:
        balance = _Balance(*row)
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
        await _write_balances(session, list(pending.balances.values()))
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


async def _ensure_rows(session: AsyncSession, keys: set[BalanceKey], moves: Sequence[Move]) -> None:
    """Create the missing balance rows (and lots) for stock coming in, in key order."""
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    await session.execute(
        upsert(StockBalance)
        .values(
            [
                {
                    "id": new_id(),
                    "item_id": i,
                    "location_id": loc,
                    "lot_code": lot,
                    "on_hand": ZERO,
                    "reserved": ZERO,
                    "updated_at": now,
                }
                for i, loc, lot in sorted(keys)
            ]
        )
        .on_conflict_do_nothing(index_elements=["item_id", "location_id", "lot_code"])
    )
    lots = sorted(
        {
            (m.item_id, m.lot_code): m.expiry_date for m in moves if m.quantity > 0 and m.lot_code
        }.items()
    )
    if lots:
        await session.execute(
            upsert(Lot)
            .values(
                [
                    {
                        "id": new_id(),
                        "item_id": i,
                        "code": code,
                        "expiry_date": expiry,
                        "created_at": now,
                    }
                    for (i, code), expiry in lots
                ]
            )
            .on_conflict_do_nothing(index_elements=["item_id", "code"])
        )


async def _lock_balances(
    session: AsyncSession, keys: set[BalanceKey], valued: set[uuid.UUID]
) -> tuple[dict[BalanceKey, _Balance], dict[uuid.UUID, Decimal]]:
    """Lock the balances of ``keys`` (key order); with them, when the call values
    movements, each item's on-hand over all its balances, before this call's moves.

    The total needs no lock of its own: every change of an item's balances holds the
    item's lock, which this transaction has.
    """
    ordered = sorted(keys)
    rows: Any
    if session.get_bind().dialect.name == "postgresql":
        # Through asyncpg (``db.pg_call``): ~0.1 instead of ~0.33 ms of CPU a call.
        sql = _LOCK_BALANCES_VALUED if valued else _LOCK_BALANCES
        columns = ([key[n] for key in ordered] for n in range(3))
        found = await pg_call(session, "fetch", sql, *columns)
        rows = [result_values(_TABLE, _BALANCE_COLUMNS, row) for row in found]
    else:
        b = StockBalance
        other = aliased(StockBalance)
        key = (b.item_id, b.location_id, b.lot_code)
        total = (
            select(func.sum(other.on_hand)).where(other.item_id == b.item_id).scalar_subquery()
            if valued
            else literal(None)
        )
        rows = await session.execute(
            select(b.id, *key, b.on_hand, b.reserved, b.updated_at, total)
            .where(tuple_(*key).in_(ordered))
            .order_by(*key)
            .with_for_update(of=b)
        )
    balances: dict[BalanceKey, _Balance] = {}
    totals: dict[uuid.UUID, Decimal] = {}
    for row in rows:
        balance = _Balance(*row[:7])
        balances[balance.key] = balance
        if row[7] is not None:
            totals[balance.item_id] = Decimal(row[7])
    return balances, totals


_TABLE = table_of(StockBalance)
# The columns selected, the total as an on-hand (bound and read as ``Exact``).
_BALANCE_COLUMNS = (
    "id",
    "item_id",
    "location_id",
    "lot_code",
    "on_hand",
    "reserved",
    "updated_at",
    "on_hand",
)
# What the SQLAlchemy statement above selects, with the keys as three arrays: one SQL
# text for any number of them, planned once. As an IN list of (item, location, lot)
# rows, one parameter each, PostgreSQL planned it anew at each call (~170 µs of its
# CPU a completion, from its statement log).
_LOCK_BALANCES_OF = (
    "SELECT b.id, b.item_id, b.location_id, b.lot_code, b.on_hand, b.reserved, b.updated_at, "
    "{total} FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(item_id, location_id, lot_code) "
    "JOIN stock_balances AS b ON b.item_id = k.item_id AND b.location_id = k.location_id "
    "AND b.lot_code = k.lot_code ORDER BY b.item_id, b.location_id, b.lot_code FOR UPDATE OF b"
)
_TOTAL = "(SELECT sum(o.on_hand) FROM stock_balances AS o WHERE o.item_id = b.item_id)"
_LOCK_BALANCES = _LOCK_BALANCES_OF.format(total="NULL")
_LOCK_BALANCES_VALUED = _LOCK_BALANCES_OF.format(total=_TOTAL)


def _check_and_update(
    balances: dict[BalanceKey, _Balance], moves: Sequence[Move], now: datetime
) -> list[_Balance]:
    """New on-hand and reserved of every balance ``moves`` touch; all or nothing."""
    on_hand_delta: dict[BalanceKey, Decimal] = defaultdict(lambda: ZERO)
    reserved_delta: dict[BalanceKey, Decimal] = defaultdict(lambda: ZERO)
    for move in moves:
        on_hand_delta[move.key] += move.quantity
        reserved_delta[move.key] += move.reserved

    shortages: list[dict[str, Any]] = []
    changed: list[_Balance] = []
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
            shortages.append(
                {
                    "item_id": str(key[0]),
                    "location_id": str(key[1]),
                    "lot_code": key[2] or None,
                    "required": to_json(available - (new_on_hand - new_reserved)),
                    "available": to_json(available),
                    "shortage": to_json(new_reserved - new_on_hand),
                }
            )
            continue
        if new_on_hand >= MAX_MAGNITUDE:
            raise ValidationFailed(["body", "quantity"], "the on-hand would exceed 10^12")
        if balance is not None:
            balance.on_hand, balance.reserved, balance.updated_at = new_on_hand, new_reserved, now
            changed.append(balance)
    if shortages:
        raise InsufficientStock(
            f"not enough available stock for {len(shortages)} balance(s); nothing was changed",
            shortages,
        )
    return changed


async def _on_hand_by_item(
    session: AsyncSession, item_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Decimal]:
    """Each item's on-hand over all locations and lots, for items valued without a
    balance row of their own among the locked ones (a value-only settlement)."""
    rows = await session.execute(
        select(StockBalance.item_id, func.sum(StockBalance.on_hand))
        .where(StockBalance.item_id.in_(sorted(item_ids)))
        .group_by(StockBalance.item_id)
    )
    totals = dict.fromkeys(item_ids, ZERO)
    for item_id, total in rows:
        totals[item_id] = total or ZERO
    return totals


async def _write_balances(session: AsyncSession, changed: list[_Balance]) -> None:
    rows = [
        {"id": b.id, "on_hand": b.on_hand, "reserved": b.reserved, "updated_at": b.updated_at}
        for b in changed
    ]
    await update_rows(session, StockBalance, rows)
    # A balance the request loaded as an ORM object earlier must not show the old figures.
    identity_map = session.sync_session.identity_map
    for balance in changed:
        loaded = identity_map.get(identity_key(StockBalance, balance.id))
        if loaded is not None:
            for name in ("on_hand", "reserved", "updated_at"):
                set_committed_value(loaded, name, getattr(balance, name))


def _item_changes(valuations: list[_Valuation], now: datetime) -> list[tuple[Item, dict[str, Any]]]:
    """Each item's new stock value and average (and ``updated_at``), where they change."""
    changes: list[tuple[Item, dict[str, Any]]] = []
    for valuation in valuations:
        item = valuation.item
        if valuation.value >= MAX_MAGNITUDE:
            raise ValidationFailed(["body", "quantity"], "the stock value would exceed 10^12")
        average = div(valuation.value, valuation.on_hand) if valuation.on_hand > 0 else None
        average = average if average is not None else item.average_cost
        if (item.stock_value, item.average_cost) != (valuation.value, average):
            values = {"stock_value": valuation.value, "average_cost": average, "updated_at": now}
            changes.append((item, values))
    return changes


async def _insert_movements(session: AsyncSession, movements: list[Movement]) -> None:
    """Not the unit of work: one statement (``db.insert_rows``)."""
    table = table_of(StockMovement)
    columns = [c.key for c in table.columns]
    await insert_rows(session, table, [{c: getattr(m, c) for c in columns} for m in movements])


async def _move_serials(
    session: AsyncSession, items: dict[uuid.UUID, Item], moves: Sequence[Move]
) -> None:
    in_transit: tuple[str, ...] = ()
    for move in moves:
        item = items[move.item_id]
        if item.tracking != "serial" or move.quantity == 0:
            continue
        count = int(abs(move.quantity))
        if move.quantity > 0:
            serials = move.serials or (in_transit if move.type == "transfer_in" else ())
            await _serials_in(session, item, move.location_id, serials, count)
        else:
            in_transit = await _serials_out(session, item, move, count)
        await session.flush()


async def _serials_in(
    session: AsyncSession, item: Item, location_id: uuid.UUID, serials: tuple[str, ...], count: int
) -> None:
    if len(serials) != count or len(set(serials)) != count:
        raise ValidationFailed(
            ["body", "serials"], f"item {item.sku} is serial-tracked: give {count} distinct serials"
        )
    existing = {
        s.serial: s
        for s in await session.scalars(
            select(SerialNumber).where(
                SerialNumber.item_id == item.id, SerialNumber.serial.in_(serials)
            )
        )
    }
    in_stock = sorted(s for s, row in existing.items() if row.location_id is not None)
    if in_stock:
        raise Conflict(f"serials already in stock for {item.sku}: {', '.join(in_stock)}")
    now = utcnow()
    for serial in serials:
        row = existing.get(serial)
        if row is None:
            session.add(
                SerialNumber(
                    id=new_id(),
                    item_id=item.id,
                    serial=serial,
                    location_id=location_id,
                    updated_at=now,
                )
            )
        else:
            row.location_id = location_id
            row.updated_at = now


async def _serials_out(
    session: AsyncSession, item: Item, move: Move, count: int
) -> tuple[str, ...]:
    """Take serials out of stock: those named, else the oldest at the location."""
    query = select(SerialNumber).where(
        SerialNumber.item_id == item.id, SerialNumber.location_id == move.location_id
    )
    if move.serials:
        if len(move.serials) != count or len(set(move.serials)) != count:
            raise ValidationFailed(
                ["body", "serials"], f"give {count} distinct serials of {item.sku}"
            )
        query = query.where(SerialNumber.serial.in_(move.serials))
    else:
        query = query.order_by(SerialNumber.updated_at, SerialNumber.serial).limit(count)
    rows = list(await session.scalars(query))
    if len(rows) != count:
        missing = sorted(set(move.serials) - {r.serial for r in rows}) if move.serials else []
        raise ValidationFailed(
            ["body", "serials"],
            f"serials not in stock at this location: {', '.join(missing) or 'too few'}",
        )
    now = utcnow()
    for row in rows:
        row.location_id = None
        row.updated_at = now
    return tuple(sorted(r.serial for r in rows))
