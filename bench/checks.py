"""After a run: the whole database still adds up, and every 2xx the driver saw left
its effect.

The whole-database invariants are the test suite's own (``tests/invariants.py``:
ledger == balances, 0 <= reserved <= on_hand, reserved == Σ order reservations,
item values == Σ movement values, each completed order's cost balanced), so the
benchmark and the tests cannot disagree on what "consistent" means.
"""

from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine
from tests.invariants import broken_invariants

# What each status leaves behind for a 5-line BOM, quantity 1 (see bench.fixtures).
_EFFECTS_SQL = """
SELECT o.id::text, o.reference, o.status, o.quantity, o.produced_quantity,
       (SELECT count(*) FROM stock_movements m
         WHERE m.production_order_id = o.id AND m.type = 'output') AS outputs,
       (SELECT coalesce(sum(m.quantity), 0) FROM stock_movements m
         WHERE m.production_order_id = o.id AND m.type = 'output'
           AND m.item_id = o.item_id) AS output_quantity,
       (SELECT count(*) FROM stock_movements m
         WHERE m.production_order_id = o.id AND m.type = 'consumption') AS consumptions,
       (SELECT count(*) FROM order_reservations r WHERE r.order_id = o.id) AS reservations,
       (SELECT coalesce(sum(r.quantity), 0) FROM order_reservations r
         WHERE r.order_id = o.id) AS reserved,
       (SELECT coalesce(sum(q.required_quantity), 0) FROM order_requirements q
         WHERE q.order_id = o.id) AS required,
       (SELECT coalesce(sum(q.consumed_quantity), 0) FROM order_requirements q
         WHERE q.order_id = o.id) AS consumed,
       (SELECT count(*) FROM order_history h WHERE h.order_id = o.id) AS history
FROM production_orders o
WHERE o.reference LIKE $1
"""
_HISTORY = {"planned": 1, "released": 2, "in_progress": 3, "completed": 4}


async def whole_database(sqlalchemy_url: str) -> list[str]:
    engine = create_async_engine(sqlalchemy_url)
    try:
        problems = await broken_invariants(engine)
    finally:
        await engine.dispose()
    return problems + await _nothing_negative(sqlalchemy_url)


async def _nothing_negative(sqlalchemy_url: str) -> list[str]:
    conn = await asyncpg.connect(_dsn(sqlalchemy_url))
    try:
        rows = await conn.fetch(
            "SELECT item_id::text, location_id::text, lot_code, on_hand, reserved "
            "FROM stock_balances WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand"
        )
    finally:
        await conn.close()
    return [f"balance {r[0]}/{r[1]}/{r[2]!r}: on_hand {r[3]}, reserved {r[4]}" for r in rows]


async def effects(sqlalchemy_url: str, prefix: str, orders: list[dict[str, Any]]) -> list[str]:
    """Each order the driver made is in the database exactly as its last 2xx left it."""
    conn = await asyncpg.connect(_dsn(sqlalchemy_url))
    try:
        rows = {r["reference"]: r for r in await conn.fetch(_EFFECTS_SQL, prefix + "-%")}
    finally:
        await conn.close()
    problems = []
    seen = set()
    for order in orders:
        seen.add(order["reference"])
        row = rows.get(order["reference"])
        if order["status"] is None:  # create refused: nothing may exist
            if row is not None and "unknown" not in order:
                problems.append(f"{order['reference']}: refused create left order {row['id']}")
            continue
        if row is None or row["id"] != order["id"]:
            problems.append(f"{order['reference']}: created as {order['id']}, not in database")
            continue
        if "unknown" in order:  # a request broke mid-way: only the ledger checks apply
            continue
        problems += _effect(order, row)
    problems += [
        f"{ref}: in the database, never created by the driver" for ref in rows.keys() - seen
    ]
    return problems


def _effect(order: dict[str, Any], row: asyncpg.Record) -> list[str]:
    name = f"{order['number']} ({order['reference']})"
    status = order["status"]
    if row["status"] != status:
        return [f"{name}: the driver saw {status}, the database has {row['status']}"]
    wrong = []
    if row["history"] != _HISTORY.get(status):
        wrong.append(f"{row['history']} history entries")
    if status == "completed":
        if row["outputs"] != 1 or row["output_quantity"] != row["quantity"]:
            wrong.append(f"{row['outputs']} outputs of {row['output_quantity']}")
        if row["produced_quantity"] != row["quantity"]:
            wrong.append(f"produced {row['produced_quantity']}")
        if row["consumptions"] != 5 or row["consumed"] != row["required"]:
            wrong.append(f"{row['consumptions']} consumptions of {row['consumed']}")
        if row["reservations"]:
            wrong.append(f"{row['reservations']} reservations left")
    elif status in ("released", "in_progress"):
        if row["reservations"] != 5 or row["reserved"] != row["required"]:
            wrong.append(f"{row['reservations']} reservations of {row['reserved']}")
        if row["outputs"] or row["consumptions"]:
            wrong.append("stock moved before completion")
    elif row["reservations"] or row["outputs"] or row["consumptions"]:
        wrong.append("stock held or moved while planned")
    if row["required"] <= Decimal(0):
        wrong.append("no requirements")
    return [f"{name} ({status}): {', '.join(wrong)}"] if wrong else []


def _dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
