"""MRP benchmark: a generated BOM graph in a throw-away PostgreSQL database.

    make bench-mrp                                  # 1,000 and 5,000 items
    PYTHONPATH=src python -m bench.mrp_bench --items 5000 --profile

For each size it creates a database on the server named by ``TEST_DATABASE_URL``
(default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), migrates it and
generates:

* ``items`` items over ``--levels`` levels; every made item has three components,
  two on the next level and one on any deeper level, so low-level codes differ
  from the depth an item is first met at; the last level is bought;
* lead times drawn from ``--made-lead`` and ``--bought-lead`` (days; by default
  whole weeks: a week to make, one to three to buy);
* stock for a third of the items, and open planned orders for a tenth of the made
  ones (due on a plan date, with their requirements);
* a plan of ``items / 5`` lines for the top-level products, due on ``--dates``
  weekly dates;
* the outbox events the service would have written for the stock and the orders
  (``bench/outbox.py``), so the whole database adds up as the test suite checks it.

How many proposals that makes depends on how the lead times spread the dates
(lot-for-lot per day): the report prints it. MRP runs through the service function
(``planning.service.run``, committed) ``--runs`` times, then twice through HTTP (the
first request meets a fresh app). Each prints its wall and CPU time and its SQL
statements, counted with a ``before_cursor_execute`` listener plus the COPY that
stores the proposals. The suite's whole-database invariants (``tests/invariants.py``)
are checked after the runs; the database is dropped at the end. Exits 1 on a broken
invariant or a statement count that grows with the items.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from tests.invariants import broken_invariants

from bench.outbox import Outbox
from bench.pg import admin
from prodorder_api import migrate
from prodorder_api.app import create_app
from prodorder_api.boms.explosion import line_requirement
from prodorder_api.boms.models import Bom, BomLine
from prodorder_api.db import create_engine, create_sessionmaker
from prodorder_api.events.models import Event
from prodorder_api.ids import new_id
from prodorder_api.items.models import Item
from prodorder_api.locations.models import DEFAULT_LOCATION_CODE, Location
from prodorder_api.orders.models import OrderRequirement, ProductionOrder
from prodorder_api.planning import inputs, mrp
from prodorder_api.planning import service as planning
from prodorder_api.planning.schemas import PlanCreate, PlanLineIn
from prodorder_api.settings import Settings
from prodorder_api.stock.models import StockBalance, StockMovement

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
FIRST_DUE = date(2030, 3, 4)  # a Monday


class StatementCounter:
    """Counts what reaches the database driver: every ``before_cursor_execute``, and
    the COPY that stores the proposals on PostgreSQL (asyncpg's, which SQLAlchemy
    does not see)."""

    copies = 0

    def __init__(self, engine: AsyncEngine) -> None:
        self._sql = 0
        self._copies_before = StatementCounter.copies
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self._sql += 1

    @property
    def count(self) -> int:
        return self._sql + StatementCounter.copies - self._copies_before

    def reset(self) -> None:
        self._sql = 0
        self._copies_before = StatementCounter.copies


_copy = asyncpg.Connection.copy_records_to_table


async def _counted_copy(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
    StatementCounter.copies += 1
    return await _copy(self, *args, **kwargs)


asyncpg.Connection.copy_records_to_table = _counted_copy  # type: ignore[method-assign]


@dataclass
class Phases:
    """Wall time of the run's parts, by wrapping the functions ``service.run`` calls."""

    load: float = 0.0
    plan: float = 0.0

    @contextmanager
    def installed(self) -> Iterator[None]:
        original_load, original_plan = inputs.load, mrp.plan

        async def load(*args: Any) -> mrp.Inputs:
            started = time.perf_counter()
            try:
                return await original_load(*args)
            finally:
                self.load = time.perf_counter() - started

        def plan(*args: Any) -> list[mrp.Proposal]:
            started = time.perf_counter()
            try:
                return original_plan(*args)
            finally:
                self.plan = time.perf_counter() - started

        inputs.load, mrp.plan = load, plan  # type: ignore[assignment]
        try:
            yield
        finally:
            inputs.load, mrp.plan = original_load, original_plan


# --- the generated world --------------------------------------------------------


@dataclass
class World:
    items: list[list[uuid.UUID]]  # per level
    plan_id: uuid.UUID
    lines: int
    bom_lines: int
    orders: int


