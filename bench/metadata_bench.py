"""The ``?metadata[key]=value`` filter of the order list over 100,000 orders, on PostgreSQL.

Issue #21 asks that a metadata filter over 100,000 orders stay fast on PostgreSQL, and
that the choice (JSONB with a GIN index, or a side table) be measured. The column is
JSONB with a ``jsonb_path_ops`` GIN index (``ix_production_orders_metadata``,
migration 0015); the filter is ``metadata @> jsonb_build_object(key, value)`` per pair
(``prodorder_api.db.metadata_has``), and the list pages by id.

Creates a fresh database on the server named by ``TEST_DATABASE_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), migrates it to head, and
fills it in SQL: ten items, each with a default BOM, and ``--orders`` production orders
in one ``INSERT … SELECT generate_series`` (time-ordered UUIDv7 ids, numbers 1..N and
the number sequence moved past them, statuses from planned to completed with their
timestamps), every order with the metadata an integration would leave::

    {"shop": "s<n % 50>", "channel": web|pos|marketplace (n % 3),
     "customer": "c<n % 5000>", "batch": "<n>"}

then VACUUM ANALYZE. No outbox events are written for these orders: the list does not read
them, and nothing here checks the whole-database invariants.

Each case is ``GET /v1/production-orders?metadata[…]=…&limit=50`` through HTTP
in-process (httpx ASGITransport, the real app with its API key and per-request
transaction; the webhook dispatcher is off so that its polling is not in the
figures): ``--warmup`` calls, then ``--calls`` timed ones, p50/p95/p99 in ms. The first
page of each is checked against the filter and the count of matching rows. The cases:

* selective: one customer, 20 orders (one page, no cursor);
* broad: one shop, 2,000 orders (the first page of 50);
* two keys: one shop on one channel, ~667 orders (the first page of 50);
* nothing: a customer no order has.

After the timings, the list's SQL is captured from the app (a ``before_cursor_execute``
listener) and its plan printed: the plans the app's own prepared statements used, as
``auto_explain`` logs them to the client (a new app on connections that preload it;
skipped when the server cannot load it), and ``EXPLAIN (ANALYZE, BUFFERS)`` of the
captured statement for the selective case, as a custom and as a generic plan. The
timings and plans are then taken again with ``plan_cache_mode = force_custom_plan`` set
on the database (every execution planned for its own values), and then the
index is dropped (``DROP INDEX ix_production_orders_metadata`` in the throw-away
database, ANALYZE again) and the same timings run on a new app, for comparison. The
database is dropped at the end unless ``--keep``.

    make bench-metadata
    make bench-metadata BENCH_ARGS="--orders 20000 --calls 50 --keep"
    PYTHONPATH=src python -m bench.metadata_bench --orders 2000 --calls 5

Run it as a module from the repository's root, as the Makefile does (as a file,
``bench/`` would come first on the module path).
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.pg import admin, asyncpg_dsn
from prodorder_api import migrate
from prodorder_api.app import create_app
from prodorder_api.db import create_engine
from prodorder_api.ids import new_id
from prodorder_api.models import Bom, Item, Location
from prodorder_api.settings import Settings

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TOKEN = "po_bench_" + uuid.uuid4().hex
INDEX = "ix_production_orders_metadata"
PAGE = 50
ITEMS = 10
CHANNELS = ("web", "pos", "marketplace")


@dataclass(frozen=True)
class Case:
    name: str
    pairs: dict[str, str]


CASES = (
    Case("selective: one customer", {"customer": "c4242"}),
    Case("broad: one shop", {"shop": "s7"}),
    Case("two keys: shop + channel", {"shop": "s7", "channel": "web"}),
    Case("nothing matches", {"customer": "c-none"}),
)


@dataclass
class Timing:
    matching: int  # orders the filter matches in the whole table
    rows: int  # on the first page
    samples: list[float] = field(default_factory=list)


# --- the database ------------------------------------------------------------------


# One order a minute, the newest a minute ago: ids and created_at agree, as UUIDv7s
# made at creation would. Statuses by n % 20: 1 cancelled, 2 planned, 2 released,
# 1 in progress, 14 completed.
_ORDERS = text(
    """
    INSERT INTO production_orders (
        id, number, status, item_id, bom_id, quantity, location_id, output_location_id,
        due_date, planned_start, priority, reference, produced_quantity,
        scrapped_quantity, material_cost, labour_cost, output_value, scrap_value,
        released_at, started_at, completed_at, cancelled_at, version, created_at,
        updated_at, metadata
    )
    SELECT
        (lpad(to_hex(ms), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
        n,
        status,
        (CAST(:items AS uuid[]))[n % :n_items + 1],
        (CAST(:boms AS uuid[]))[n % :n_items + 1],
        quantity,
        CAST(:location AS uuid),
        CAST(:location AS uuid),
        (at + interval '14 days')::date,
        (at + interval '7 days')::date,
        n % 3,
        'WEB-' || lpad(n::text, 7, '0'),
        CASE WHEN status = 'completed' THEN quantity ELSE 0 END,
        0,
        CASE WHEN status = 'completed' THEN quantity * 12.5 ELSE 0 END,
        0,
        CASE WHEN status = 'completed' THEN quantity * 12.5 ELSE 0 END,
        0,
        CASE WHEN status IN ('released', 'in_progress', 'completed') THEN at END,
        CASE WHEN status IN ('in_progress', 'completed') THEN at + interval '1 day' END,
        CASE WHEN status = 'completed' THEN at + interval '2 days' END,
        CASE WHEN status = 'cancelled' THEN at + interval '1 hour' END,
        CASE status WHEN 'planned' THEN 1 WHEN 'completed' THEN 5 ELSE 2 END,
        at,
        at,
        jsonb_build_object(
            'shop', 's' || n % 50,
            'channel', (ARRAY['web', 'pos', 'marketplace'])[n % 3 + 1],
            'customer', 'c' || n % 5000,
            'batch', n::text
        )
    FROM (
        SELECT
            n,
            md5(n::text) AS h,
            base + n::bigint * 60000 AS ms,
            to_timestamp((base + n::bigint * 60000) / 1000.0) AS at,
            (1 + n % 40)::numeric AS quantity,
            CASE
                WHEN n % 20 = 0 THEN 'cancelled'
                WHEN n % 20 IN (1, 2) THEN 'planned'
                WHEN n % 20 IN (3, 4) THEN 'released'
                WHEN n % 20 = 5 THEN 'in_progress'
                ELSE 'completed'
            END AS status
        FROM generate_series(1, :orders) AS n,
            (SELECT (extract(epoch FROM now()) * 1000)::bigint
                - (CAST(:orders AS bigint) + 1) * 60000 AS base) AS b
    ) AS s
    """
)


async def seed(url: str, orders: int) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            location = await conn.scalar(select(Location.id).where(Location.code == "MAIN"))
            assert location is not None
            items = [new_id() for _ in range(ITEMS)]
            boms = [new_id() for _ in range(ITEMS)]
            await conn.execute(
                insert(Item),
                [
                    {"id": item, "sku": f"BIKE-{i:02d}", "name": f"Bicycle {i}"}
                    for i, item in enumerate(items)
                ],
            )
            await conn.execute(
                insert(Bom),
                [
                    {
                        "id": bom,
                        "item_id": item,
                        "revision": "A",
                        "output_quantity": Decimal(1),
                        "is_default": True,
                    }
                    for item, bom in zip(items, boms, strict=True)
                ],
            )
            await conn.execute(
                _ORDERS,
                {
                    "items": items,
                    "boms": boms,
                    "n_items": ITEMS,
                    "location": location,
                    "orders": orders,
                },
            )
            await conn.execute(
                text("SELECT setval('production_order_number_seq', :n)"), {"n": orders}
            )
            # Autovacuum would merge the GIN index's pending list at a moment of its
            # choosing, in the middle of a phase: this run does it when it says.
            await conn.execute(text("ALTER TABLE production_orders SET (autovacuum_enabled = off)"))
        await analyze(engine)
    finally:
        await engine.dispose()


async def analyze(engine: AsyncEngine, sql: str = "ANALYZE") -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))


async def matching_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return {
            case.name: await conn.fetchval(
                "SELECT count(*) FROM production_orders WHERE metadata @> $1::jsonb",
                _json(case.pairs),
            )
            for case in CASES
        }
    finally:
        await conn.close()


def _json(pairs: dict[str, str]) -> str:
    return json.dumps(pairs)


# --- timing ------------------------------------------------------------------------


def _params(case: Case) -> dict[str, Any]:
    return {**{f"metadata[{k}]": v for k, v in case.pairs.items()}, "limit": PAGE}


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _check(case: Case, body: dict[str, Any], matching: int) -> int:
    """The first page is exactly what the filter asks for."""
    rows = body["data"]
    assert len(rows) == min(PAGE, matching), f"{case.name}: {len(rows)} rows of {matching}"
    assert (body["next_cursor"] is not None) == (matching > PAGE), f"{case.name}: cursor"
    for row in rows:
        assert all(row["metadata"].get(k) == v for k, v in case.pairs.items()), row
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids, key=uuid.UUID), f"{case.name}: not in id order"
    return len(rows)


def _app(url: str) -> Any:
    return create_app(
        Settings(
            DATABASE_URL=url,
            PRODORDER_BOOTSTRAP_KEY=TOKEN,
            LOG_LEVEL="WARNING",
            PRODORDER_DISPATCHER=False,
        )
    )


async def time_cases(
    url: str, counts: dict[str, int], warmup: int, calls: int
) -> tuple[dict[str, Timing], dict[str, tuple[str, tuple[Any, ...]]]]:
    """Each case's timings, and the list statement (SQL, parameters) it sent."""
    app = _app(url)
    timings: dict[str, Timing] = {}
    statements: dict[str, tuple[str, tuple[Any, ...]]] = {}
    async with app.router.lifespan_context(app):
        seen: list[tuple[str, tuple[Any, ...]]] = []

        def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FROM production_orders" in statement and "@>" in statement:
                seen.append((statement, tuple(parameters)))

        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=60
        ) as client:
            for case in CASES:
                timing = Timing(counts[case.name], 0)
                params = _params(case)
                sync_engine = app.state.engine.sync_engine
                event.listen(sync_engine, "before_cursor_execute", listen)
                response = await client.get("/v1/production-orders", params=params)
                event.remove(sync_engine, "before_cursor_execute", listen)
                assert response.status_code == 200, response.text[:500]
                timing.rows = _check(case, response.json(), timing.matching)
                assert seen, f"{case.name}: the list statement was not seen"
                statements[case.name] = seen.pop()
                for n in range(warmup + calls):
                    started = time.perf_counter()
                    response = await client.get("/v1/production-orders", params=params)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text[:500]
                    if n >= warmup:
                        timing.samples.append(elapsed)
                timings[case.name] = timing
    return timings, statements


def print_timings(title: str, timings: dict[str, Timing]) -> None:
    print(f"\n{title}")
    print(
        f"{'case':28} {'match':>6} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8}"
    )
    for name, t in timings.items():
        print(
            f"{name:28} {t.matching:>6} {t.rows:>5} {statistics.median(t.samples):>8.2f}"
            f" {_percentile(t.samples, 0.95):>8.2f} {_percentile(t.samples, 0.99):>8.2f}"
            f" {max(t.samples):>8.2f}"
        )


# --- plans ---------------------------------------------------------------------------

_SCAN = re.compile(r"((?:Parallel )?(?:Bitmap Index|Bitmap Heap|Index Only|Index|Seq) Scan[^(]*)")


def scans(plan: str) -> str:
    """A plan's scan nodes, in order: its shape in one line."""
    found = [" ".join(m.group(1).split()) for m in _SCAN.finditer(plan)]
    return " > ".join(found) or "?"


@asynccontextmanager
async def database_settings(server: str, url: str, settings: dict[str, str]) -> AsyncIterator[None]:
    """``ALTER DATABASE … SET`` each setting for the connections opened meanwhile."""
    name = make_url(url).database
    try:
        for setting, value in settings.items():
            await admin(server, f'ALTER DATABASE "{name}" SET {setting} = {value}')
        yield
    finally:
        for setting in settings:
            await admin(server, f'ALTER DATABASE "{name}" RESET {setting}')


AUTO_EXPLAIN = {
    "session_preload_libraries": "'auto_explain'",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_level": "notice",
}


async def app_plans(
    url: str, server: str, rounds: int, settings: dict[str, str] | None = None
) -> dict[str, Counter[str]] | None:
    """The plans the app's own prepared statements ran, per case, as auto_explain logs
    them: ``rounds`` requests a case on a new app whose connections preload it (so the
    statement cache and the switch to a generic plan after five runs are the app's own).
    None when the server cannot load auto_explain."""
    try:
        async with database_settings(server, url, AUTO_EXPLAIN | (settings or {})):
            probe = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
            await probe.close()
            return await _app_plans(url, rounds)
    except (asyncpg.PostgresError, OSError) as e:
        print(f"\nplans the app ran: skipped, auto_explain unavailable ({e})")
        return None


async def _app_plans(url: str, rounds: int) -> dict[str, Counter[str]]:
    plans: dict[str, Counter[str]] = {}
    current: list[str] = []

    def on_log(_conn: Any, message: Any) -> None:
        body = str(getattr(message, "message", message))
        if "Query Text:" in body and "@>" in body and "production_orders" in body:
            current.append(body)

    listening: set[int] = set()

    def checkout(dbapi_connection: Any, *_: Any) -> None:
        raw = dbapi_connection.driver_connection
        if id(raw) not in listening:
            raw.add_log_listener(on_log)
            listening.add(id(raw))

    app = _app(url)
    async with app.router.lifespan_context(app):
        event.listen(app.state.engine.sync_engine.pool, "checkout", checkout)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=60
        ) as client:
            for case in CASES:
                shapes: Counter[str] = Counter()
                for _ in range(rounds):
                    response = await client.get("/v1/production-orders", params=_params(case))
                    assert response.status_code == 200, response.text[:500]
                    await asyncio.sleep(0)  # let the notices arrive
                    shapes.update(scans(p) for p in current)
                    current.clear()
                plans[case.name] = shapes
    return plans


