"""Report and traceability endpoints on a ledger of 100,000 movements, on PostgreSQL.

Creates a fresh database on the server named by ``TEST_DATABASE_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), migrates it, and fills it
with a consistent history: bought components received in lots, intermediates made
from them and finished products made from those (three lot-tracked levels), transfers
and shipments, then open orders (planned, and released with what stock there was).
The rows are simulated here with the ledger's valuation rules and bulk-inserted with
SQLAlchemy Core, for speed, with the outbox events the service would have written
beside them (``bench/outbox.py``: a ``stock.changed`` per item and simulated request,
an order's ``production_order.*`` events up to its status); the whole-database
invariants the test suite checks (balances == Σ movements, stock_value == Σ values,
reserved == Σ reservations, each completed order's cost balanced, every movement and
order in the outbox exactly once) are checked before timing.

Each endpoint is then called through HTTP in-process (httpx ASGITransport, the real
app with auth and the per-request transaction): a few warm-up calls, then ``--calls``
timed ones, p50 and p95 printed against the 200 ms target. The database is dropped
at the end unless ``--keep``.

    make bench-reports
    make bench-reports BENCH_ARGS="--movements 20000 --calls 10 --keep"
    PYTHONPATH=src python -m bench.reports_bench --movements 2000 --calls 2

Run it as a module from the repository's root, as the Makefile does (as a file,
``bench/`` would come first on the module path).
"""

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.invariants import broken_invariants

from bench.outbox import Outbox
from bench.pg import admin
from prodorder_api import migrate
from prodorder_api.app import create_app
from prodorder_api.db import create_engine
from prodorder_api.ids import new_id
from prodorder_api.models import (
    Bom,
    BomLine,
    Event,
    Item,
    Location,
    Lot,
    OrderRequirement,
    OrderReservation,
    ProductionOrder,
    StockBalance,
    StockMovement,
)
from prodorder_api.money import ZERO, div, mul
from prodorder_api.settings import Settings

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TOKEN = "po_bench_" + uuid.uuid4().hex
TARGET_MS = 200.0
DAYS = 180
Key = tuple[uuid.UUID, uuid.UUID, str]  # item, location, lot code


@dataclass
class Stock:
    """One item as the ledger sees it: on hand and value over all balances."""

    id: uuid.UUID
    sku: str
    tracking: str
    cost: Decimal  # receipts' unit cost (bought items)
    on_hand: Decimal = ZERO
    value: Decimal = ZERO
    average: Decimal | None = None
    lines: list[tuple["Stock", Decimal]] = field(default_factory=list)  # its BOM
    bom_id: uuid.UUID | None = None
    lots: list[str] = field(default_factory=list)  # FIFO, the service's FEFO without expiry

    def settle(self) -> None:
        if self.on_hand > 0:
            self.average = div(self.value, self.on_hand)


