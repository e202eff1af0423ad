"""Serial numbers: which units of a serial-tracked item are where."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import utcnow
from prodorder_api.errors import Conflict, ValidationFailed
from prodorder_api.ids import new_id
from prodorder_api.items.models import Item
from prodorder_api.stock.models import SerialNumber
from prodorder_api.stock.moves import Move


async def move_serials(
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
