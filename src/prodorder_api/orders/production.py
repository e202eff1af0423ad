"""Work reported against an in-progress order: consumptions, outputs, scrap, completion.

Costing. Each consumption is valued at the component's moving average and adds to
the order's ``material_cost``. Each output (and each scrap) relieves what its own
backflush consumed, plus a share of the cost that was unrelieved before it (manual
issues made for all units): ``unrelieved × units ÷ units still expected``.
Completion relieves the rest onto the finished item, or writes it off when nothing
was produced. So per order ``Σ consumption value == Σ output value + scrap value``,
exactly, with no rounding left behind.
"""

from decimal import Decimal, localcontext

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.boms import service as boms
from prodorder_api.boms.models import Bom, BomByProduct
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.errors import ValidationFailed
from prodorder_api.items.models import Item
from prodorder_api.money import EXACT_CONTEXT, ZERO, div, mul, quantize
from prodorder_api.orders import bending, materials
from prodorder_api.orders.materials import Issue
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.schemas import CompleteRequest, ConsumptionRequest, OutputRequest
from prodorder_api.orders.service import for_action, record
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import NO_LOT, StockBalance


async def consume(
    session: AsyncSession, order_id: str, data: ConsumptionRequest, if_match: Precondition = ANY
) -> ProductionOrder:
    """Manual issue: from the order's reservation first, then free stock. Items outside
    the BOM are allowed and recorded as requirements of their own."""
    order = await for_action(session, order_id, "consume", if_match)
    for i, line in enumerate(data.lines):
        if await session.get(Item, line.item_id) is None:
            raise ValidationFailed(["body", "lines", i, "item_id"], f"no item {line.item_id}")
    issues = [
        Issue(line.item_id, line.quantity, line.lot_code, tuple(line.serials or ()))
        for line in data.lines
    ]
    movements = await materials.issue(session, order, issues)
    record(order, "consume", lines=len(issues), value=str(-sum((m.value for m in movements), ZERO)))
    return order


async def output(
    session: AsyncSession, order_id: str, data: OutputRequest, if_match: Precondition = ANY
) -> ProductionOrder:
    order = await for_action(session, order_id, "output", if_match)
    await _report_output(
        session, order, data.quantity, data.lot_code, data.expiry_date, data.serials, final=False
    )
    record(order, "output", quantity=str(data.quantity), lot_code=data.lot_code)
    return order


async def scrap(
    session: AsyncSession,
    order_id: str,
    quantity: Decimal,
    reason: str,
    if_match: Precondition = ANY,
) -> ProductionOrder:
    """Finished units lost: their backflush components are consumed, nothing is received,
    and their share of the cost is written off as scrap value."""
    order = await for_action(session, order_id, "scrap", if_match)
    expected, before = order.remaining_quantity, order.unrelieved_cost
    flushed = await _backflush(
        session, order, order.produced_quantity + order.scrapped_quantity + quantity
    )
    share = flushed + _share(before, quantity, expected)
    order.scrapped_quantity += quantity
    order.scrap_value += share
    record(order, "scrap", quantity=str(quantity), reason=reason, value=str(share))
    return order


async def complete(
    session: AsyncSession, order_id: str, data: CompleteRequest, if_match: Precondition = ANY
) -> ProductionOrder:
    """Final output (default: what is still expected), backflush, leftover reservations
    freed, cost settled. Final."""
    order = await for_action(session, order_id, "complete", if_match)
    final = data.output_quantity if data.output_quantity is not None else order.remaining_quantity
    if final > 0:
        await _report_output(
            session, order, final, data.lot_code, data.expiry_date, data.serials, final=True
        )
    else:
        await _backflush(session, order, order.produced_quantity + order.scrapped_quantity)
        await _settle(session, order)
    await materials.free_reservations(session, order)
    unfinished = [op.sequence for op in order.operations if op.status != "done"]
    rest = await bending.backorder(session, order) if data.backorder else None
    record(
        order,
        "complete",
        output_quantity=str(final),
        unfinished_operations=unfinished or None,
        backorder_id=str(rest.id) if rest else None,
    )
    return order


