"""What `make soak` checks in the database once the load and the kills are over.

Stock: the ledger equals the balances, nothing is negative or over-reserved,
reservations add up and belong to open orders, item values equal their movements,
order costs balance (and `tests/invariants.py`, which the test suite runs after
every backend's run, must agree).

Idempotency, from what the client saw for every key: a key answered 2xx took effect
exactly once (receipts and adjustments carry their key as `reference`, orders too;
order actions are counted in the order's history), a refused key not at all, and
nothing took effect that no key asked for.

Outbox: every order has its `production_order.created` event and one for each
transition its history shows, when the build writes events at all.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg

from bench.pg import asyncpg_dsn

if TYPE_CHECKING:
    from bench.soak import Api, World

ZERO = Decimal(0)
# The history action an order's key stands for, and the event it must have written.
EVENT_FOR_ACTION = {
    "create": "production_order.created",
    "release": "production_order.released",
    "start": "production_order.started",
    "output": "production_order.output_recorded",
    "complete": "production_order.completed",
    "cancel": "production_order.cancelled",
}
TARGET = {"release": "released", "start": "in_progress", "complete": "completed"}
TARGET["cancel"] = "cancelled"


@dataclass
class Check:
    name: str
    status: str  # ok | FAIL | skipped
    details: list[str] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, details: list[str] | None = None) -> None:
        self.checks.append(Check(name, "ok" if ok else "FAIL", [] if ok else details or []))

    def skip(self, name: str, why: str) -> None:
        self.checks.append(Check(name, "skipped", [why]))

    @property
    def ok(self) -> bool:
        return all(c.status != "FAIL" for c in self.checks)

    def print(self) -> None:
        print("\n=== checks ===")
        for check in self.checks:
            print(f"[{check.status:^7}] {check.name}")
            for line in check.details[:10]:
                print(f"          {line}")
            if len(check.details) > 10:
                print(f"          … and {len(check.details) - 10} more")
        failed = sum(c.status == "FAIL" for c in self.checks)
        skipped = sum(c.status == "skipped" for c in self.checks)
        verdict = "PASS" if self.ok else f"FAIL ({failed} check(s) violated)"
        print(f"\nsoak: {verdict}; {len(self.checks)} checks, {skipped} skipped")


async def check_database(report: Report, url: str, world: "World", api: "Api") -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await _stock(report, conn)
        await _orders_cost(report, conn)
        await _idempotency(report, conn, world, api)
        await _order_actions(report, conn, world, api)
        _races(report, world)
        await _outbox(report, conn, world)
    finally:
        await conn.close()
    await _shared_invariants(report, url)


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql, *args))


async def _stock(report: Report, conn: asyncpg.Connection) -> None:
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM stock_balances) AS balances, "
        "(SELECT count(*) FROM stock_movements) AS movements, "
        "(SELECT count(*) FROM order_reservations) AS reservations"
    )
    sizes = f"{counts['balances']} balances, {counts['movements']} movements"
    drift = await _rows(
        conn,
        """SELECT item_id, location_id, lot_code, b.on_hand, m.total
             FROM stock_balances b
             FULL JOIN (SELECT item_id, location_id, lot_code, sum(quantity) AS total
                          FROM stock_movements GROUP BY 1, 2, 3) m
                  USING (item_id, location_id, lot_code)
            WHERE coalesce(b.on_hand, 0) <> coalesce(m.total, 0)""",
    )
    report.add(
        f"ledger == balances: Σ movements per item/location/lot == on_hand ({sizes})",
        not drift,
        [
            f"{r['item_id']}/{r['lot_code'] or '-'}: on_hand {r['on_hand']} ≠ Σ {r['total']}"
            for r in drift
        ],
    )
    negative = await _rows(
        conn,
        "SELECT item_id, lot_code, on_hand, reserved FROM stock_balances "
        "WHERE on_hand < 0 OR reserved < 0",
    )
    negative += await _rows(
        conn,
        "SELECT item_id, lot_code, quantity AS on_hand, NULL AS reserved "
        "FROM order_reservations WHERE quantity <= 0",
    )
    report.add(
        "nothing negative: on_hand ≥ 0, reserved ≥ 0, every reservation > 0",
        not negative,
        [
            f"{r['item_id']}/{r['lot_code'] or '-'}: {r['on_hand']} / {r['reserved']}"
            for r in negative
        ],
    )
    over = await _rows(
        conn,
        "SELECT item_id, lot_code, on_hand, reserved FROM stock_balances WHERE reserved > on_hand",
    )
    mismatch = await _rows(
        conn,
        """SELECT item_id, location_id, lot_code, b.reserved, r.total
             FROM stock_balances b
             FULL JOIN (SELECT item_id, location_id, lot_code, sum(quantity) AS total
                          FROM order_reservations GROUP BY 1, 2, 3) r
                  USING (item_id, location_id, lot_code)
            WHERE coalesce(b.reserved, 0) <> coalesce(r.total, 0)""",
    )
    report.add(
        f"nothing over-reserved: reserved ≤ on_hand and reserved == Σ order reservations "
        f"({counts['reservations']} reservations)",
        not over and not mismatch,
        [
            f"{r['item_id']}/{r['lot_code'] or '-'}: reserved {r['reserved']} > {r['on_hand']}"
            for r in over
        ]
        + [
            f"{r['item_id']}/{r['lot_code'] or '-'}: reserved {r['reserved']} ≠ Σ {r['total']}"
            for r in mismatch
        ],
    )
    held = await _rows(
        conn,
        """SELECT o.number, o.status, sum(r.quantity) AS held FROM order_reservations r
             JOIN production_orders o ON o.id = r.order_id
            WHERE o.status IN ('completed', 'cancelled') GROUP BY 1, 2""",
    )
    report.add(
        "completed and cancelled orders hold no reservations",
        not held,
        [f"MO-{r['number']:06d} ({r['status']}) holds {r['held']}" for r in held],
    )
    values = await _rows(
        conn,
        """SELECT i.sku, i.stock_value, coalesce(m.total, 0) AS total FROM items i
             LEFT JOIN (SELECT item_id, sum(value) AS total FROM stock_movements GROUP BY 1) m
                  ON m.item_id = i.id
            WHERE i.stock_value <> coalesce(m.total, 0)""",
    )
    report.add(
        "item value == Σ movement values, per item",
        not values,
        [f"{r['sku']}: stock_value {r['stock_value']} ≠ Σ {r['total']}" for r in values],
    )


async def _orders_cost(report: Report, conn: asyncpg.Connection) -> None:
    rows = await _rows(
        conn,
        """SELECT o.number, o.status, o.material_cost, o.labour_cost, o.output_value,
                  o.scrap_value,
                  coalesce(-sum(m.value) FILTER (WHERE m.type = 'consumption'), 0) AS consumed,
                  coalesce(sum(m.value) FILTER (WHERE m.type = 'output'), 0) AS received
             FROM production_orders o
             LEFT JOIN stock_movements m ON m.production_order_id = o.id
            GROUP BY o.id""",
    )
    labour = {
        r["number"]: r["total"]
        for r in await _rows(
            conn,
            "SELECT o.number, sum(l.value) AS total FROM order_labour l "
            "JOIN production_orders o ON o.id = l.order_id GROUP BY 1",
        )
    }
    problems = []
    completed = 0
    for r in rows:
        booked = labour.get(r["number"], ZERO)
        ledger_ok = r["material_cost"] == r["consumed"] and r["output_value"] == r["received"]
        ledger_ok = ledger_ok and r["labour_cost"] == booked
        balanced = True
        if r["status"] == "completed":
            completed += 1
            balanced = r["material_cost"] + r["labour_cost"] == r["output_value"] + r["scrap_value"]
        if not (ledger_ok and balanced):
            problems.append(
                f"MO-{r['number']:06d} ({r['status']}): consumed {r['consumed']} (order "
                f"{r['material_cost']}) + labour {booked} (order {r['labour_cost']}) vs output "
                f"{r['received']} (order {r['output_value']}) + scrap {r['scrap_value']}"
            )
    report.add(
        f"order costs match the ledger ({len(rows)} orders), and balance for the "
        f"{completed} completed: Σ consumption + labour == Σ output + scrap",
        not problems,
        problems,
    )


async def _idempotency(
    report: Report, conn: asyncpg.Connection, world: "World", api: "Api"
) -> None:
    prefix = f"soak-{api.tag}-%"
    stock_keys = {k: r for k, r in api.keys.items() if r.kind in ("receipt", "adjustment")}
    moved = Counter(
        {
            r["reference"]: r["n"]
            for r in await _rows(
                conn,
                "SELECT reference, count(*) AS n FROM stock_movements "
                "WHERE reference LIKE $1 GROUP BY 1",
                prefix,
            )
        }
    )
    problems = _exactly_once(stock_keys, moved, "movement(s)")
    applied = sum(r.outcome == "applied" for r in stock_keys.values())
    report.add(
        f"receipts and adjustments: each key with a 2xx is exactly one movement (reference == "
        f"key), a refused key none ({applied} applied of {len(stock_keys)} keys)",
        not problems,
        problems,
    )

    create_keys = {k: r for k, r in api.keys.items() if r.kind == "create"}
    created = Counter(
        {
            r["reference"]: r["n"]
            for r in await _rows(
                conn,
                "SELECT reference, count(*) AS n FROM production_orders "
                "WHERE reference IS NOT NULL GROUP BY 1",
            )
        }
    )
    orders = sum(created.values())
    problems = _exactly_once(create_keys, created, "order(s)")
    report.add(
        f"order creation: each key with a 2xx is exactly one order (reference == key), none "
        f"else ({orders} orders in the database)",
        not problems,
        problems,
    )

    stored = Counter(
        {
            r["key"]: r["n"]
            for r in await _rows(
                conn,
                "SELECT key, count(*) AS n FROM idempotency_keys WHERE key LIKE $1 GROUP BY 1",
                prefix,
            )
        }
    )
    records = sum(stored.values())
    problems = _exactly_once(api.keys, stored, "idempotency record(s)")
    report.add(
        f"idempotency records: exactly one per key with a 2xx, none for a refused one "
        f"({records} records)",
        not problems,
        problems,
    )


def _exactly_once(keys: dict[str, Any], found: Counter[str], what: str) -> list[str]:
    problems = []
    for key, record in keys.items():
        n = found.pop(key, 0)
        wrong = n != 1 if record.outcome == "applied" else n != 0
        if record.outcome in ("applied", "refused", "error") and wrong:
            problems.append(f"{record.kind} {key}: answered {record.status}, but {n} {what}")
        elif record.outcome == "unresolved" and n > 1:
            problems.append(f"{record.kind} {key}: never answered, and {n} {what}")
    problems += [
        f"{n} {what} for {ref!r}, which no client key asked for" for ref, n in found.items()
    ]
    return problems


async def _order_actions(
    report: Report, conn: asyncpg.Connection, world: "World", api: "Api"
) -> None:
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for r in await _rows(
        conn, "SELECT order_id, action, count(*) AS n FROM order_history GROUP BY 1, 2"
    ):
        history[str(r["order_id"])][r["action"]] = r["n"]
    state = {
        str(r["id"]): r
        for r in await _rows(conn, "SELECT id, status, produced_quantity FROM production_orders")
    }
    problems = []
    checked = skipped = 0
    for order in world.orders:
        if order.id is None:
            continue
        records = [api.keys[k] for k in order.keys]
        if any(r.outcome == "unresolved" for r in records):
            skipped += 1
            continue
        checked += 1
        expected: Counter[str] = Counter({"create": 1})
        status, produced = "planned", ZERO
        for record in records:
            if record.outcome != "applied":
                continue
            expected[record.kind] += 1
            status = TARGET.get(record.kind, status)
            produced += record.quantity or ZERO
        row = state.get(order.id)
        if row is None:
            problems.append(f"order {order.id}: answered 201 but not in the database")
            continue
        actual = history[order.id]
        if actual != expected:
            problems.append(
                f"order {order.id}: history {dict(actual)} but 2xx answers {dict(expected)}"
            )
        if row["status"] != status or row["produced_quantity"] != produced:
            problems.append(
                f"order {order.id}: {row['status']}, produced {row['produced_quantity']}; "
                f"the client's 2xx answers say {status}, produced {produced}"
            )
    report.add(
        f"order actions: each release/start/output/complete/cancel with a 2xx is in the history "
        f"exactly once, none else; status and produced quantity agree ({checked} orders"
        + (f", {skipped} with an unanswered key skipped)" if skipped else ")"),
        not problems,
        problems,
    )


def _races(report: Report, world: "World") -> None:
    known = [r for r in world.race_rounds if r["known"]]
    wrong = [r for r in known if r["wins"] != r["expected"]]
    report.add(
        f"racing releases: in each of {len(known)} rounds with exactly known stock, exactly "
        f"min(contenders, available ÷ per order) releases won, the rest got 409 "
        f"({sum(r['wins'] for r in known)} won, "
        f"{sum(r['contenders'] - r['wins'] for r in known)} refused)",
        not wrong and bool(known),
        [
            f"{r['contenders']} contenders for {r['available']} free: {r['wins']} won, "
            f"{r['expected']} should have"
            for r in wrong
        ]
        or ["no round with exactly known stock"],
    )


async def _outbox(report: Report, conn: asyncpg.Connection, world: "World") -> None:
    total = int(await conn.fetchval("SELECT count(*) FROM events"))
    orders = int(await conn.fetchval("SELECT count(*) FROM production_orders"))
    changes = int(await conn.fetchval("SELECT count(*) FROM order_history"))
    name = "outbox: every order has its production_order.created event and one per transition"
    if world.outbox_probe == 0 and total == 0:
        why = (
            f"NOT CHECKABLE in this build: the events table is empty after {orders} orders and "
            f"{changes} committed order changes (events.service.write_pending writes no rows "
            "here); the check becomes strict once it does"
        )
        if world.require_outbox:
            report.add(name, False, [why])
        else:
            report.skip(name, why)
        return
    events: dict[str, Counter[str]] = defaultdict(Counter)
    for r in await _rows(
        conn,
        """SELECT type, coalesce(data->>'id', data->'data'->>'id', data->'object'->>'id',
                                 data->'production_order'->>'id') AS order_id,
                  count(*) AS n
             FROM events WHERE type LIKE 'production_order.%' GROUP BY 1, 2""",
    ):
        events[str(r["order_id"])][r["type"]] += r["n"]
    problems = []
    history = await _rows(
        conn,
        "SELECT o.id, o.number, h.action, count(*) AS n FROM order_history h "
        "JOIN production_orders o ON o.id = h.order_id GROUP BY 1, 2, 3",
    )
    for r in history:
        wanted = EVENT_FOR_ACTION.get(r["action"])
        have = events[str(r["id"])]
        if wanted is None:
            if sum(have.values()) == 0:
                problems.append(f"MO-{r['number']:06d}: no event at all")
            continue
        if have[wanted] < r["n"]:
            problems.append(
                f"MO-{r['number']:06d}: {r['n']}× {r['action']} in the history, "
                f"{have[wanted]}× {wanted}"
            )
    report.add(
        f"{name} ({total} events for {orders} orders and {changes} order changes)",
        not problems,
        problems,
    )


async def _shared_invariants(report: Report, url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from tests.invariants import broken_invariants

    engine = create_async_engine(url)
    try:
        problems = await broken_invariants(engine)
    finally:
        await engine.dispose()
    report.add(
        "tests/invariants.py (the suite's whole-database checks) agrees", not problems, problems
    )


__all__ = ["Report", "check_database"]
