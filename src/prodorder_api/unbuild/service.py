"""Unbuild: finished goods taken apart, their components back in stock, one transaction.

The goods leave at their current average cost (``disassembly``), and so do the
by-products their making gave off; the components come back (``recovery``):

* with ``production_order_id``, what that order *actually* consumed per unit it
  produced, lot by lot, net of what it returned (ERPNext settled this in
  frappe/erpnext#53667: a BOM that changed since says nothing about this unit);
* without it, the item's default BOM per unit of its output quantity (scrap factors
  left out: what was scrapped is not in the unit).

The value that left is shared over the recovered components in proportion to their
consumption value (what the order paid for them; by the BOM, their average cost), the
last line taking the remainder, so Σ out == Σ in exactly.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from prodorder_api.boms.models import Bom
from prodorder_api.errors import Conflict, NotFound, ValidationFailed
from prodorder_api.ids import new_id, parse_id
from prodorder_api.items import service as items
from prodorder_api.items.models import Item
from prodorder_api.locations import service as locations
from prodorder_api.money import ZERO, quantize, to_json
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT, StockMovement
from prodorder_api.unbuild.models import UnbuildOrder
from prodorder_api.unbuild.schemas import UnbuildCreate


@dataclass(frozen=True)
class Part:
    """A component to recover (or a by-product to take out) for the whole unbuild."""

    item_id: uuid.UUID
    lot_code: str
    quantity: Decimal
    weight: Decimal = ZERO  # its share of the value, before the weights are scaled


async def unbuild(session: AsyncSession, data: UnbuildCreate) -> UnbuildOrder:
    product = await items.get_for_input(session, data.item_id, "item_id")
    location = await locations.resolve(session, data.location_id, "location_id")
    _check_goods(product, data)
    bom_id = None
    if data.production_order_id is not None:
        parts, by_products = await _from_order(session, product, data)
    else:
        bom = await _default_bom(session, product)
        bom_id = bom.id
        parts, by_products = _from_bom(bom, data.quantity)
    if not parts:
        raise Conflict("nothing to recover: the goods were made of nothing recorded")
    locked = await ledger.lock_items(
        session, {product.id, *(p.item_id for p in parts), *(b.item_id for b in by_products)}
    )
    _check_parts(parts, locked)
    unbuild_id = new_id()
    out = [
        Move(
            item_id=product.id,
            location_id=location,
            quantity=-data.quantity,
            type="disassembly",
            lot_code=data.lot_code or NO_LOT,
            serials=tuple(data.serials or ()),
            unbuild_order_id=unbuild_id,
            reason=data.reason,
        ),
        *(
            Move(
                item_id=b.item_id,
                location_id=location,
                quantity=-b.quantity,
                type="disassembly",
                lot_code=b.lot_code,
                unbuild_order_id=unbuild_id,
                reason=data.reason,
            )
            for b in by_products
        ),
    ]
    left = await ledger.apply(session, out)
    value = -sum((m.value for m in left), ZERO)
    back = [
        Move(
            item_id=part.item_id,
            location_id=location,
            quantity=part.quantity,
            type="recovery",
            lot_code=part.lot_code,
            value=share,
            unbuild_order_id=unbuild_id,
            reason=data.reason,
        )
        for part, share in zip(parts, _shares(value, parts, locked), strict=True)
    ]
    await ledger.apply(session, back)
    order = UnbuildOrder(
        id=unbuild_id,
        item_id=product.id,
        quantity=data.quantity,
        production_order_id=data.production_order_id,
        bom_id=bom_id,
        location_id=location,
        lot_code=data.lot_code,
        serials=data.serials,
        reason=data.reason,
        value=value,
    )
    session.add(order)
    await session.flush()
    return order


def _check_goods(product: Item, data: UnbuildCreate) -> None:
    if product.tracking == "lot" and data.lot_code is None:
        raise ValidationFailed(["body", "lot_code"], "required for a lot-tracked item")
    if product.tracking != "lot" and data.lot_code is not None:
        raise ValidationFailed(["body", "lot_code"], "the item is not lot-tracked")
    if product.tracking == "serial" and len(data.serials or ()) != data.quantity:
        raise ValidationFailed(["body", "serials"], "one serial per unit taken apart")


def _check_parts(parts: list[Part], locked: dict[uuid.UUID, Item]) -> None:
    for part in parts:
        item = locked[part.item_id]
        if item.tracking == "serial":
            raise Conflict(
                f"{item.sku} is serial-tracked: its units cannot be recovered by unbuild"
            )
        if item.tracking == "lot" and not part.lot_code:
            raise ValidationFailed(
                ["body", "production_order_id"],
                f"{item.sku} is lot-tracked: name the production order whose lots come back",
            )


async def _default_bom(session: AsyncSession, product: Item) -> Bom:
    bom = await session.scalar(
        select(Bom)
        .where(Bom.item_id == product.id, Bom.is_default)
        .options(selectinload(Bom.lines), selectinload(Bom.by_products))
    )
    if bom is None:
        raise ValidationFailed(
            ["body", "production_order_id"], "the item has no default BOM: name a production order"
        )
    return bom


def _from_bom(bom: Bom, quantity: Decimal) -> tuple[list[Part], list[Part]]:
    per = quantity / bom.output_quantity
    parts = [
        Part(line.component_item_id, NO_LOT, quantize(line.quantity * per)) for line in bom.lines
    ]
    by_products = [Part(b.item_id, NO_LOT, quantize(b.quantity * per)) for b in bom.by_products]
    return [p for p in parts if p.quantity > 0], [b for b in by_products if b.quantity > 0]


async def _from_order(
    session: AsyncSession, product: Item, data: UnbuildCreate
) -> tuple[list[Part], list[Part]]:
    """Per lot, what the order consumed net of returns (valued at what it paid) and the
    by-products it gave off, for ``data.quantity`` of the units it produced."""
    order = await session.get(ProductionOrder, data.production_order_id)
    field: list[str | int] = ["body", "production_order_id"]
    if order is None:
        raise ValidationFailed(field, f"no production order with id {data.production_order_id}")
    if order.item_id != product.id:
        raise ValidationFailed(field, "the order made another item")
    if data.quantity > order.produced_quantity:
        raise ValidationFailed(
            ["body", "quantity"],
            f"the order produced {to_json(order.produced_quantity)}: no more can be unbuilt by it",
        )
    M = StockMovement
    rows = await session.execute(
        select(M.item_id, M.lot_code, M.type, func.sum(M.quantity), func.sum(M.value))
        .where(M.production_order_id == order.id, M.type.in_(("consumption", "return", "output")))
        .group_by(M.item_id, M.lot_code, M.type)
        .order_by(M.item_id, M.lot_code)
    )
    used: dict[tuple[uuid.UUID, str], tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    made: list[Part] = []
    share = data.quantity / order.produced_quantity
    for item_id, lot, kind, quantity, value in rows:
        if kind == "output":
            if item_id != order.item_id:  # a by-product
                made.append(Part(item_id, lot, quantize(quantity * share)))
            continue
        held, paid = used[(item_id, lot)]
        used[(item_id, lot)] = (held - quantity, paid - value)
    parts = [
        Part(item_id, lot, quantize(held * share), paid * share)
        for (item_id, lot), (held, paid) in used.items()
    ]
    return [p for p in parts if p.quantity > 0], [b for b in made if b.quantity > 0]


def _shares(value: Decimal, parts: list[Part], locked: dict[uuid.UUID, Item]) -> list[Decimal]:
    """``value`` over the parts by weight (by the BOM: quantity × average cost; all
    weights zero: by quantity), to six places, the last taking the remainder."""
    weights = [
        p.weight
        if p.weight
        else p.quantity
        * (locked[p.item_id].average_cost or locked[p.item_id].standard_cost or ZERO)
        for p in parts
    ]
    if sum(weights, ZERO) <= 0:
        weights = [p.quantity for p in parts]
    total = sum(weights, ZERO)
    shares = [quantize(value * w / total) for w in weights[:-1]]
    return [*shares, value - sum(shares, ZERO)]


async def get(session: AsyncSession, unbuild_id: str) -> tuple[UnbuildOrder, list[StockMovement]]:
    parsed = parse_id(unbuild_id)
    order = await session.get(UnbuildOrder, parsed) if parsed is not None else None
    if order is None:
        raise NotFound(f"no unbuild order with id {unbuild_id}")
    return order, await movements_of(session, [order.id])


async def movements_of(session: AsyncSession, unbuild_ids: list[uuid.UUID]) -> list[StockMovement]:
    if not unbuild_ids:
        return []
    return list(
        await session.scalars(
            select(StockMovement)
            .where(StockMovement.unbuild_order_id.in_(unbuild_ids))
            .order_by(StockMovement.id)
        )
    )


async def list_unbuilds(
    session: AsyncSession, params: PageParams, item_id: uuid.UUID | None
) -> tuple[list[UnbuildOrder], str | None]:
    stmt = select(UnbuildOrder)
    if item_id is not None:
        stmt = stmt.where(UnbuildOrder.item_id == item_id)
    return await paginate(session, stmt, UnbuildOrder.id, params)
