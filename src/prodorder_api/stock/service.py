"""Receipts, adjustments and transfers: each turns a request into moves for the ledger."""

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.errors import ValidationFailed
from prodorder_api.items import service as items
from prodorder_api.items.models import Item
from prodorder_api.locations import service as locations
from prodorder_api.money import ZERO, to_json
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.stock import ledger
from prodorder_api.stock.balances import Shortage, free_stock, insufficient
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT, Movement, StockBalance, StockMovement
from prodorder_api.stock.schemas import AdjustmentCreate, ReceiptCreate, TransferCreate


async def receive(session: AsyncSession, data: ReceiptCreate) -> list[Movement]:
    item = await items.get_for_input(session, data.item_id, "item_id")
    location = await locations.resolve(session, data.location_id, "location_id")
    move = Move(
        item_id=item.id,
        location_id=location,
        quantity=data.quantity,
        type="receipt",
        lot_code=data.lot_code or NO_LOT,
        unit_cost=data.unit_cost,
        expiry_date=data.expiry_date,
        serials=tuple(data.serials or ()),
        reference=data.reference,
    )
    return await ledger.apply(session, [move])


async def adjust(session: AsyncSession, data: AdjustmentCreate) -> list[Movement]:
    item = await items.get_for_input(session, data.item_id, "item_id")
    location = await locations.resolve(session, data.location_id, "location_id")
    base = Move(
        item_id=item.id,
        location_id=location,
        type="adjustment",
        serials=tuple(data.serials or ()),
        reason=data.reason,
        reference=data.reference,
    )
    if data.quantity_delta > 0:
        gain = replace(
            base,
            quantity=data.quantity_delta,
            lot_code=data.lot_code or NO_LOT,
            expiry_date=data.expiry_date,
        )
        return await ledger.apply(session, [gain])
    lots = await _lots_to_take(session, item, location, -data.quantity_delta, data.lot_code)
    return await ledger.apply(
        session, [replace(base, quantity=-quantity, lot_code=lot) for lot, quantity in lots]
    )


async def transfer(session: AsyncSession, data: TransferCreate) -> list[Movement]:
    item = await items.get_for_input(session, data.item_id, "item_id")
    source = await locations.resolve(session, data.from_location_id, "from_location_id")
    target = await locations.resolve(session, data.to_location_id, "to_location_id")
    if source == target:
        raise ValidationFailed(["body", "to_location_id"], "must differ from from_location_id")
    base = Move(
        item_id=item.id,
        location_id=source,
        serials=tuple(data.serials or ()),
        reference=data.reference,
    )
    moves: list[Move] = []
    for lot, quantity in await _lots_to_take(session, item, source, data.quantity, data.lot_code):
        moves.append(replace(base, quantity=-quantity, lot_code=lot, type="transfer_out"))
        moves.append(
            replace(base, location_id=target, quantity=quantity, lot_code=lot, type="transfer_in")
        )
    return await ledger.apply(session, moves)


async def _lots_to_take(
    session: AsyncSession,
    item: Item,
    location_id: uuid.UUID,
    quantity: Decimal,
    lot_code: str | None,
) -> list[tuple[str, Decimal]]:
    """Which lots an issue of ``quantity`` comes from: the one named, else FEFO."""
    if item.tracking != "lot" or lot_code:
        return [(lot_code or NO_LOT, quantity)]  # the ledger refuses a lot on untracked items
    return await pick_fefo(session, item, location_id, quantity)


async def pick_fefo(
    session: AsyncSession, item: Item, location_id: uuid.UUID, quantity: Decimal
) -> list[tuple[str, Decimal]]:
    """Lots to issue ``quantity`` from, in FEFO order (``balances.FEFO``).

    Locks the item first, so the available stock it decides on cannot change before
    the ledger applies the moves.
    """
    await ledger.lock_items(session, [item.id])
    free = (await free_stock(session, [item.id], location_id))[item.id]
    available = free.total
    if available < quantity:
        raise insufficient(
            f"only {to_json(available)} of {item.sku} is available in any lot",
            [Shortage(item.id, location_id, quantity, available)],
        )
    return free.take(quantity)


async def list_balances(
    session: AsyncSession,
    params: PageParams,
    item_id: uuid.UUID | None,
    location_id: uuid.UUID | None,
    include_empty: bool,
) -> tuple[list[StockBalance], str | None]:
    stmt: Select[tuple[StockBalance]] = select(StockBalance)
    if item_id is not None:
        stmt = stmt.where(StockBalance.item_id == item_id)
    if location_id is not None:
        stmt = stmt.where(StockBalance.location_id == location_id)
    if not include_empty:
        stmt = stmt.where((StockBalance.on_hand != ZERO) | (StockBalance.reserved != ZERO))
    return await paginate(session, stmt, StockBalance.id, params)


async def list_movements(
    session: AsyncSession,
    params: PageParams,
    item_id: uuid.UUID | None,
    location_id: uuid.UUID | None,
    production_order_id: uuid.UUID | None,
    types: Sequence[str] | None,
    since: datetime | None,
    purchase_order_id: uuid.UUID | None = None,
) -> tuple[list[StockMovement], str | None]:
    stmt: Select[tuple[StockMovement]] = select(StockMovement)
    if item_id is not None:
        stmt = stmt.where(StockMovement.item_id == item_id)
    if location_id is not None:
        stmt = stmt.where(StockMovement.location_id == location_id)
    if production_order_id is not None:
        stmt = stmt.where(StockMovement.production_order_id == production_order_id)
    if purchase_order_id is not None:
        stmt = stmt.where(StockMovement.purchase_order_id == purchase_order_id)
    if types:
        stmt = stmt.where(StockMovement.type.in_(types))
    if since is not None:
        stmt = stmt.where(StockMovement.created_at >= since)
    return await paginate(session, stmt, StockMovement.id, params)