def print_app_plans(plans: dict[str, Counter[str]] | None, rounds: int) -> None:
    if plans is None:
        return
    print(f"\nplans the app's prepared statement ran ({rounds} requests a case, auto_explain)")
    for name, shapes in plans.items():
        for shape, count in shapes.most_common():
            print(f"  {name:28} {count:>3} × {shape}")


def _literal(value: Any) -> str:
    """A parameter as SQL text (EXECUTE takes no bound parameters)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"no literal for {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


async def explain(url: str, statement: str, parameters: tuple[Any, ...]) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the app's statement with its parameters: planned for
    those values (custom) and for any (generic, what a prepared statement may switch to)."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    out = {}
    try:
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            await conn.execute(f"PREPARE listed AS {statement}")
            args = ", ".join(_literal(p) for p in parameters)
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE listed({args})")
            await conn.execute("DEALLOCATE listed")
            out[mode] = "\n".join(r[0] for r in rows)
    finally:
        await conn.close()
    return out


_KEY_LINES = ("Limit", "Scan", "Rows Removed", "Buffers: shared", "Execution Time")


def print_explain(
    title: str, statement: str | None, plans: dict[str, str], full: bool = True
) -> None:
    """Each plan whole, or (``full`` False) its nodes, buffers and execution time."""
    print(f"\n{title}")
    if statement is not None:
        print("  " + " ".join(statement.split()))
    for mode, plan in plans.items():
        label = "custom plan (planned for these values)" if "custom" in mode else "generic plan"
        print(f"  -- {label}: {scans(plan)}")
        for line in plan.splitlines():
            if full or any(key in line for key in _KEY_LINES):
                print(f"     {line}")


async def gin_state(url: str) -> str:
    """The index's size and, where pgstattuple can be installed, its pending list."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        size = await conn.fetchval(f"SELECT pg_size_pretty(pg_relation_size('{INDEX}'))")
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            row = await conn.fetchrow(
                f"SELECT pending_pages, pending_tuples FROM pgstatginindex('{INDEX}')"
            )
        except asyncpg.PostgresError:
            return f"{INDEX}: {size}"
        return (
            f"{INDEX}: {size}, pending list {row['pending_pages']} pages"
            f" ({row['pending_tuples']} entries)"
        )
    finally:
        await conn.close()


