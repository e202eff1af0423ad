"""Orders that bend without breaking the books: hold and resume, split, backorders.

None of these moves stock. A held order keeps its reservations; a split divides them
between the two orders (the new one first, up to what it needs); a backorder is a new
planned order for what a completed order did not make. Every action is one
``service.record`` (history, version, event) on each order it touches.
"""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.boms.models import Bom
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.errors import ValidationFailed
from prodorder_api.money import ZERO, to_json
from prodorder_api.orders import materials, service
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.service import DEMAND_COLUMNS, NewOrder, for_action, record
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move


async def hold(
    session: AsyncSession, order_id: str, reason: str, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "hold", if_match, children=())
    order.held_from = order.status
    record(order, "hold", reason=reason)
    return order


async def resume(
    session: AsyncSession, order_id: str, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "resume", if_match, children=())
    record(order, "resume")
    order.held_from = None
    return order


async def split(
    session: AsyncSession, order_id: str, quantity: Decimal, if_match: Precondition = ANY
) -> tuple[ProductionOrder, ProductionOrder]:
    """Carve ``quantity`` off into a new order in the same status; the original and the
    new one."""
    order = await for_action(session, order_id, "split", if_match)
    if quantity >= order.quantity:
        raise ValidationFailed(
            ["body", "quantity"],
            f"must be less than the order's quantity {to_json(order.quantity)}",
        )
    bom = await service.resize(session, order, order.quantity - quantity)
    [new] = await service.place(session, [_like(order, bom, quantity)])
    new.split_from = order.id
    if order.status != new.status:  # made in the status of the order it comes from
        new.status, new.released_at = order.status, order.released_at
        new.history[0].to_status = order.status
    await _divide_reservations(session, order, new)
    record(order, "split", quantity=to_json(quantity), new_order_id=str(new.id))
    record(new, "split", quantity=to_json(quantity), split_from=str(order.id))
    return order, new


async def _divide_reservations(
    session: AsyncSession, order: ProductionOrder, new: ProductionOrder
) -> None:
    """The new order takes what its requirements need from the original's reservations
    (by location and lot, in a fixed order); the rest stays. What the original then holds
    beyond its own requirement (a rounding of the scrap factor) is freed."""
    needs = {r.component_item_id: r.required_quantity for r in new.requirements}
    for reservation in sorted(
        order.reservations, key=lambda r: (str(r.item_id), str(r.location_id), r.lot_code)
    ):
        take = min(reservation.quantity, needs.get(reservation.item_id, ZERO))
        if take <= 0:
            continue
        needs[reservation.item_id] -= take
        materials.change_held(
            order, reservation.item_id, reservation.location_id, reservation.lot_code, -take
        )
        materials.change_held(
            new, reservation.item_id, reservation.location_id, reservation.lot_code, take
        )
    excess: list[Move] = []
    for requirement in order.requirements:
        held = materials.reserved_by_item(order).get(requirement.component_item_id, ZERO)
        over = held - (requirement.required_quantity - requirement.consumed_quantity)
        for reservation in order.reservations:
            if over <= 0:
                break
            if reservation.item_id != requirement.component_item_id or reservation.quantity <= 0:
                continue
            free = min(over, reservation.quantity)
            over -= free
            excess.append(
                Move(
                    item_id=reservation.item_id,
                    location_id=reservation.location_id,
                    lot_code=reservation.lot_code,
                    reserved=-free,
                )
            )
            materials.change_held(
                order, reservation.item_id, reservation.location_id, reservation.lot_code, -free
            )
    if excess:
        await ledger.apply(session, excess)
    await materials.drop_empty_reservations(session, order)


async def backorder(session: AsyncSession, order: ProductionOrder) -> ProductionOrder | None:
    """A planned order for what ``order`` did not make (quantity − produced − scrapped),
    linked both ways; None when nothing is left to make."""
    rest = order.remaining_quantity
    if rest <= 0:
        return None
    bom = await service.bom_of(session, order)
    [new] = await service.place(session, [_like(order, bom, rest)])
    new.backorder_of = order.id
    order.backorder_id = new.id
    return new


def _like(order: ProductionOrder, bom: Bom, quantity: Decimal) -> NewOrder:
    """A planned order of ``quantity`` like ``order``: same product, BOM, locations,
    dates, priority, reference, notes, plan, demand and metadata."""
    return NewOrder(
        item_id=order.item_id,
        bom=bom,
        quantity=quantity,
        location_id=order.location_id,
        output_location_id=order.output_location_id,
        due_date=order.due_date,
        planned_start=order.planned_start,
        priority=order.priority,
        reference=order.reference,
        notes=order.notes,
        production_plan_id=order.production_plan_id,
        demand={name: getattr(order, name) for name in DEMAND_COLUMNS},
        meta=dict(order.meta),
    )
