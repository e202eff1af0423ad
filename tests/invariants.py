"""Invariants that hold over the whole database, checked when a backend's run ends:
after every test of the suite, on SQLite and on PostgreSQL."""

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prodorder_api.items.models import Item
from prodorder_api.money import ZERO
from prodorder_api.orders.models import OrderLabour, OrderReservation, ProductionOrder
from prodorder_api.stock.models import StockBalance, StockMovement

M = StockMovement


async def broken_invariants(engine: AsyncEngine) -> list[str]:
    problems: list[str] = []
    async with engine.connect() as conn:
        ledger = {
            (i, loc, lot): q
            for i, loc, lot, q in await conn.execute(
                select(M.item_id, M.location_id, M.lot_code, func.sum(M.quantity)).group_by(
                    M.item_id, M.location_id, M.lot_code
                )
            )
        }
        reservations = {
            (i, loc, lot): q
            for i, loc, lot, q in await conn.execute(
                select(
                    OrderReservation.item_id,
                    OrderReservation.location_id,
                    OrderReservation.lot_code,
                    func.sum(OrderReservation.quantity),
                ).group_by(
                    OrderReservation.item_id,
                    OrderReservation.location_id,
                    OrderReservation.lot_code,
                )
            )
        }
        balances = await conn.execute(
            select(
                StockBalance.item_id,
                StockBalance.location_id,
                StockBalance.lot_code,
                StockBalance.on_hand,
                StockBalance.reserved,
            )
        )
        for item_id, location_id, lot, on_hand, reserved in balances:
            key = (item_id, location_id, lot)
            if on_hand != ledger.pop(key, ZERO):
                problems.append(f"balance {key}: on_hand {on_hand} != ledger")
            if not ZERO <= reserved <= on_hand:
                problems.append(f"balance {key}: reserved {reserved} outside 0..{on_hand}")
            if reserved != reservations.get(key, ZERO):
                problems.append(f"balance {key}: reserved {reserved} != order reservations")
        problems += [f"movements without a balance: {k}" for k, q in ledger.items() if q != 0]

        values = dict(
            (await conn.execute(select(M.item_id, func.sum(M.value)).group_by(M.item_id))).all()
        )
        for item_id, stock_value in await conn.execute(select(Item.id, Item.stock_value)):
            if stock_value != values.get(item_id, ZERO):
                problems.append(f"item {item_id}: stock_value {stock_value} != Σ movement values")

        by_order: dict[object, dict[str, Decimal]] = {}
        for order_id, kind, value in await conn.execute(
            select(M.production_order_id, M.type, func.sum(M.value))
            .where(M.production_order_id.is_not(None))
            .group_by(M.production_order_id, M.type)
        ):
            by_order.setdefault(order_id, {})[kind] = value
        labour = dict(
            (
                await conn.execute(
                    select(OrderLabour.order_id, func.sum(OrderLabour.value)).group_by(
                        OrderLabour.order_id
                    )
                )
            ).all()
        )
        completed = await conn.execute(
            select(
                ProductionOrder.id,
                ProductionOrder.number,
                ProductionOrder.material_cost,
                ProductionOrder.labour_cost,
                ProductionOrder.output_value,
                ProductionOrder.scrap_value,
            ).where(ProductionOrder.status == "completed")
        )
        for order_id, number, material, booked, output, scrap in completed:
            ledger_values = by_order.get(order_id, {})
            consumed = -ledger_values.get("consumption", ZERO)
            received = ledger_values.get("output", ZERO)
            entries = labour.get(order_id, ZERO)
            balanced = material + booked == output + scrap
            if not (material == consumed and booked == entries and output == received and balanced):
                problems.append(
                    f"MO-{number:06d}: consumed {consumed} (order {material}) + labour "
                    f"{entries} (order {booked}) != output {received} (order {output}) "
                    f"+ scrap {scrap}"
                )
    return problems