# --- the run ---------------------------------------------------------------------------


CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}


async def run(url: str, server: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    await seed(url, args.orders)
    counts = await matching_counts(url)
    seconds = time.perf_counter() - started
    print(f"seeded {args.orders} orders ({seconds:.1f} s, one INSERT … SELECT, ANALYZE)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{args.warmup} warm-up and {args.calls} timed requests a case, limit={PAGE}")
    rounds = 10
    selective = CASES[0].name
    phases: dict[str, dict[str, Timing]] = {}

    # 1. Right after the bulk INSERT: the index's pending list (fastupdate) holds what
    # the last 4 MB flush left, as a busy table's does between autovacuums.
    print(f"\n[1] {await gin_state(url)}")
    phases["pending"], statements = await time_cases(url, counts, args.warmup, args.calls)
    print_timings("with the GIN index, pending list not merged (no VACUUM yet)", phases["pending"])
    print_app_plans(await app_plans(url, server, rounds), rounds)
    statement, parameters = statements[selective]
    print_explain(
        f"EXPLAIN (ANALYZE, BUFFERS), {selective}; the app's SQL:",
        statement,
        await explain(url, statement, parameters),
        full=False,
    )

    # 2. The same, every execution planned for its own values (no generic plan).
    print("\n[2] the same index, plan_cache_mode = force_custom_plan (ALTER DATABASE … SET)")
    async with database_settings(server, url, CUSTOM_PLANS):
        phases["custom"], _ = await time_cases(url, counts, args.warmup, args.calls)
    print_timings("with the GIN index, custom plans only", phases["custom"])
    print_app_plans(await app_plans(url, server, rounds, CUSTOM_PLANS), rounds)

    # 3. After VACUUM: the pending list merged into the index.
    engine = create_engine(url)
    try:
        await analyze(engine, "VACUUM ANALYZE production_orders")
        print(f"\n[3] after VACUUM ANALYZE: {await gin_state(url)}")
        phases["vacuumed"], _ = await time_cases(url, counts, args.warmup, args.calls)
        print_timings("with the GIN index, after VACUUM", phases["vacuumed"])
        print_app_plans(await app_plans(url, server, rounds), rounds)
        print_explain(
            f"EXPLAIN (ANALYZE, BUFFERS), {selective}, after VACUUM:",
            None,
            await explain(url, statement, parameters),
        )

        # 4. Without the index.
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP INDEX {INDEX}"))
        await analyze(engine)
    finally:
        await engine.dispose()
    print("\n[4] DROP INDEX, ANALYZE")
    phases["no index"], _ = await time_cases(url, counts, args.warmup, args.calls)
    print_timings("without the index", phases["no index"])
    plans = await explain(url, statement, parameters)
    print_explain(f"EXPLAIN (ANALYZE), {selective}, without the index:", None, plans, full=False)

    print(f"\np99 ms over {args.orders} orders, by phase")
    print(f"  {'case':28} " + " ".join(f"{name:>9}" for name in phases))
    for name in CASES:
        p99s = [_percentile(t[name.name].samples, 0.99) for t in phases.values()]
        print(f"  {name.name:28} " + " ".join(f"{p:>9.2f}" for p in p99s))
    print(
        "  pending: [1] as the service runs, GIN pending list not merged;"
        " custom: [2] the same, custom plans only;\n"
        "  vacuumed: [3] as the service runs after VACUUM; no index: [4]"
    )
    print(f"load average {os.getloadavg()[0]:.1f}; whole run {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    name = f"prodorder_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    print(f"database {name}")
    try:
        migrate.upgrade(url)
        asyncio.run(run(url, server, args))
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