async def build(session: AsyncSession, n_items: int, args: argparse.Namespace) -> World:
    rnd = random.Random(args.seed)
    levels, dates = args.levels, args.dates
    per_level = n_items // levels
    items = [[new_id() for _ in range(per_level)] for _ in range(levels)]
    made_lead, bought_lead = args.made_lead, args.bought_lead
    lead_time = {
        item: rnd.choice(made_lead if level < levels - 1 else bought_lead)
        for level, row in enumerate(items)
        for item in row
    }
    await session.execute(
        insert(Item),
        [
            {
                "id": item,
                "sku": f"BENCH-{level}-{i}",
                "name": f"Level {level} item {i}",
                "lead_time_days": lead_time[item],
            }
            for level, row in enumerate(items)
            for i, item in enumerate(row)
        ],
    )
    boms: dict[uuid.UUID, uuid.UUID] = {}
    bom_rows, line_rows = [], []
    recipes: dict[uuid.UUID, list[tuple[uuid.UUID, Decimal, Decimal]]] = {}
    for level in range(levels - 1):
        for item in items[level]:
            bom_id = new_id()
            boms[item] = bom_id
            components = set(rnd.sample(items[level + 1], 2))
            components.add(rnd.choice(items[rnd.randrange(level + 1, levels)]))
            bom_rows.append(
                {"id": bom_id, "item_id": item, "revision": "A", "output_quantity": Decimal(1)}
            )
            recipes[item] = []
            for position, component in enumerate(sorted(components)):
                quantity = Decimal(rnd.choice(["1", "1", "1", "2", "0.5"]))
                scrap = Decimal(rnd.choice(["0", "0", "0.05"]))
                recipes[item].append((component, quantity, scrap))
                line_rows.append(
                    {
                        "bom_id": bom_id,
                        "position": position,
                        "component_item_id": component,
                        "quantity": quantity,
                        "scrap_factor": scrap,
                    }
                )
    await session.execute(insert(Bom), [{**row, "is_default": True} for row in bom_rows])
    await session.execute(insert(BomLine), line_rows)

    main = await session.scalar(select(Location.id).where(Location.code == DEFAULT_LOCATION_CODE))
    assert main is not None
    stocked = rnd.sample([i for row in items for i in row], n_items // 3)
    quantities = {item: Decimal(rnd.randint(1, 200)) for item in stocked}
    outbox = Outbox()
    balances, movements = [], []
    for item, quantity in quantities.items():  # one receipt each
        balance = {"item_id": item, "location_id": main, "lot_code": "", "on_hand": quantity}
        movement = {
            "id": new_id(),
            "item_id": item,
            "location_id": main,
            "lot_code": "",
            "quantity": quantity,
            "type": "receipt",
            "unit_cost": Decimal(0),
            "value": Decimal(0),
        }
        outbox.stock_changed([{**balance, "reserved": Decimal(0)}], [movement])
        balances.append(balance)
        movements.append(movement)
    await session.execute(insert(StockBalance), balances)
    await session.execute(insert(StockMovement), movements)

    # Open planned orders (one for every tenth made item), as a firmed plan leaves them:
    # incoming output on a due date of the plan, demand on their start.
    made = [i for row in items[: levels - 1] for i in row]
    order_rows, requirement_rows = [], []
    for number, item in enumerate(rnd.sample(made, len(made) // 10), start=1):
        order_id, quantity = new_id(), Decimal(rnd.randint(1, 50))
        due = FIRST_DUE + timedelta(weeks=rnd.randrange(dates))
        order_rows.append(
            {
                "id": order_id,
                "number": number,
                "status": "planned",
                "item_id": item,
                "bom_id": boms[item],
                "quantity": quantity,
                "location_id": main,
                "output_location_id": main,
                "due_date": due,
                "planned_start": due - timedelta(days=lead_time[item]),
            }
        )
        for position, (component, per, scrap) in enumerate(recipes[item]):
            line = BomLine(quantity=per, scrap_factor=scrap)
            requirement_rows.append(
                {
                    "order_id": order_id,
                    "position": position,
                    "component_item_id": component,
                    "required_quantity": line_requirement(quantity, line, Decimal(1)),
                    "consumption": "backflush",
                }
            )
    await session.execute(insert(ProductionOrder), order_rows)
    await session.execute(insert(OrderRequirement), requirement_rows)
    for row in order_rows:
        outbox.order(row)
    await session.execute(insert(Event), outbox.rows())

    due_dates = [FIRST_DUE + timedelta(weeks=w) for w in range(dates)]
    n_lines = n_items // 5
    plan = await planning.create(
        session,
        PlanCreate(
            name="bench",
            lines=[
                PlanLineIn(
                    item_id=rnd.choice(items[0]),
                    quantity=Decimal(rnd.randint(1, 20)),
                    due_date=rnd.choice(due_dates),
                )
                for _ in range(n_lines)
            ],
        ),
    )
    return World(items, plan.plan.id, n_lines, len(line_rows), len(order_rows))


# --- databases ------------------------------------------------------------------


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"prodorder_mrp_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- measuring ------------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    cpu: float
    statements: int


async def timed(counter: StatementCounter, work: Callable[[], Any]) -> tuple[Measure, Any]:
    counter.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work()
    return Measure(time.perf_counter() - wall, time.process_time() - cpu, counter.count), result


async def bench(url: str, args: argparse.Namespace, n_items: int) -> dict[str, Any]:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    counter = StatementCounter(engine)
    async with sessionmaker() as session, session.begin():
        world = await build(session, n_items, args)
    async with engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()

    async def service_run() -> Any:
        async with sessionmaker() as session, session.begin():
            return await planning.run(session, str(world.plan_id))

    runs: list[Measure] = []
    phases = Phases()
    profiler = None
    for attempt in range(args.runs):
        if args.profile and attempt == args.runs - 1:
            try:
                from pyinstrument import Profiler
            except ImportError:
                sys.exit("--profile needs pyinstrument: pip install pyinstrument")

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        with phases.installed():
            measure, result = await timed(counter, service_run)
        runs.append(measure)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    await engine.dispose()

    token = "po_bench_" + uuid.uuid4().hex
    app = create_app(Settings(DATABASE_URL=url, PRODORDER_BOOTSTRAP_KEY=token, LOG_LEVEL="WARNING"))
    async with app.router.lifespan_context(app):
        http_counter = StatementCounter(app.state.engine)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=120
        ) as client:

            async def http_run() -> httpx.Response:
                return await client.post(f"/v1/production-plans/{world.plan_id}/run")

            # The first request meets a fresh app: new connections, empty caches.
            http = []
            for _ in range(2):
                measure, response = await timed(http_counter, http_run)
                assert response.status_code == 200, response.text[:500]
                http.append(measure)
        problems = await broken_invariants(app.state.engine)
    return {
        "world": world,
        "proposals": len(result.proposals),
        "pegs": sum(p.pegged_to.count('"type"') for p in result.proposals),
        "purchases": sum(p.kind == "purchase" for p in result.proposals),
        "runs": runs,
        "phases": phases,
        "http": http,
        "body": len(response.content),
        "problems": problems,
    }


def report(n_items: int, r: dict[str, Any]) -> None:
    world: World = r["world"]
    runs: list[Measure] = r["runs"]
    best = min(runs, key=lambda m: m.wall)
    print(
        f"\n{n_items:,} items over {len(world.items)} levels, {world.bom_lines:,} BOM lines, "
        f"{world.orders:,} open orders, {world.lines:,} plan lines"
    )
    print(f"  proposals: {r['proposals']:,} ({r['purchases']:,} purchases), {r['pegs']:,} pegs")
    walls = ", ".join(f"{m.wall:.2f}" for m in runs)
    print(
        f"  service run + commit: {walls} s wall (median "
        f"{statistics.median(m.wall for m in runs):.2f}), best {best.wall:.2f} s wall / "
        f"{best.cpu:.2f} s CPU; {best.statements} SQL statements"
    )
    counts = sorted({m.statements for m in runs})
    assert len(counts) == 1, f"statement count varies between runs: {counts}"
    phases: Phases = r["phases"]
    print(f"    last run: load {phases.load:.2f} s, MRP in memory {phases.plan:.2f} s")
    for label, http in zip(("first", "second"), r["http"], strict=True):
        print(
            f"  HTTP POST …/run, {label}: {http.wall:.2f} s wall / {http.cpu:.2f} s CPU; "
            f"{http.statements} SQL statements; {r['body'] / 1e6:.1f} MB of JSON"
        )
    problems: list[str] = r["problems"]
    print(f"  invariants after the runs: {f'{len(problems)} BROKEN' if problems else 'ok'}")
    for problem in problems[:20]:
        print(f"    {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--levels", type=int, default=10)
    parser.add_argument("--dates", type=int, default=4, help="weekly due dates of the plan")
    parser.add_argument(
        "--made-lead", type=int, nargs="+", default=[7], help="lead times of made items (days)"
    )
    parser.add_argument(
        "--bought-lead",
        type=int,
        nargs="+",
        default=[7, 14, 21],
        help="lead times of bought items (days)",
    )
    parser.add_argument("--runs", type=int, default=3, help="service runs per size")
    parser.add_argument("--seed", type=int, default=2030)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the last run")
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    results = {}
    for n_items in args.items:
        with fresh_database(server) as url:
            results[n_items] = asyncio.run(bench(url, args, n_items))
        report(n_items, results[n_items])
    statements = {n: r["runs"][0].statements for n, r in results.items()}
    broken = any(r["problems"] for r in results.values())
    if len(set(statements.values())) == 1:
        print(f"\nSQL statements per run do not grow with the items: {statements}")
    else:
        print(f"\nSQL statements per run differ by size: {statements}")
        sys.exit(1)
    if broken:
        sys.exit("broken invariants: see above")


if __name__ == "__main__":
    main()