class History:
    """Simulates receipts, production, transfers and shipments with the ledger's rules."""

    def __init__(self, main: uuid.UUID, store: uuid.UUID, target: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.main, self.store, self.target = main, store, target
        self.now = datetime.now(UTC) - timedelta(days=DAYS)
        self.step = timedelta(days=DAYS) / target
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.balances: dict[Key, list[Decimal]] = {}  # on_hand, reserved
        self.lot_rows: dict[tuple[uuid.UUID, str], datetime] = {}
        self.number = 0
        self.outbox = Outbox()
        # Open simulated requests, innermost last: the movements each wrote and the
        # balances it touched, announced as its stock.changed events when it ends.
        self._requests: list[tuple[list[dict[str, Any]], set[Key]]] = []
        self.items: list[Stock] = []
        self.bought = [self._item("RAW", "lot" if n % 3 else "none") for n in range(300)]
        self.middle = [self._item("MID", "lot") for _ in range(60)]
        self.finished = [self._item("FIN", "lot") for _ in range(40)]
        lot_tracked = [s for s in self.bought if s.tracking == "lot"]
        for made in self.middle:
            parts = self.rng.sample(self.bought, 3)
            self._bom(made, [(p, Decimal(self.rng.choice(["0.25", "1", "2", "3"]))) for p in parts])
        for made in self.finished:
            parts = self.rng.sample(self.middle, 2) + self.rng.sample(lot_tracked, 2)
            self._bom(made, [(p, Decimal(self.rng.randint(1, 2))) for p in parts])

    # --- master data -------------------------------------------------------------

    def _item(self, kind: str, tracking: str) -> Stock:
        cost = Decimal(self.rng.randint(5, 2500)) / 100 if kind == "RAW" else ZERO
        stock = Stock(new_id(), f"{kind}-{len(self.items):04d}", tracking, cost)
        self.items.append(stock)
        return stock

    def _bom(self, made: Stock, lines: list[tuple[Stock, Decimal]]) -> None:
        made.lines, made.bom_id = lines, new_id()
        self.rows["boms"].append(
            {
                "id": made.bom_id,
                "item_id": made.id,
                "revision": "1",
                "output_quantity": Decimal(1),
                "is_default": True,
                "used": True,
                "version": 1,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )
        for position, (part, quantity) in enumerate(lines):
            self.rows["bom_lines"].append(
                {
                    "id": new_id(),
                    "bom_id": made.bom_id,
                    "position": position,
                    "component_item_id": part.id,
                    "quantity": quantity,
                    "scrap_factor": ZERO,
                    "consumption": "backflush",
                }
            )

    # --- the ledger ----------------------------------------------------------------

    @contextmanager
    def _request(self) -> Iterator[None]:
        """One simulated request: its changes of stock become its stock.changed events
        (one per item), as the ledger announces them."""
        self._requests.append(([], set()))
        try:
            yield
        finally:
            movements, touched = self._requests.pop()
            if movements or touched:
                balances = [
                    {
                        "item_id": item_id,
                        "location_id": location,
                        "lot_code": lot,
                        "on_hand": self.balances[(item_id, location, lot)][0],
                        "reserved": self.balances[(item_id, location, lot)][1],
                        "updated_at": self.now,
                    }
                    for item_id, location, lot in sorted(touched)
                ]
                self.outbox.stock_changed(balances, movements, self.now)

    def _touched(self, key: Key, movement: dict[str, Any] | None = None) -> None:
        assert self._requests, "stock changed outside a simulated request"
        written, touched = self._requests[-1]
        touched.add(key)
        if movement is not None:
            written.append(movement)

    def _move(
        self,
        stock: Stock,
        location: uuid.UUID,
        lot: str,
        quantity: Decimal,
        kind: str,
        value: Decimal,
        unit_cost: Decimal,
        order: uuid.UUID | None = None,
    ) -> None:
        balance = self.balances.setdefault((stock.id, location, lot), [ZERO, ZERO])
        balance[0] += quantity
        assert balance[0] >= balance[1], "the simulation took reserved or missing stock"
        if lot and (stock.id, lot) not in self.lot_rows:
            self.lot_rows[(stock.id, lot)] = self.now
            stock.lots.append(lot)
        stock.on_hand += quantity
        stock.value += value
        stock.settle()
        movement = {
            "id": new_id(),
            "item_id": stock.id,
            "location_id": location,
            "lot_code": lot,
            "quantity": quantity,
            "type": kind,
            "unit_cost": unit_cost,
            "value": value,
            "production_order_id": order,
            "reference": None,
            "reason": "bench" if kind == "adjustment" else None,
            "created_at": self.now,
        }
        self.rows["stock_movements"].append(movement)
        self._touched((stock.id, location, lot), movement)
        self.now += self.step

    def _value_out(self, stock: Stock, quantity: Decimal) -> tuple[Decimal, Decimal]:
        """Unit cost and (negative) value of taking ``quantity``: the moving average,
        and all that is left when it empties the item."""
        average = div(stock.value, stock.on_hand)
        if stock.on_hand - quantity > 0:
            return average, -min(mul(quantity, average), max(stock.value, ZERO))
        return average, -stock.value

    def _free(self, stock: Stock, location: uuid.UUID) -> list[tuple[str, Decimal]]:
        lots = stock.lots if stock.tracking == "lot" else [""]
        free = []
        for lot in lots:
            on_hand, reserved = self.balances.get((stock.id, location, lot), [ZERO, ZERO])
            if on_hand > reserved:
                free.append((lot, on_hand - reserved))
        return free

    def _take(
        self, stock: Stock, quantity: Decimal, kind: str, order: uuid.UUID | None = None
    ) -> Decimal:
        """Issue ``quantity`` from MAIN, lots oldest first; returns the value taken."""
        taken = ZERO
        for lot, free in self._free(stock, self.main):
            part = min(free, quantity)
            unit_cost, value = self._value_out(stock, part)
            self._move(stock, self.main, lot, -part, kind, value, unit_cost, order)
            taken -= value
            quantity -= part
            if quantity == 0:
                return taken
        raise AssertionError(f"{stock.sku}: not enough stock")

    def receive(self, stock: Stock, quantity: Decimal) -> None:
        lot = f"{stock.sku}-R{len(stock.lots) + 1:04d}" if stock.tracking == "lot" else ""
        with self._request():
            value = mul(quantity, stock.cost)
            self._move(stock, self.main, lot, quantity, "receipt", value, stock.cost)

    def ensure(self, stock: Stock, quantity: Decimal) -> None:
        """Enough free stock at MAIN: bought in, or made by a completed order."""
        free = sum((q for _, q in self._free(stock, self.main)), ZERO)
        if free >= quantity:
            return
        if not stock.lines:
            self.receive(stock, max(quantity - free, Decimal(self.rng.randint(2000, 8000))))
        else:
            self.make(stock, max(quantity - free, Decimal(self.rng.randint(40, 120))))

    def make(self, stock: Stock, quantity: Decimal, reference: str | None = None) -> None:
        """A completed order: every component backflushed, the output in a new lot."""
        for part, per in stock.lines:
            self.ensure(part, per * quantity)
        order_id, created = new_id(), self.now
        consumed = ZERO
        requirements = []
        # Its completion, in one request: the backflush and the output.
        with self._request():
            for position, (part, per) in enumerate(stock.lines):
                consumed += self._take(part, per * quantity, "consumption", order_id)
                requirements.append((position, part, per * quantity, per * quantity))
            lot = f"{stock.sku}-M{len(stock.lots) + 1:05d}"
            unit_cost = div(consumed, quantity)
            self._move(stock, self.main, lot, quantity, "output", consumed, unit_cost, order_id)
            self._order(stock, order_id, quantity, "completed", created, reference, requirements)
            order = self.rows["production_orders"][-1]
            order |= {"produced_quantity": quantity, "output_value": consumed}
            order |= {"material_cost": consumed, "completed_at": self.now}
            self.outbox.order(order, created)

    def _order(
        self,
        stock: Stock,
        order_id: uuid.UUID,
        quantity: Decimal,
        status: str,
        created: datetime,
        reference: str | None,
        requirements: list[tuple[int, Stock, Decimal, Decimal]],
    ) -> None:
        self.number += 1
        due = (created + timedelta(days=self.rng.randint(1, 30))).date()
        self.rows["production_orders"].append(
            {
                "id": order_id,
                "number": self.number,
                "status": status,
                "item_id": stock.id,
                "bom_id": stock.bom_id,
                "quantity": quantity,
                "location_id": self.main,
                "output_location_id": self.main,
                "due_date": due,
                "planned_start": None,
                "priority": 0,
                "reference": reference,
                "notes": None,
                "produced_quantity": ZERO,
                "scrapped_quantity": ZERO,
                "material_cost": ZERO,
                "labour_cost": ZERO,
                "output_value": ZERO,
                "scrap_value": ZERO,
                "released_at": created if status != "planned" else None,
                "started_at": created if status == "completed" else None,
                "completed_at": None,
                "cancelled_at": None,
                "version": 4 if status == "completed" else 2,
                "created_at": created,
                "updated_at": self.now,
            }
        )
        for position, part, required, consumed in requirements:
            self.rows["order_requirements"].append(
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "position": position,
                    "component_item_id": part.id,
                    "required_quantity": required,
                    "consumed_quantity": consumed,
                    "consumption": "backflush",
                    "in_bom": True,
                }
            )

    def transfer(self, stock: Stock) -> None:
        lots = self._free(stock, self.main)
        if not lots:
            return
        lot, free = lots[-1]
        quantity = min(free, max(free // 4, Decimal(1)))
        # As the ledger values a transfer: at the average, never more than the value.
        unit_cost = div(stock.value, stock.on_hand)
        value = -min(mul(quantity, unit_cost), max(stock.value, ZERO))
        with self._request():
            self._move(stock, self.main, lot, -quantity, "transfer_out", value, unit_cost)
            self._move(stock, self.store, lot, quantity, "transfer_in", -value, unit_cost)

    def ship(self, stock: Stock) -> None:
        free = sum((q for _, q in self._free(stock, self.main)), ZERO)
        if free > 0:
            with self._request():
                self._take(stock, max(free // 2, min(free, Decimal(1))), "adjustment")

    # --- the whole history -----------------------------------------------------------

    def run(self, open_orders: int) -> None:
        web = 0
        # Orders until close to the target, then single receipts to hit it exactly.
        while len(self.rows["stock_movements"]) < self.target - 40:
            product = self.rng.choice(self.finished)
            web += 1
            self.make(product, Decimal(self.rng.randint(5, 30)), f"WEB-{web:06d}")
            roll = self.rng.random()
            if roll < 0.15:
                self.transfer(product)
            elif roll < 0.35:
                self.ship(product)
        while len(self.rows["stock_movements"]) < self.target:
            self.receive(self.rng.choice(self.bought), Decimal(10))
        for n in range(open_orders):
            self.open_order(released=n % 4 == 0)

    def open_order(self, *, released: bool) -> None:
        stock = self.rng.choice(self.finished + self.middle)
        quantity = Decimal(self.rng.randint(5, 60))
        order_id = new_id()
        requirements = [
            (i, part, per * quantity, ZERO) for i, (part, per) in enumerate(stock.lines)
        ]
        self._order(
            stock,
            order_id,
            quantity,
            "released" if released else "planned",
            self.now,
            None,
            requirements,
        )
        self.outbox.order(self.rows["production_orders"][-1], self.now)
        if not released:
            return
        with self._request():  # the release: what stock there is, reserved
            for _, part, required, _ in requirements:
                for lot, free in self._free(part, self.main):
                    hold = min(free, required)
                    self.balances[(part.id, self.main, lot)][1] += hold
                    self._touched((part.id, self.main, lot))
                    self.rows["order_reservations"].append(
                        {
                            "id": new_id(),
                            "order_id": order_id,
                            "item_id": part.id,
                            "location_id": self.main,
                            "lot_code": lot,
                            "quantity": hold,
                        }
                    )
                    required -= hold
                    if required == 0:
                        break

    def tables(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """Every row to insert, in foreign-key order."""
        start = datetime.now(UTC) - timedelta(days=DAYS + 1)
        items = [
            {
                "id": s.id,
                "sku": s.sku,
                "name": s.sku,
                "uom": "pcs",
                "tracking": s.tracking,
                "standard_cost": s.cost if not s.lines else None,
                "average_cost": s.average,
                "stock_value": s.value,
                "lead_time_days": 0,
                "version": 1,
                "created_at": start,
                "updated_at": self.now,
            }
            for s in self.items
        ]
        lots = [
            {"id": new_id(), "item_id": i, "code": c, "expiry_date": None, "created_at": at}
            for (i, c), at in self.lot_rows.items()
        ]
        balances = [
            {
                "id": new_id(),
                "item_id": i,
                "location_id": loc,
                "lot_code": lot,
                "on_hand": on_hand,
                "reserved": reserved,
                "updated_at": self.now,
            }
            for (i, loc, lot), (on_hand, reserved) in self.balances.items()
        ]
        return [
            (Item.__table__, items),  # type: ignore[list-item]
            (Bom.__table__, self.rows["boms"]),
            (BomLine.__table__, self.rows["bom_lines"]),
            (ProductionOrder.__table__, self.rows["production_orders"]),
            (OrderRequirement.__table__, self.rows["order_requirements"]),
            (OrderReservation.__table__, self.rows["order_reservations"]),
            (Lot.__table__, lots),
            (StockBalance.__table__, balances),
            (StockMovement.__table__, self.rows["stock_movements"]),
            (Event.__table__, self.outbox.rows()),
        ]


# --- database ------------------------------------------------------------------------


async def fill(url: str, movements: int, open_orders: int, seed: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            main = await conn.scalar(select(Location.id).where(Location.code == "MAIN"))
            store = new_id()
            await conn.execute(insert(Location).values(id=store, code="STORE", name="Shop store"))
            assert main is not None
            history = History(main, store, movements, seed)
            history.run(open_orders)
            counts = {}
            for table, rows in history.tables():
                await _bulk(conn, table, rows)
                counts[table.name] = len(rows)
            await conn.execute(
                text("SELECT setval('production_order_number_seq', :n)"), {"n": history.number}
            )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        problems = await broken_invariants(engine)
        if problems:
            raise SystemExit("the generated data is inconsistent:\n" + "\n".join(problems[:20]))
        return counts
    finally:
        await engine.dispose()


async def _bulk(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        await conn.execute(insert(table), rows[start : start + 5000])


# --- timing ----------------------------------------------------------------------------


async def _pick(url: str) -> dict[str, str]:
    """Ids worth timing: the bought lot in most orders, the one that reaches most
    intermediates (a two-level forward trace), the biggest finished lot, and the item
    with most lots."""
    engine = create_engine(url)
    m = StockMovement
    busiest = (
        select(m.item_id, m.lot_code)
        .where(m.type == "consumption", m.lot_code.like("RAW-%"))
        .group_by(m.item_id, m.lot_code)
        .order_by(func.count().desc())
        .limit(1)
    )
    into_intermediates = (
        busiest.join(ProductionOrder, ProductionOrder.id == m.production_order_id)
        .join(Item, Item.id == ProductionOrder.item_id)
        .where(Item.sku.like("MID-%"))
    )
    biggest = (
        select(m.item_id, m.lot_code)
        .where(m.type == "output", m.lot_code.like("FIN-%"))
        .order_by(m.quantity.desc())
        .limit(1)
    )
    most_lots = select(Lot.item_id).group_by(Lot.item_id).order_by(func.count().desc()).limit(1)
    try:
        async with engine.connect() as conn:
            picked = {"item_with_most_lots": str(await conn.scalar(most_lots))}
            for name, stmt in (
                ("busiest_lot", busiest),
                ("deepest_lot", into_intermediates),
                ("finished_lot", biggest),
            ):
                item_id, code = (await conn.execute(stmt)).one()
                lot = select(Lot.id).where(Lot.item_id == item_id, Lot.code == code)
                picked[name] = str(await conn.scalar(lot))
            return picked
    finally:
        await engine.dispose()


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def bench(url: str, calls: int) -> bool:
    picked = await _pick(url)
    today = datetime.now(UTC).date()
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("shortages", "/v1/reports/shortages", {}),
        ("stock-valuation", "/v1/reports/stock-valuation", {}),
        (
            "consumption, 180 days",
            "/v1/reports/consumption",
            {"from": str(today - timedelta(DAYS)), "to": str(today)},
        ),
        (
            "consumption, 30 days",
            "/v1/reports/consumption",
            {"from": str(today - timedelta(30)), "to": str(today)},
        ),
        ("production, 180 days", "/v1/reports/production", {"from": str(today - timedelta(DAYS))}),
        ("capacity", "/v1/reports/capacity", {}),
        ("lots, 500 per page", "/v1/lots", {"limit": 500}),
        ("lots of one item", "/v1/lots", {"item_id": picked["item_with_most_lots"], "limit": 500}),
        ("one lot", f"/v1/lots/{picked['busiest_lot']}", {}),
        (
            "trace forward, lot in most orders",
            f"/v1/lots/{picked['busiest_lot']}/trace",
            {"direction": "forward"},
        ),
        (
            "trace forward, two levels",
            f"/v1/lots/{picked['deepest_lot']}/trace",
            {"direction": "forward"},
        ),
        (
            "trace backward, finished lot",
            f"/v1/lots/{picked['finished_lot']}/trace",
            {"direction": "backward"},
        ),
    ]
    app = create_app(Settings(DATABASE_URL=url, PRODORDER_BOOTSTRAP_KEY=TOKEN, LOG_LEVEL="WARNING"))
    all_fast = True
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            print(
                f"{'endpoint':34} {'rows':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
                f" {'app CPU':>8}"
            )
            for name, path, params in cases:
                samples, cpu, rows = [], [], 0
                for n in range(3 + calls):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    response = await client.get(path, params=params)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, f"{path}: {response.text[:300]}"
                    if n >= 3:
                        samples.append(elapsed)
                        cpu.append((time.process_time() - cpu_started) * 1000)
                body = response.json()
                rows = len(body["data"]) if "data" in body else 1
                p50, p95 = statistics.median(samples), _percentile(samples, 0.95)
                all_fast &= p95 < TARGET_MS
                flag = "" if p95 < TARGET_MS else f"  over {TARGET_MS:.0f} ms"
                print(
                    f"{name:34} {rows:>6} {p50:>8.1f} {p95:>8.1f} {max(samples):>8.1f}"
                    f" {statistics.median(cpu):>8.1f}{flag}"
                )
            print(f"load average {os.getloadavg()[0]:.1f}")
            print("app CPU: median CPU time of this process per call (the database's is not in it)")
    return all_fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=100_000)
    parser.add_argument("--open-orders", type=int, default=1_500)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    name = f"prodorder_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    fast = False
    try:
        migrate.upgrade(url)
        started = time.perf_counter()
        counts = asyncio.run(fill(url, args.movements, args.open_orders, args.seed))
        summary = ", ".join(f"{n} {t}" for t, n in counts.items())
        print(f"database {name}: {summary} ({time.perf_counter() - started:.1f} s)")
        fast = asyncio.run(bench(url, args.calls))
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"\nevery p95 under {TARGET_MS:.0f} ms: {'yes' if fast else 'NO'}")


if __name__ == "__main__":
    main()
