"""Balances: what is free, in which order lots are taken (FEFO), and the locks.

Locks are taken in one global order by every caller: items first (``lock_items``),
then balances (``lock_balances``), each in ascending key order, so racing requests
queue instead of deadlocking. On SQLite ``FOR UPDATE`` renders as nothing; there
every write transaction holds the database lock from ``BEGIN IMMEDIATE`` (see
``db.py``), which serialises the same read-decide-write sequences.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import event, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from prodorder_api.db import insert_ignoring, table_of, update_by_id, utcnow
from prodorder_api.errors import InsufficientStock
from prodorder_api.ids import new_id
from prodorder_api.items.models import Item
from prodorder_api.money import ZERO, to_json
from prodorder_api.stock.models import Lot, StockBalance

BalanceKey = tuple[uuid.UUID, uuid.UUID, str]  # item, location, lot code

# First expiry first, then the oldest receipt, then the lot code: the one FEFO order,
# for picking free stock and for issuing what an order holds reserved alike. A balance
# without a lot (an untracked item) sorts as a lot that never expires.
FEFO: Final = (Lot.expiry_date.asc().nulls_last(), Lot.created_at, StockBalance.lot_code)


@dataclass(frozen=True)
class Shortage:
    """Stock that is not there: what the 409 ``insufficient_stock`` problem lists."""

    item_id: uuid.UUID
    location_id: uuid.UUID
    required: Decimal
    available: Decimal
    lot_code: str | None = None

    def problem(self) -> dict[str, Any]:
        return {
            "item_id": str(self.item_id),
            "location_id": str(self.location_id),
            "lot_code": self.lot_code or None,
            "required": to_json(self.required),
            "available": to_json(self.available),
            "shortage": to_json(self.required - self.available),
        }


def insufficient(detail: str, shortages: Sequence[Shortage]) -> InsufficientStock:
    return InsufficientStock(detail, [s.problem() for s in shortages])


@dataclass
class FreeStock:
    """Free (unreserved) stock of one item at one location, lots in FEFO order."""

    lots: list[tuple[str, Decimal]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((q for _, q in self.lots), ZERO)

    def take(self, quantity: Decimal) -> list[tuple[str, Decimal]]:
        """Up to ``quantity`` in FEFO order, as (lot, quantity) picks; what is picked is
        no longer free here."""
        picks: list[tuple[str, Decimal]] = []
        remaining = quantity
        for i, (lot, available) in enumerate(self.lots):
            if remaining <= 0:
                break
            take = min(available, remaining)
            if take > 0:
                picks.append((lot, take))
                self.lots[i] = (lot, available - take)
                remaining -= take
        return picks


@dataclass
class Balance:
    """One locked balance row as the ledger reads and writes it (no ORM object: the
    rows are written with one statement, ``write_balances``)."""

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


_B = StockBalance
_BALANCE_COLUMNS = (_B.id, _B.item_id, _B.location_id, _B.lot_code, _B.on_hand, _B.reserved)
_LOT_OF_BALANCE = (Lot.item_id == _B.item_id) & (Lot.code == _B.lot_code)


async def free_stock(
    session: AsyncSession, item_ids: Sequence[uuid.UUID], location_id: uuid.UUID
) -> dict[uuid.UUID, FreeStock]:
    """Available stock per item at a location, lots in FEFO order, in one query."""
    rows = await session.execute(
        select(_B.item_id, _B.lot_code, _B.on_hand - _B.reserved)
        .outerjoin(Lot, _LOT_OF_BALANCE)
        .where(_B.item_id.in_(item_ids), _B.location_id == location_id, _B.on_hand > _B.reserved)
        .order_by(_B.item_id, *FEFO)
    )
    free = {item_id: FreeStock() for item_id in item_ids}
    for item_id, lot_code, available in rows:
        free[item_id].lots.append((lot_code, available))
    return free


async def lock_free_stock(
    session: AsyncSession, item_ids: Sequence[uuid.UUID], location_id: uuid.UUID
) -> tuple[dict[uuid.UUID, FreeStock], list[Balance]]:
    """``free_stock``, its balance rows locked by the same statement and returned for
    the ledger to take instead of locking them again (``ledger.batch``'s ``ahead``).
    The caller holds the items' locks."""
    rows = await session.execute(
        select(*_BALANCE_COLUMNS, _B.updated_at)
        .outerjoin(Lot, _LOT_OF_BALANCE)
        .where(_B.item_id.in_(item_ids), _B.location_id == location_id, _B.on_hand > _B.reserved)
        .order_by(_B.item_id, *FEFO)
        .with_for_update(of=_B)
    )
    free = {item_id: FreeStock() for item_id in item_ids}
    balances = [Balance(*row) for row in rows]
    for balance in balances:
        free[balance.item_id].lots.append((balance.lot_code, balance.on_hand - balance.reserved))
    return free, balances


async def lot_ranks(
    session: AsyncSession, item_ids: Sequence[uuid.UUID], location_id: uuid.UUID
) -> dict[tuple[uuid.UUID, str], int]:
    """Position of each lot of these items at the location in FEFO order, reserved
    stock included: an order issues what it holds in the order free stock is taken."""
    rows = await session.execute(
        select(_B.item_id, _B.lot_code)
        .outerjoin(Lot, _LOT_OF_BALANCE)
        .where(_B.item_id.in_(item_ids), _B.location_id == location_id)
        .order_by(*FEFO)
    )
    return {(item_id, lot): position for position, (item_id, lot) in enumerate(rows)}


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
    if missing:
        # populate_existing: the request may have read these items before it waited for
        # the lock; without it the session would keep (and write back) stale values.
        rows = await session.scalars(
            select(Item)
            .where(Item.id.in_(missing))
            .order_by(Item.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        locked.update((item.id, item) for item in rows)
    return {item_id: locked[item_id] for item_id in ids if item_id in locked}


_KEY = (_B.item_id, _B.location_id, _B.lot_code)
_OTHER = aliased(StockBalance)
_ON_HAND_OF_ITEM = (
    select(func.sum(_OTHER.on_hand)).where(_OTHER.item_id == _B.item_id).scalar_subquery()
)
# Built once but for the keys: built whole at each call, the statement took ~5 % of a
# lifecycle's CPU in-process.
_LOCK_BALANCES, _LOCK_BALANCES_VALUED = (
    select(*_BALANCE_COLUMNS, _B.updated_at, total).order_by(*_KEY).with_for_update(of=_B)
    for total in (literal(None), _ON_HAND_OF_ITEM)
)


async def lock_balances(
    session: AsyncSession, keys: set[BalanceKey], valued: set[uuid.UUID]
) -> tuple[dict[BalanceKey, Balance], dict[uuid.UUID, Decimal]]:
    """Lock the balances of ``keys`` (key order); with them, for the items in
    ``valued``, each item's on-hand over all its balances, before this call's moves.

    The total needs no lock of its own: every change of an item's balances holds the
    item's lock, which this transaction has.
    """
    statement = _LOCK_BALANCES_VALUED if valued else _LOCK_BALANCES
    rows = await session.execute(statement.where(tuple_(*_KEY).in_(sorted(keys))))
    balances: dict[BalanceKey, Balance] = {}
    totals: dict[uuid.UUID, Decimal] = {}
    for row in rows:
        balance = Balance(*row[:7])
        balances[balance.key] = balance
        if row[7] is not None:
            totals[balance.item_id] = Decimal(row[7])
    return balances, totals


async def ensure_rows(
    session: AsyncSession, keys: set[BalanceKey], lots: dict[tuple[uuid.UUID, str], date | None]
) -> None:
    """Create the missing balance rows for stock coming in, in key order, and the
    lots (item, code → expiry date) that do not exist yet."""
    now = utcnow()
    await session.execute(
        insert_ignoring(session, StockBalance)
        .values(
            [
                {
                    "id": new_id(),
                    "item_id": item_id,
                    "location_id": location_id,
                    "lot_code": lot,
                    "on_hand": ZERO,
                    "reserved": ZERO,
                    "updated_at": now,
                }
                for item_id, location_id, lot in sorted(keys)
            ]
        )
        .on_conflict_do_nothing(index_elements=["item_id", "location_id", "lot_code"])
    )
    if lots:
        await session.execute(
            insert_ignoring(session, Lot)
            .values(
                [
                    {
                        "id": new_id(),
                        "item_id": i,
                        "code": code,
                        "expiry_date": expiry,
                        "created_at": now,
                    }
                    for (i, code), expiry in sorted(lots.items())
                ]
            )
            .on_conflict_do_nothing(index_elements=["item_id", "code"])
        )


async def on_hand_by_item(
    session: AsyncSession, item_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Decimal]:
    """Each item's on-hand over all locations and lots."""
    rows = await session.execute(
        select(_B.item_id, func.sum(_B.on_hand))
        .where(_B.item_id.in_(sorted(item_ids)))
        .group_by(_B.item_id)
    )
    totals = dict.fromkeys(item_ids, ZERO)
    for item_id, total in rows:
        totals[item_id] = total or ZERO
    return totals


async def write_balances(session: AsyncSession, changed: Sequence[Balance]) -> None:
    """The changed balances, in one statement."""
    rows = [
        {"id": b.id, "on_hand": b.on_hand, "reserved": b.reserved, "updated_at": b.updated_at}
        for b in changed
    ]
    await update_by_id(session, _TABLE, rows)
    # A balance the request loaded as an ORM object earlier must not show the old figures.
    identity_map = session.sync_session.identity_map
    for balance in changed:
        loaded = identity_map.get(identity_key(StockBalance, balance.id))
        if loaded is not None:
            for name in ("on_hand", "reserved", "updated_at"):
                set_committed_value(loaded, name, getattr(balance, name))


_TABLE = table_of(StockBalance)
