"""Lots and their genealogy, derived from the ledger.

A production order links lots: each lot it consumed (a ``consumption`` movement of
a component with a lot code) went into each lot it made (an ``output`` movement of
its product with a lot code). Tracing follows those links over all levels in one
recursive SQL query (``WITH RECURSIVE``, on PostgreSQL and SQLite alike):

* forward, from a component lot: every lot made from it, at any depth (a recall);
* backward, from a finished lot: every component lot in it, at any depth.

Untracked items carry no lot, so a chain through an untracked intermediate stops
there. Rework that feeds a lot back into itself would loop; the recursion stops
after :data:`MAX_LEVELS` levels.
"""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Select,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from prodorder_api import metadata
from prodorder_api.errors import NotFound
from prodorder_api.ids import parse_id
from prodorder_api.lots.schemas import LotOut, LotTrace, LotUpdate, TraceDirection
from prodorder_api.money import ZERO, Exact
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import format_number
from prodorder_api.pagination import PageParams, decode_cursor, encode_cursor
from prodorder_api.stock.models import NO_LOT, Lot, StockBalance, StockMovement

MAX_LEVELS = 64


def _on_hand() -> ColumnElement[Decimal]:
    """Σ on hand of the lot (correlated to ``Lot``) over its balances."""
    return (
        select(func.coalesce(func.sum(StockBalance.on_hand), literal(ZERO, Exact()), type_=Exact()))
        .where(StockBalance.item_id == Lot.item_id, StockBalance.lot_code == Lot.code)
        .correlate(Lot)
        .scalar_subquery()
        .label("on_hand")
    )


def _lots() -> Select[uuid.UUID, uuid.UUID, str, date | None, datetime, dict[str, str], Decimal]:
    return select(
        Lot.id, Lot.item_id, Lot.code, Lot.expiry_date, Lot.created_at, Lot.meta, _on_hand()
    )


async def list_lots(
    session: AsyncSession,
    params: PageParams,
    item_id: uuid.UUID | None,
    code: str | None,
    meta: dict[str, str],
) -> tuple[list[Any], str | None]:
    stmt = _lots().where(metadata.matching(Lot.meta, meta))
    if item_id is not None:
        stmt = stmt.where(Lot.item_id == item_id)
    if code is not None:
        stmt = stmt.where(Lot.code == code)
    if params.cursor is not None:
        stmt = stmt.where(Lot.id > decode_cursor(params.cursor))
    rows = list((await session.execute(stmt.order_by(Lot.id).limit(params.limit + 1))).all())
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


async def get(session: AsyncSession, lot_id: str) -> LotOut:
    parsed = parse_id(lot_id)
    row = (await session.execute(_lots().where(Lot.id == parsed))).first() if parsed else None
    if row is None:
        raise NotFound(f"no lot with id {lot_id}")
    return LotOut.model_validate(row)


async def update(session: AsyncSession, lot_id: str, data: LotUpdate) -> LotOut:
    """Merge ``metadata`` into the lot's, its row locked so two PATCHes both land."""
    parsed = parse_id(lot_id)
    stmt = select(Lot).where(Lot.id == parsed).with_for_update()
    lot = (await session.scalars(stmt)).first() if parsed else None
    if lot is None:
        raise NotFound(f"no lot with id {lot_id}")
    if metadata.patch(lot, data.model_dump()):
        await session.flush()
    return await get(session, lot_id)


def _genealogy(lot: LotOut, direction: TraceDirection) -> CTE:
    """The recursive CTE of links: (item, lot code, level, order, unbuild, via item,
    via code).

    One step from a lot: the movements that name it, then the same order's (or
    unbuild's) movements on the other side that carry a lot code. Going forward a lot
    leads to what was made of it (consumption → output) and to what it was taken apart
    into (disassembly → recovery); going backward, the other way round.
    """
    made, unmade = ("consumption", "output"), ("disassembly", "recovery")
    if direction == "backward":
        made, unmade = (made[1], made[0]), (unmade[1], unmade[0])

    def step(here: type[StockMovement], found: type[StockMovement]) -> ColumnElement[bool]:
        return and_(
            found.lot_code != NO_LOT,
            or_(
                and_(
                    here.type == made[0],
                    here.production_order_id.is_not(None),
                    found.production_order_id == here.production_order_id,
                    found.type == made[1],
                ),
                and_(
                    here.type == unmade[0],
                    here.unbuild_order_id.is_not(None),
                    found.unbuild_order_id == here.unbuild_order_id,
                    found.type == unmade[1],
                ),
            ),
        )

    here, found = aliased(StockMovement), aliased(StockMovement)
    anchor = (
        select(
            found.item_id.label("item_id"),
            found.lot_code.label("lot_code"),
            literal_column("1", Integer).label("level"),
            found.production_order_id.label("order_id"),
            found.unbuild_order_id.label("unbuild_id"),
            here.item_id.label("via_item_id"),
            here.lot_code.label("via_code"),
        )
        .select_from(here)
        .join(found, step(here, found))
        .where(here.item_id == lot.item_id, here.lot_code == lot.code)
        .cte("genealogy", recursive=True)
    )
    prior = anchor.alias("prior")
    here, found = aliased(StockMovement), aliased(StockMovement)
    recursive = (
        select(
            found.item_id,
            found.lot_code,
            prior.c.level + 1,
            found.production_order_id,
            found.unbuild_order_id,
            prior.c.item_id,
            prior.c.lot_code,
        )
        .select_from(prior)
        .join(here, and_(here.item_id == prior.c.item_id, here.lot_code == prior.c.lot_code))
        .join(found, step(here, found))
        .where(prior.c.level < MAX_LEVELS)
    )
    return anchor.union(recursive)


async def trace(session: AsyncSession, lot_id: str, direction: TraceDirection) -> LotTrace:
    lot = await get(session, lot_id)
    links = _genealogy(lot, direction)
    # A link reached along several paths is listed once, at its shortest depth.
    best = (
        select(
            links.c.item_id,
            links.c.lot_code,
            links.c.order_id,
            links.c.unbuild_id,
            links.c.via_item_id,
            links.c.via_code,
            func.min(links.c.level).label("level"),
        )
        .group_by(
            links.c.item_id,
            links.c.lot_code,
            links.c.order_id,
            links.c.unbuild_id,
            links.c.via_item_id,
            links.c.via_code,
        )
        .subquery("best")
    )
    via = aliased(Lot)
    P = ProductionOrder
    rows = await session.execute(
        select(
            Lot.id.label("lot_id"),
            Lot.item_id,
            Lot.code,
            Lot.expiry_date,
            best.c.level,
            via.id.label("via_lot_id"),
            P.id.label("production_order_id"),
            P.number,
            P.status.label("production_order_status"),
            P.reference,
            best.c.unbuild_id.label("unbuild_order_id"),
        )
        .select_from(best)
        .join(Lot, and_(Lot.item_id == best.c.item_id, Lot.code == best.c.lot_code))
        .join(via, and_(via.item_id == best.c.via_item_id, via.code == best.c.via_code))
        .outerjoin(P, P.id == best.c.order_id)
        .order_by(best.c.level, P.number, best.c.unbuild_id, Lot.code, via.code)
    )
    # Plain dicts validated once, in pydantic's compiled core: a model built per row
    # in Python took a third of a 1,000-row trace's time.
    data = [
        {
            **row._mapping,
            "production_order_number": format_number(row.number) if row.number else None,
        }
        for row in rows
    ]
    return LotTrace.model_validate({"lot": lot, "direction": direction, "data": data})
