"""Invariants that hold over the whole database, checked when a backend's run ends:
after every test of the suite, on SQLite and on PostgreSQL."""

from collections import Counter
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodorder_api.events.models import Event
from prodorder_api.items.models import Item
from prodorder_api.money import ZERO
from prodorder_api.orders.models import OrderLabour, OrderReservation, ProductionOrder
from prodorder_api.stock.models import StockBalance, StockMovement
from prodorder_api.webhooks.models import WebhookAttempt, WebhookDelivery

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
            # Net of what went back to stock: Σ consumption == material + Σ returned.
            consumed = -ledger_values.get("consumption", ZERO) - ledger_values.get("return", ZERO)
            received = ledger_values.get("output", ZERO)
            entries = labour.get(order_id, ZERO)
            balanced = material + booked == output + scrap
            if not (material == consumed and booked == entries and output == received and balanced):
                problems.append(
                    f"MO-{number:06d}: consumed {consumed} (order {material}) + labour "
                    f"{entries} (order {booked}) != output {received} (order {output}) "
                    f"+ scrap {scrap}"
                )
        # An unbuild moves value, never makes or loses it: Σ out == Σ in, exactly.
        for unbuild_id, value in await conn.execute(
            select(M.unbuild_order_id, func.sum(M.value))
            .where(M.unbuild_order_id.is_not(None))
            .group_by(M.unbuild_order_id)
        ):
            if value != 0:
                problems.append(f"unbuild {unbuild_id}: its movements' values sum to {value}")
        problems += await _broken_outbox(conn)
    return problems


async def _broken_outbox(conn: AsyncConnection) -> list[str]:
    """Every change has its event, exactly once; the feed has no gaps; a delivery that
    succeeded has the 2xx attempt that says so."""
    problems: list[str] = []
    positioned, top = (
        await conn.execute(select(func.count(Event.position), func.max(Event.position)))
    ).one()
    if positioned != (top or 0):
        problems.append(f"event positions have gaps: {positioned} events up to {top}")

    announced: list[str] = []
    for (data,) in await conn.execute(select(Event.data).where(Event.type == "stock.changed")):
        announced += [m["id"] for m in data["movements"]]
    ledger = {str(i) for i in await conn.scalars(select(M.id))}
    if len(announced) != len(set(announced)):
        problems.append("a stock movement is in more than one stock.changed event")
    if set(announced) != ledger:
        missing, extra = ledger - set(announced), set(announced) - ledger
        problems.append(
            f"stock.changed events vs ledger: {len(missing)} movements without an event "
            f"(e.g. {sorted(missing)[:3]}), {len(extra)} events for no movement"
        )

    created = Counter(
        data["id"]
        for (data,) in await conn.execute(
            select(Event.data).where(Event.type == "production_order.created")
        )
    )
    for order_id in await conn.scalars(select(ProductionOrder.id)):
        if created.get(str(order_id)) != 1:
            problems.append(f"order {order_id}: {created.get(str(order_id), 0)} created events")

    unproven = await conn.scalars(
        select(WebhookDelivery.id).where(
            WebhookDelivery.status == "succeeded",
            ~select(WebhookAttempt.id)
            .where(
                WebhookAttempt.delivery_id == WebhookDelivery.id,
                WebhookAttempt.status_code >= 200,
                WebhookAttempt.status_code < 300,
            )
            .exists(),
        )
    )
    problems += [f"delivery {d} succeeded without a 2xx attempt" for d in unproven]
    return problems