async def _report_output(
    session: AsyncSession,
    order: ProductionOrder,
    quantity: Decimal,
    lot_code: str | None,
    expiry_date: object,
    serials: list[str] | None,
    *,
    final: bool,
) -> None:
    expected, before = order.remaining_quantity, order.unrelieved_cost
    issues = _backflush_issues(order, order.produced_quantity + order.scrapped_quantity + quantity)
    by_products = await _by_products(session, order)
    # Every item this output changes, locked at once: one statement, and the id order
    # holds across the backflush, the output and its by-products.
    await ledger.lock_items(
        session,
        {order.item_id, *(i.item_id for i in issues), *(item.id for _, item, _ in by_products)},
    )
    # The backflush and the output (valued by what it consumed) write together, and
    # the output's balance is locked with the backflush's.
    output = (order.item_id, order.output_location_id, lot_code or NO_LOT)
    async with ledger.batch(session, expect=[output]):
        flushed = await _issue_value(session, order, issues)
        relief = order.unrelieved_cost if final else flushed + _share(before, quantity, expected)
        moves = _by_product_moves(order, by_products, quantity, relief)
        by_product_value = sum((m.value or ZERO for m in moves), ZERO)
        value = relief - by_product_value
        moves.insert(
            0,
            Move(
                item_id=order.item_id,
                location_id=order.output_location_id,
                quantity=quantity,
                type="output",
                lot_code=lot_code or NO_LOT,
                value=value,
                unit_cost=div(value, quantity),
                expiry_date=expiry_date,  # type: ignore[arg-type]
                serials=tuple(serials or ()),
                production_order_id=order.id,
            ),
        )
        await ledger.apply(session, moves)
    order.produced_quantity += quantity
    order.output_value += relief


def _share(unrelieved: Decimal, units: Decimal, expected: Decimal) -> Decimal:
    """The part of ``unrelieved`` that ``units`` of the ``expected`` carry."""
    if units >= expected:
        return unrelieved
    with localcontext(EXACT_CONTEXT):
        return quantize(unrelieved * units / expected)


async def _backflush(session: AsyncSession, order: ProductionOrder, units: Decimal) -> Decimal:
    """Consume backflush components up to their share of ``units`` reported; returns
    the value consumed."""
    return await _issue_value(session, order, _backflush_issues(order, units))


def _backflush_issues(order: ProductionOrder, units: Decimal) -> list[Issue]:
    issues = []
    for requirement in order.requirements:
        if requirement.consumption != "backflush" or not requirement.in_bom:
            continue
        with localcontext(EXACT_CONTEXT):
            target = quantize(requirement.required_quantity * units / order.quantity)
        if target > requirement.consumed_quantity:
            issues.append(
                Issue(requirement.component_item_id, target - requirement.consumed_quantity)
            )
    return issues


async def _issue_value(
    session: AsyncSession, order: ProductionOrder, issues: list[Issue]
) -> Decimal:
    movements = await materials.issue(session, order, issues)
    return -sum((m.value for m in movements), ZERO)


ByProduct = tuple[BomByProduct, Item, Decimal]  # the line, its item, the BOM's output quantity


async def _by_products(session: AsyncSession, order: ProductionOrder) -> list[ByProduct]:
    known_none = boms.used_without(session, "by_products")  # the order's BOM is used
    if order.bom_id in known_none:
        return []
    rows = await session.execute(
        select(BomByProduct, Item, Bom.output_quantity)
        .join(Item, Item.id == BomByProduct.item_id)
        .join(Bom, Bom.id == BomByProduct.bom_id)
        .where(BomByProduct.bom_id == order.bom_id)
        .order_by(BomByProduct.position)
    )
    found = [(line, item, output) for line, item, output in rows]
    if not found:
        known_none.add(order.bom_id)
    return found


def _by_product_moves(
    order: ProductionOrder, by_products: list[ByProduct], quantity: Decimal, relief: Decimal
) -> list[Move]:
    """By-products come in with the output, valued at their own average (standard)
    cost, taken out of the relief so the order's cost still balances."""
    moves = []
    budget = relief
    for by_product, item, output_quantity in by_products:
        with localcontext(EXACT_CONTEXT):
            amount = quantize(by_product.quantity * quantity / output_quantity)
        if amount <= 0 or item.tracking != "none":
            continue  # tracked by-products need lots or serials the caller did not give
        unit = item.average_cost if item.average_cost is not None else item.standard_cost
        value = min(mul(amount, unit or ZERO), max(budget, ZERO))
        budget -= value
        moves.append(
            Move(
                item_id=item.id,
                location_id=order.output_location_id,
                quantity=amount,
                type="output",
                value=value,
                unit_cost=div(value, amount),
                production_order_id=order.id,
            )
        )
    return moves


async def _settle(session: AsyncSession, order: ProductionOrder) -> None:
    """Completion without a final output: the rest goes onto the finished stock, or is
    written off when nothing was produced or none of it is left on hand."""
    rest = order.unrelieved_cost
    if rest == 0:
        return
    on_hand = await session.scalar(
        select(func.coalesce(func.sum(StockBalance.on_hand), ZERO)).where(
            StockBalance.item_id == order.item_id
        )
    )
    if order.produced_quantity > 0 and (on_hand or ZERO) > 0:
        await ledger.apply(
            session,
            [
                Move(
                    item_id=order.item_id,
                    location_id=order.output_location_id,
                    quantity=ZERO,
                    type="output",
                    value=rest,
                    unit_cost=ZERO,
                    production_order_id=order.id,
                )
            ],
        )
        order.output_value += rest
    else:
        order.scrap_value += rest
