"""`make bench`: the service under load, beside its ceilings, in one run.

    PYTHONPATH=src python -m bench.run

Creates a fresh PostgreSQL database, migrates it, serves it with several uvicorn
workers, and runs in turn: the lifecycle and contention write scenarios (driver
process), the read and list scenarios (wrk, and an open-loop driver at a fixed
rate), the invariant checks, the pgbench ceilings generated from a traced
lifecycle, the floors (the same SQL from a server without application code, see
bench/floor.py), and the no-op route ceiling. Prints the tables, saves them to
bench/out/, drops the database, and exits 1 on any broken invariant or unexpected
error. Settings (environment): BENCH_WORKERS, BENCH_CLIENTS, BENCH_DURATION,
BENCH_WARMUP (0: no warm-up at all), BENCH_RATE, BENCH_LIST_ORDERS (the list
scenario's bulk orders, default 100,000), BENCH_DATABASE_URL (a server; default
TEST_DATABASE_URL or postgres@127.0.0.1:5432), BENCH_OUT (instead of bench/out/).

Against a baseline commit (bench/compare.py):

    BENCH_BASELINE=f2d8b06 BENCH_ROUNDS=2 PYTHONPATH=src python -m bench.run

checks the commit out in a detached git worktree under a new temporary directory
(removed afterwards) and runs everything above BENCH_ROUNDS times (default 2) on each
side, alternating by round: baseline, head, baseline, head, … . Each run is a whole
``python -m bench.run`` of its own on a fresh database, with this checkout's harness
(bench/, tests/invariants.py) and one side's application: the baseline's src/ (and so
its migrations) on PYTHONPATH, or this checkout's src/ as it is, uncommitted changes
included. Whole runs alternate, not single scenarios, because the scenarios build on
one another (the fixtures, the traced lifecycle that the pgbench ceilings and the
floors replay, the list's bulk orders) and each side must migrate its own database;
alternating rounds still spreads slow drifts of the machine (other tenants, a
checkpoint, the page cache) over both sides, and the medians drop a single disturbed
run when there are three or more. Prints every figure's median on both sides and the
ratio head/baseline, then each run's exit status and invariants; exits 1 when any run
did. The no-op route runs the same code on both sides: its ratio is the noise.
"""

import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench import ceiling, checks, compare, fixtures, floor, pgbench, report
from bench.client import Connection
from bench.procs import ROOT, CpuMeter, Server, driver, free_port, machine_busy, wrk
from prodorder_api.events import service as events

OUT = Path(os.environ.get("BENCH_OUT") or ROOT / "bench" / "out")
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BULK_ORDERS = 100_000
# Synthetic orders for the list scenario, made in SQL (the API would take minutes):
# time-ordered ids like UUIDv7, a mix of statuses, one product.
BULK_SQL = """
INSERT INTO production_orders (id, number, status, item_id, bom_id, quantity, location_id,
    output_location_id, priority, reference, produced_quantity, scrapped_quantity,
    material_cost, labour_cost, output_value, scrap_value, version, created_at, updated_at)
SELECT (substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(h, 1, 3) || '-8'
        || substr(h, 4, 3) || '-' || substr(h, 7, 12))::uuid,
       nextval('production_order_number_seq'),
       (ARRAY['planned', 'planned', 'released', 'released', 'in_progress', 'completed',
              'completed', 'completed', 'cancelled', 'planned'])[1 + i % 10],
       $1::uuid, $2::uuid, 1, $3::uuid, $3::uuid, 0, 'bulk-' || i, 0, 0, 0, 0, 0, 0, 1,
       now(), now()
FROM (SELECT i, lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint - $4 + i), 12, '0') AS t,
             md5(i::text || random()::text) AS h
      FROM generate_series(1, $4) AS i) AS g
"""
# Their production_order.created events, as the service would have written (the final
# whole-database check wants one per order), positioned under the sequencer's lock so
# the dispatcher has nothing to sequence while the list scenario runs.
BULK_EVENTS_SQL = """
INSERT INTO events (id, type, created_at, data, position)
SELECT o.id, 'production_order.created', o.created_at,
       json_build_object('id', o.id::text, 'status', o.status),
       top.position + row_number() OVER (ORDER BY o.id)
FROM production_orders o,
     (SELECT coalesce(max(position), 0) AS position FROM events) AS top
WHERE o.reference LIKE 'bulk-%'
"""


HEADROOM_SQL = """
SELECT current_setting('max_connections')::int
       - current_setting('superuser_reserved_connections')::int
       - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
"""


