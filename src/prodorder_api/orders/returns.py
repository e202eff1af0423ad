"""Components given back from an order: issued, not used, back on the shelf.

A return is a movement of type ``return`` into the order's location, valued at what
the order paid on average for that item (Σ value ÷ Σ quantity of its consumptions,
less earlier returns), so the order's books stay exact: per order,
Σ consumption + Σ labour == Σ output + scrap + Σ returned. The last units of an item
to go back take exactly the value still on the order, never a rounding more or less.
"""

import uuid
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.errors import Conflict, ValidationFailed
from prodorder_api.money import ZERO, quantize, to_json
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import ReturnRequest
from prodorder_api.orders.service import for_action, record
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT, StockMovement

Key = tuple[uuid.UUID, str]  # item, lot ("" for untracked items)


async def give_back(
    session: AsyncSession, order_id: str, data: ReturnRequest, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "return", if_match, children=("requirements",))
    wanted: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    for line in data.lines:  # a dict keeps the lines' order
        wanted[(line.item_id, line.lot_code or NO_LOT)] += line.quantity
    items = await ledger.lock_items(session, {item_id for item_id, _ in wanted})
    for n, line in enumerate(data.lines):
        item = items.get(line.item_id)
        where: list[str | int] = ["body", "lines", n]
        if item is None:
            raise ValidationFailed([*where, "item_id"], f"no item with id {line.item_id}")
        if item.tracking == "serial":
            raise ValidationFailed(
                [*where, "item_id"], "serial-tracked components cannot be returned this way"
            )
        if item.tracking == "lot" and line.lot_code is None:
            raise ValidationFailed([*where, "lot_code"], "required for a lot-tracked item")
        if item.tracking != "lot" and line.lot_code is not None:
            raise ValidationFailed([*where, "lot_code"], "the item is not lot-tracked")
    by_lot, by_item = await _consumed(session, order, {item_id for item_id, _ in wanted})
    returning: dict[uuid.UUID, Decimal] = defaultdict(lambda: ZERO)
    for (item_id, lot), quantity in wanted.items():
        held = by_lot.get((item_id, lot), ZERO)
        if quantity > held:
            lot_text = f" of lot {lot}" if lot else ""
            raise Conflict(
                f"the order consumed {to_json(held)}{lot_text} of {items[item_id].sku} net of "
                f"returns; {to_json(quantity)} cannot go back"
            )
        returning[item_id] += quantity
    moves = _moves(order, wanted, returning, by_item)
    await ledger.apply(session, moves)
    value = sum((m.value or ZERO for m in moves), ZERO)
    for requirement in order.requirements:
        requirement.consumed_quantity -= returning.get(requirement.component_item_id, ZERO)
    order.material_cost -= value
    record(
        order,
        "return",
        returned=[
            {
                "item_id": str(m.item_id),
                "lot_code": m.lot_code or None,
                "quantity": to_json(m.quantity),
                "value": to_json(m.value or ZERO),
            }
            for m in moves
        ],
    )
    return order


def _moves(
    order: ProductionOrder,
    wanted: dict[Key, Decimal],
    returning: dict[uuid.UUID, Decimal],
    by_item: dict[uuid.UUID, tuple[Decimal, Decimal]],
) -> list[Move]:
    """One ``return`` move per item and lot. Each is valued at the item's average on
    the order; when all of an item that is left goes back, its last move takes the
    remainder, so what the order paid for it leaves exactly."""
    left = dict(by_item)  # item → (quantity, value) still on the order
    everything = {item_id: q == by_item[item_id][0] for item_id, q in returning.items()}
    to_go = dict(returning)
    moves = []
    for (item_id, lot), quantity in wanted.items():
        consumed, paid = left[item_id]
        to_go[item_id] -= quantity
        last = everything[item_id] and to_go[item_id] == 0
        value = paid if last else quantize(paid * quantity / consumed)
        left[item_id] = (consumed - quantity, paid - value)
        moves.append(
            Move(
                item_id=item_id,
                location_id=order.location_id,
                quantity=quantity,
                type="return",
                lot_code=lot,
                value=value,
                production_order_id=order.id,
            )
        )
    return moves


async def _consumed(
    session: AsyncSession, order: ProductionOrder, item_ids: set[uuid.UUID]
) -> tuple[dict[Key, Decimal], dict[uuid.UUID, tuple[Decimal, Decimal]]]:
    """What the order holds of each item net of returns: per lot, its quantity; per
    item, its quantity and the value paid for it. One query."""
    M = StockMovement
    rows = await session.execute(
        select(M.item_id, M.lot_code, func.sum(M.quantity), func.sum(M.value))
        .where(
            M.production_order_id == order.id,
            M.type.in_(("consumption", "return")),
            M.item_id.in_(item_ids),
        )
        .group_by(M.item_id, M.lot_code)
    )
    by_lot: dict[Key, Decimal] = {}
    by_item: dict[uuid.UUID, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    for item_id, lot, quantity, value in rows:
        by_lot[(item_id, lot)] = -quantity
        held, paid = by_item[item_id]
        by_item[item_id] = (held - quantity, paid - value)
    return by_lot, by_item
