"""Items: the articles that are stocked, bought and made."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api import metadata
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import flush_unique, utcnow
from prodorder_api.errors import Conflict, NotFound, ValidationFailed
from prodorder_api.ids import parse_id
from prodorder_api.items.models import Item
from prodorder_api.items.schemas import ItemCreate, ItemUpdate
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.stock import ledger
from prodorder_api.stock.models import StockMovement


async def get(session: AsyncSession, item_id: str) -> Item:
    parsed = parse_id(item_id)
    item = await session.get(Item, parsed) if parsed else None
    if item is None:
        raise NotFound(f"no item with id {item_id}")
    return item


async def get_for_input(session: AsyncSession, item_id: uuid.UUID, field: str) -> Item:
    """An item named in a request body: unknown → 422 on that field."""
    item = await session.get(Item, item_id)
    if item is None:
        raise ValidationFailed(["body", field], f"no item with id {item_id}")
    return item


async def check_lines(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    """The items a body's ``lines`` name, in one query: the first unknown → 422 on
    ``lines[n].item_id``."""
    known = set(await session.scalars(select(Item.id).where(Item.id.in_(set(item_ids)))))
    for index, item_id in enumerate(item_ids):
        if item_id not in known:
            raise ValidationFailed(
                ["body", "lines", index, "item_id"], f"no item with id {item_id}"
            )


async def create(session: AsyncSession, data: ItemCreate) -> Item:
    item = Item(**metadata.stored(data.model_dump()))
    session.add(item)
    await flush_unique(session, f"an item with sku {data.sku!r} exists already")
    return item


async def update(
    session: AsyncSession, item_id: str, data: ItemUpdate, if_match: Precondition = ANY
) -> Item:
    item = await get(session, item_id)
    await ledger.lock_items(session, [item.id])  # PATCH and stock changes queue on the row
    if_match.check(item.version)
    changes = data.model_dump(exclude_unset=True)
    for required in ("sku", "name", "uom", "tracking", "lead_time_days"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(["body", required], "may not be null")
    if "tracking" in changes and changes["tracking"] != item.tracking:
        has_history = await session.scalar(select(exists().where(StockMovement.item_id == item.id)))
        if has_history:
            raise Conflict("tracking cannot change once the item has stock movements")
    if not metadata.patch(item, changes) and not changes:
        return item
    for name, value in changes.items():
        setattr(item, name, value)
    item.version += 1
    item.updated_at = utcnow()
    await flush_unique(session, f"an item with sku {item.sku!r} exists already")
    return item


async def list_items(
    session: AsyncSession,
    params: PageParams,
    sku: str | None,
    q: str | None,
    updated_after: datetime | None,
    meta: dict[str, str],
) -> tuple[list[Item], str | None]:
    stmt = select(Item).where(await metadata.matching(session, Item.meta, meta))
    if sku is not None:
        stmt = stmt.where(Item.sku == sku)
    if q:
        needle = q.lower()
        stmt = stmt.where(
            or_(
                func.lower(Item.sku).contains(needle, autoescape=True),
                func.lower(Item.name).contains(needle, autoescape=True),
            )
        )
    if updated_after is not None:
        stmt = stmt.where(Item.updated_at > updated_after)
    return await paginate(session, stmt, Item.id, params)