@dataclass
class Settings:
    workers: int
    clients: int
    duration: float
    warmup: float
    rate: int
    list_orders: int
    server_url: str

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        server = env.get("BENCH_DATABASE_URL") or env.get("TEST_DATABASE_URL") or DEFAULT_SERVER
        return cls(
            workers=int(env.get("BENCH_WORKERS", "2")),
            clients=int(env.get("BENCH_CLIENTS", "32")),
            duration=float(env.get("BENCH_DURATION", "10")),
            warmup=float(env.get("BENCH_WARMUP", "2")),
            rate=int(env.get("BENCH_RATE", "1000")),
            list_orders=int(env.get("BENCH_LIST_ORDERS", str(BULK_ORDERS))),
            server_url=server,
        )


STARTED = time.monotonic()
# Order numbers start here, so the traced MO number cannot be mistaken for another
# integer in the trace (a position, a version) when pgbench.py looks for it.
FIRST_NUMBER = 1_000_000


def say(message: str) -> None:
    label = os.environ.get("BENCH_LABEL", "")
    label = f"{label}  " if label else ""
    print(f"{label}{time.monotonic() - STARTED:5.0f} s  {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.token = "po_bench_" + secrets.token_hex(16)
        self.name = f"prodorder_bench_{uuid.uuid4().hex[:10]}"
        server = make_url(settings.server_url)
        self.url = server.set(database=self.name).render_as_string(hide_password=False)
        self.admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
        self.dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.results: dict[str, Any] = {"problems": {}, "unexpected": []}
        self.service: Server | None = None
        self.noop: Server | None = None

    # --- the database -----------------------------------------------------------
    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        env = {**os.environ, "DATABASE_URL": self.url}
        subprocess.run([sys.executable, "-m", "prodorder_api.cli", "migrate"], env=env, check=True)
        sql = f"SELECT setval('production_order_number_seq', {FIRST_NUMBER})"
        asyncio.run(self._fetchval(sql))

    async def _server_facts(self) -> dict[str, Any]:
        """Free connections, and the settings the figures depend on (durability as shipped)."""
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            facts = {"connections_free": int(await conn.fetchval(HEADROOM_SQL))}
            for name in ("server_version", "fsync", "synchronous_commit", "max_connections"):
                facts[name] = await conn.fetchval(f"SHOW {name}")
            return facts
        finally:
            await conn.close()

    def drop_database(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    # --- servers ----------------------------------------------------------------
    def start_service(self, workers: int, trace: Path | None = None, wait: bool = True) -> Server:
        port = free_port()
        env = {
            "DATABASE_URL": self.url,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PRODORDER_BOOTSTRAP_KEY": self.token,
            "LOG_LEVEL": "WARNING",
        }
        if trace is not None:
            env["PRODORDER_TRACE_SQL"] = str(trace)
        args = [sys.executable, "-m", "prodorder_api.cli", "serve", "--workers", str(workers)]
        name = "traced service" if trace else "service"
        log = OUT / ("service-traced.log" if trace else "service.log")
        return Server.start(name, args, env, port, log, "/healthz" if wait else None)

    def start_noop(self, wait: bool = True) -> Server:
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "bench.noop_app:app", "--host", "127.0.0.1"]
        args += ["--port", str(port), "--workers", str(self.s.workers), "--no-access-log"]
        args += ["--no-proxy-headers", "--log-level", "warning"]
        ready = "/noop" if wait else None
        return Server.start("no-op app", args, {}, port, OUT / "noop.log", ready)

    # --- set-up and trace -------------------------------------------------------
    async def make_fixtures(self, port: int, tag: str) -> dict[str, Any]:
        clients = [f"{tag}-L{n:03d}" for n in range(self.s.clients)]
        lifecycle = await fixtures.make("127.0.0.1", port, self.token, [*clients, f"{tag}-LT"])
        shared = await fixtures.shared_component("127.0.0.1", port, self.token, tag)
        names = [f"{tag}-C{n:03d}" for n in range(self.s.clients)] + [f"{tag}-CT", f"{tag}-R"]
        contention = await fixtures.make("127.0.0.1", port, self.token, names, shared)
        return {
            "lifecycle": lifecycle[:-1],
            "lifecycle_trace": lifecycle[-1],
            "contention": contention[:-2],
            "contention_trace": contention[-2],
            "read": contention[-1],
        }

    async def trace(self, port: int, fixture: dict[str, Any], request_id: str) -> int:
        """A warm-up lifecycle, then the traced one; the traced order's number."""
        conn = Connection("127.0.0.1", port, self.token)
        try:
            await fixtures.lifecycle(conn, fixture)
            order = await fixtures.lifecycle(conn, fixture, {"X-Request-ID": request_id})
        finally:
            conn.close()
        return int(order["number"].removeprefix("MO-"))

    async def read_order(self, port: int, fixture: dict[str, Any]) -> str:
        conn = Connection("127.0.0.1", port, self.token)
        try:
            order = await fixtures.lifecycle(conn, fixture)
        finally:
            conn.close()
        assert len(order["requirements"]) == 5 and len(order["history"]) == 4
        return str(order["id"])

    # --- scenarios --------------------------------------------------------------
    def meter(self, server: Server | None = None) -> CpuMeter:
        server = server or self.service
        return CpuMeter(self.name, server.process.pid if server else None)

    def write_scenario(self, name: str, fixture_list: list[dict[str, Any]], port: int) -> None:
        say(f"{name}: {len(fixture_list)} clients, {self.s.duration:g} s")
        prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        cpu = self.meter()
        result = driver(
            "lifecycle",
            {
                "host": "127.0.0.1",
                "port": port,
                "token": self.token,
                "fixtures": fixture_list,
                "prefix": prefix,
                "warmup": self.s.warmup,
                "duration": self.s.duration,
            },
            OUT,
        )
        result["cpu"] = cpu.stop()
        allowed = ("409",) if name == "contention" else ()
        for status, count in result["statuses"].items():
            outcome = status.split(" ", 1)[1]
            if not outcome.startswith("2") and outcome not in allowed:
                sample = result["samples"].get(status, "")
                self.results["unexpected"].append(f"{name}: {count} × {status} {sample}")
        orders = result.pop("orders")
        result["orders"] = len(orders)
        result["completed"] = sum(o["status"] == "completed" for o in orders)
        self.results[name] = {"http": result}
        say(f"{name}: checking invariants and the effects of {len(orders)} orders")
        problems = asyncio.run(checks.whole_database(self.url))
        problems += asyncio.run(checks.effects(self.url, prefix, orders))
        self.results["problems"][f"after {name}"] = problems

    def read_scenarios(self, port: int, order_id: str) -> None:
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/production-orders/{order_id}"
        say(f"read: wrk, {self.s.clients} connections, {self.s.duration:g} s")
        self.warm_up(url, self.token)
        cpu = self.meter()
        read = wrk(url, self.token, self.s.clients, self.s.duration)
        read["cpu"] = cpu.stop()
        say(f"read: open loop at {self.s.rate}/s")
        paced = self.paced(port, f"/v1/production-orders/{order_id}", self.token)
        self.results["read"] = {"wrk": read, "paced": paced}

    def warm_up(self, url: str, token: str | None) -> None:
        """wrk for the warm-up (at least a second: wrk's unit), unless BENCH_WARMUP=0."""
        if self.s.warmup > 0:
            wrk(url, token, self.s.clients, self.s.warmup)

    def paced(
        self, port: int, path: str, token: str | None, server: Server | None = None
    ) -> dict[str, Any]:
        config = {"host": "127.0.0.1", "port": port, "token": token, "path": path}
        config |= {"rate": self.s.rate, "connections": self.s.clients}
        config |= {"warmup": self.s.warmup, "duration": self.s.duration}
        cpu = self.meter(server)
        result = driver("rate", config, OUT)
        result["cpu"] = cpu.stop()
        return result

    def list_scenario(self, port: int, fixture: dict[str, Any]) -> None:
        say(f"list: inserting {self.s.list_orders:,} orders")
        asyncio.run(self._bulk_orders(fixture))
        url = f"http://127.0.0.1:{port}/v1/production-orders?status=released"
        say(f"list: wrk, {self.s.clients} connections, {self.s.duration:g} s")
        self.warm_up(url, self.token)
        cpu = self.meter()
        listed = wrk(url, self.token, self.s.clients, self.s.duration)
        listed["cpu"] = cpu.stop()
        total = asyncio.run(self._fetchval("SELECT count(*) FROM production_orders"))
        self.results["list"] = {"wrk": listed, "orders": total}

    async def _bulk_orders(self, fixture: dict[str, Any]) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            location = await conn.fetchval("SELECT id FROM locations WHERE code = 'MAIN'")
            async with conn.transaction():
                await conn.execute(
                    BULK_SQL, fixture["product"], fixture["bom"], location, self.s.list_orders
                )
                await conn.execute("SELECT pg_advisory_xact_lock($1)", events.SEQUENCER_LOCK)
                await conn.execute(BULK_EVENTS_SQL)
            # As a database that grew to 100,000 orders would be: vacuumed, analysed
            # and checkpointed. The insert and the vacuum write ~500 MB of WAL, about
            # where PostgreSQL starts a checkpoint (max_wal_size 1 GB ÷ (1 +
            # checkpoint_completion_target 0.9)), and in a run of 2026-11-25 its log
            # showed that checkpoint spreading its writes over the next minute, right
            # across the measurement (list p99 218 ms). CHECKPOINT does it now, at full
            # speed. Other stalls remain (README, "Where the time goes").
            await conn.execute("VACUUM (ANALYZE)")
            try:
                await conn.execute("CHECKPOINT")
            except asyncpg.InsufficientPrivilegeError:
                say("list: no CHECKPOINT (needs superuser or pg_checkpoint); p99 may show one")
        finally:
            await conn.close()

    # --- ceilings ---------------------------------------------------------------
    def write_ceiling(
        self, name: str, traced: dict[str, Any], clients: list[dict[str, Any]]
    ) -> None:
        lifecycle = pgbench.read_trace(OUT / "trace.jsonl", traced["request_id"])
        traced_roles = asyncio.run(ceiling.roles(self.dsn, traced["fixture"]))
        header = (
            f"{name}: generated by bench/pgbench.py from {traced['request_id']}"
            f" in bench/out/trace.jsonl; do not edit"
        )
        template = pgbench.template(lifecycle, traced["number"], traced_roles, header)
        own = [asyncio.run(ceiling.roles(self.dsn, f)) for f in clients]
        scripts = ceiling.write_scripts(template, own, OUT / "pgbench", name)
        self.results[name]["ceiling"] = self.pgbench(f"{name} ceiling", scripts)
        self.results[name]["statements"] = [
            (s.name, s.statements, s.round_trips) for s in lifecycle.steps
        ]

    def pgbench(self, name: str, scripts: list[Path]) -> dict[str, Any]:
        say(f"{name}: {len(scripts)} pgbench clients, {self.s.duration:g} s")
        if self.s.warmup > 0:
            ceiling.run(self.url, scripts, self.s.warmup, OUT / "pgbench-log")
        cpu = self.meter()
        result = ceiling.run(self.url, scripts, self.s.duration, OUT / "pgbench-log")
        result["cpu"] = cpu.stop()
        if result["failures"]:
            self.results["unexpected"] += [f"{name} pgbench: {f}" for f in result["failures"]]
        return result

    # --- floors (bench/floor.py) ------------------------------------------------
    def floors(self) -> None:
        """The lifecycle's SQL from a server without application code: as the service
        sends it, and as one PL/pgSQL function call per action (with its own ceiling)."""
        scripts = sorted((OUT / "pgbench").glob("lifecycle-*.sql"))
        life = self.results["lifecycle"]
        # Both boot at once; the functions' server needs them only when called.
        servers = {mode: self.start_floor(mode) for mode in ("statements", "functions")}
        try:
            for server in servers.values():
                server.wait_ready("/ready")
            life["floor"] = self.floor_run("statements", scripts, servers["statements"])
            loaded = floor.load(scripts)
            asyncio.run(self._create_functions(loaded))
            calls = floor.call_scripts(loaded, OUT / "pgbench-functions")
            life["functions"] = {
                "http": self.floor_run("functions", scripts, servers["functions"]),
                "ceiling": self.pgbench("functions ceiling", calls),
            }
        finally:
            for server in servers.values():
                server.stop()

    async def _create_functions(self, scripts: dict[str, dict[str, list[floor.Command]]]) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await floor.install(conn, scripts)
        finally:
            await conn.close()

    def start_floor(self, mode: str) -> Server:
        """The floor's server (``mode``: statements or functions), not yet waited for."""
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--host", "127.0.0.1"]
        args += ["--port", str(port), "--workers", str(self.s.workers), "--no-access-log"]
        args += ["--no-proxy-headers", "--log-level", "warning"]
        env = {"FLOOR_SCRIPTS": str(OUT / "pgbench"), "FLOOR_DSN": self.dsn, "FLOOR_MODE": mode}
        return Server.start(f"floor ({mode})", args, env, port, OUT / f"floor-{mode}.log", None)

    def floor_run(self, mode: str, scripts: list[Path], server: Server) -> dict[str, Any]:
        port = server.port
        say(f"floor ({mode}): {len(scripts)} clients, {self.s.duration:g} s")
        try:
            cpu = self.meter(server)
            config = {
                "host": "127.0.0.1",
                "port": port,
                "clients": [floor.client_key(p) for p in scripts],
                "warmup": self.s.warmup,
                "duration": self.s.duration,
            }
            result = driver("floor", config, OUT)
            result["cpu"] = cpu.stop()
        finally:
            server.stop()
        for status, count in result["statuses"].items():
            if not status.split(" ", 1)[1].startswith("2"):
                sample = result["samples"].get(status, "")
                self.results["unexpected"].append(f"floor ({mode}): {count} × {status} {sample}")
        return result

    def noop_ceiling(self) -> None:
        server, self.noop = self.noop or self.start_noop(), None
        try:
            url = f"http://127.0.0.1:{server.port}/noop"
            say(f"no-op ceiling: wrk, {self.s.clients} connections, {self.s.duration:g} s")
            self.warm_up(url, None)
            cpu = self.meter(server)
            result = wrk(url, None, self.s.clients, self.s.duration)
            result["cpu"] = cpu.stop()
            paced = self.paced(server.port, "/noop", None, server)
        finally:
            server.stop()
        self.results["noop"] = {"wrk": result, "paced": paced}

    # --- the whole run ----------------------------------------------------------
    def run(self) -> int:
        OUT.mkdir(parents=True, exist_ok=True)
        self.results["meta"] = self.meta(machine_busy(1.0))
        facts = asyncio.run(self._server_facts())
        self.results["meta"] |= facts
        say(f"database {self.name}; {facts['connections_free']} PostgreSQL connections free")
        self.create_database()
        try:
            return self._run()
        except Exception as exc:
            say(f"FAILED: {type(exc).__name__}: {exc}")
            if self.service is not None:
                say(f"the service's log ends:\n{self.service.tail()}")
            return 2
        finally:
            for server in (self.service, self.noop):
                if server is not None:
                    server.stop()
            self.drop_database()
            say(f"dropped {self.name}")

    def _run(self) -> int:
        trace_file = OUT / "trace.jsonl"
        trace_file.unlink(missing_ok=True)
        say(f"starting the service ({self.s.workers} workers), a traced one and the no-op app")
        # They boot at once (the imports take seconds), then each must answer; the
        # no-op app then idles until its own measurement, at the end.
        self.service = self.start_service(self.s.workers, wait=False)
        traced = self.start_service(1, trace_file, wait=False)
        self.noop = self.start_noop(wait=False)
        try:
            self.service.wait_ready("/healthz")
            traced.wait_ready("/healthz")
            self.noop.wait_ready("/noop")
            tag = f"B{uuid.uuid4().hex[:6]}"
            say("fixtures: products with 5-line BOMs, components in stock")
            fx = asyncio.run(self.make_fixtures(self.service.port, tag))
            say("tracing one lifecycle of each write scenario")
            traces = {}
            for name in ("lifecycle", "contention"):
                request_id = f"bench-trace-{name}"
                fixture = fx[f"{name}_trace"]
                number = asyncio.run(self.trace(traced.port, fixture, request_id))
                traces[name] = {"fixture": fixture, "number": number, "request_id": request_id}
        finally:
            traced.stop()
        port = self.service.port
        read_id = asyncio.run(self.read_order(port, fx["read"]))
        self.write_scenario("lifecycle", fx["lifecycle"], port)
        self.write_scenario("contention", fx["contention"], port)
        self.read_scenarios(port, read_id)
        self.list_scenario(port, fx["read"])
        say("final whole-database check")
        self.results["problems"]["final"] = asyncio.run(checks.whole_database(self.url))
        self.service.stop()
        self.service = None
        # pgbench replays literal balances, so the database no longer adds up after it.
        self.write_ceiling("lifecycle", traces["lifecycle"], fx["lifecycle"])
        self.floors()
        self.write_ceiling("contention", traces["contention"], fx["contention"])
        self.noop_ceiling()
        return self.finish()

    def meta(self, idle_busy: float) -> dict[str, Any]:
        return {
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "busy_before": idle_busy,
            **{k: v for k, v in vars(self.s).items() if k != "server_url"},
        }

    def finish(self) -> int:
        text = report.render(self.results)
        print(text)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (OUT / "latest.txt").write_text(text)
        (OUT / f"bench-{stamp}.txt").write_text(text)
        (OUT / "latest.json").write_text(json.dumps(self.results, indent=1, default=str))
        broken = any(self.results["problems"].values()) or self.results["unexpected"]
        return 1 if broken else 0


def main() -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (make bench installs it)")
    baseline = os.environ.get("BENCH_BASELINE", "").strip()
    if baseline:
        rounds = int(os.environ.get("BENCH_ROUNDS") or compare.DEFAULT_ROUNDS)
        sys.exit(compare.main(baseline, rounds, OUT))
    sys.exit(Bench(Settings.from_env()).run())


if __name__ == "__main__":
    main()
