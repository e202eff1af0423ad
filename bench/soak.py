"""`make soak`: crash safety under load (issue 9, item 4).

Two service instances (`prodorder-api serve --workers 2`, each its own process
group) share one fresh PostgreSQL database. Clients drive a mixed load through
both: production-order lifecycles (create, release, start, outputs, complete or
cancel), receipts, adjustments, and rounds of releases racing for a scarce
component. Every write carries an `Idempotency-Key`; a request that loses its
connection is sent again with the same key (to whichever instance answers) until it
gets a definite answer, exactly as a careful client would.

Meanwhile one instance at a time is killed with SIGKILL (its whole process group:
the uvicorn master and its workers) and restarted. Each kill waits for a moment when
one of the victim's transactions is inside COMMIT, which a deferred trigger in the
throwaway database stretches by `--commit-latency-ms`: such a request takes effect
with nobody left to answer it, and its retry must be answered by replay. At the end every key still
unanswered is resolved by retrying it, a sample of answered keys is replayed, the
instances are stopped, and the database is checked (see `bench/soak_checks.py`).
The database is dropped at the end. Exit status 1 on any violation.

    PYTHONPATH=src python -m bench.soak [--duration 50] [--kill-every 11]
"""

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.pg import admin, asyncpg_dsn

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SCARCE_PER_ORDER = 3  # units of the scarce component one racing order reserves

# ---------------------------------------------------------------------------- output

T0 = time.monotonic()


def now() -> float:
    return time.monotonic() - T0


def say(message: str) -> None:
    print(f"[{now():6.1f}s] {message}", flush=True)


# ------------------------------------------------------------------------ instances


class Instance:
    """One `prodorder-api serve --workers N` in its own process group."""

    def __init__(self, name: str, port: int, workers: int, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.workers = workers
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = OUT / f"soak-instance-{name}.log"
        self.log_path.unlink(missing_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "prodorder_api.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg takes all of it
            )

    async def wait_ready(self, http: httpx.AsyncClient, limit: float = 60.0) -> float:
        """Seconds until `/readyz` answers 200."""
        started = time.monotonic()
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance {self.name} exited ({self.proc.returncode})")
            with contextlib.suppress(httpx.TransportError):
                response = await http.get(f"{self.url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return time.monotonic() - started
            if time.monotonic() - started > limit:
                raise RuntimeError(f"instance {self.name} not ready after {limit:.0f} s")
            await asyncio.sleep(0.1)

    def pids(self) -> list[int]:
        """Every live process in the instance's process group (master first)."""
        if self.proc is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                found.append(int(entry.name))
        return sorted(found, key=lambda pid: (pid != self.proc.pid if self.proc else 0, pid))

    def roles(self) -> str:
        """The process group, each pid with what it is."""
        labelled = []
        for pid in self.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                cmdline = b""
            role = "master" if self.proc and pid == self.proc.pid else "worker"
            if b"resource_tracker" in cmdline:
                role = "resource tracker"
            labelled.append(f"{pid} {role}")
        return ", ".join(labelled)

    def kill9(self) -> list[int]:
        assert self.proc is not None
        pids = self.pids()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return pids

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Workers outlive a master that was told to stop only in a bug; make sure.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- client


@dataclass(eq=False)  # identity: the kill records which attempts were in flight
class Attempt:
    instance: str
    key: str | None


@dataclass
class Kill:
    number: int
    instance: str
    at: float
    pids: list[int]
    in_flight: int  # requests on the killed instance
    in_flight_total: int  # requests on both instances
    attempts: list[Attempt]
    sessions: int = 0  # the instance's database sessions running a statement then
    committing: int = 0  # of those, inside COMMIT (see slow_commits)
    dropped: int = 0  # in-flight attempts ended by a connection error
    ready_after: float | None = None


@dataclass
class KeyRecord:
    """One idempotency key: the request it stands for and what became of it."""

    kind: str  # receipt, adjustment, create, release, start, output, complete, cancel, setup
    method: str
    path: str
    body: Any
    order: "OrderTrack | None" = None
    quantity: Decimal | None = None  # outputs and completions: units reported
    outcome: str = "pending"  # applied (2xx) | refused (4xx) | error (5xx) | unresolved
    status: int | None = None
    code: str | None = None
    response: Any = None
    lost_connection: bool = False  # some attempt ended by a connection error
    replayed: bool = False  # the final answer was a replay
    resolved_late: bool = False  # answered only in the resolution phase


@dataclass
class OrderTrack:
    product: str
    quantity: Decimal
    create_key: str
    id: str | None = None
    keys: list[str] = field(default_factory=list)
    abandoned: bool = False  # an answer never came; the client stopped driving it


@dataclass
class Stats:
    calls: int = 0  # logical requests
    attempts: int = 0  # HTTP requests sent, retries included
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # connection refused (instance down)
    dropped: int = 0  # connection lost mid-request (or a stale keep-alive)
    timeouts: int = 0
    retries: int = 0
    replays: int = 0  # answers with Idempotent-Replayed: true
    in_use: int = 0  # 409 idempotency_key_in_use
    unexpected: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


@dataclass
class Reply:
    status: int | None  # None: no definite answer before giving up
    body: Any = None
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Api:
    """Round-robin over the instances; on a connection error, the other one."""

    def __init__(self, instances: list[Instance], token: str, tag: str) -> None:
        self.instances = instances
        self.tag = tag
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=2.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
        )
        self.stats = Stats()
        self.keys: dict[str, KeyRecord] = {}
        self.in_flight: dict[str, dict[int, Attempt]] = {i.name: {} for i in instances}
        self.kills: list[Kill] = []
        self._suspect_until = {i.name: 0.0 for i in instances}
        self._turn = itertools.count()

    def new_key(self, kind: str) -> str:
        return f"soak-{self.tag}-{kind}-{uuid.uuid4().hex[:20]}"

    def _pick(self, avoid: str | None) -> Instance:
        clock = time.monotonic()
        healthy = [i for i in self.instances if self._suspect_until[i.name] <= clock]
        if avoid is not None and len(healthy) > 1:
            healthy = [i for i in healthy if i.name != avoid]
        pool = healthy or self.instances
        return pool[next(self._turn) % len(pool)]

    async def write(
        self, kind: str, path: str, body: Any, *, method: str = "POST", **meta: Any
    ) -> tuple[str, Reply]:
        key = self.new_key(kind)
        record = KeyRecord(kind=kind, method=method, path=path, body=body, **meta)
        self.keys[key] = record
        reply = await self.send(method, path, body, key=key)
        settle(record, reply)
        return key, reply

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        patience: float = 45.0,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        """One logical request, retried with the same key until a definite answer."""
        self.stats.calls += 1
        headers = {"Idempotency-Key": key} if key else {}
        give_up = time.monotonic() + patience
        avoid: str | None = None
        for attempt_number in itertools.count():
            if attempt_number:
                self.stats.retries += 1
            if time.monotonic() > give_up:
                return Reply(None)
            instance = self._pick(avoid)
            avoid = None
            attempt = Attempt(instance.name, key)
            flight = self.in_flight[instance.name]
            flight[id(attempt)] = attempt
            self.stats.attempts += 1
            try:
                response = await self.http.request(
                    method, instance.url + path, json=body, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError):
                    self.stats.refused += 1
                    self._suspect_until[instance.name] = time.monotonic() + 1.0
                elif isinstance(exc, httpx.TimeoutException):
                    self.stats.timeouts += 1
                else:
                    self.stats.dropped += 1
                for kill in self.kills:
                    if attempt in kill.attempts:
                        kill.dropped += 1
                if key is not None and key in self.keys:
                    self.keys[key].lost_connection = True
                avoid = instance.name
                await asyncio.sleep(random.uniform(0.02, 0.15))
                continue
            finally:
                flight.pop(id(attempt), None)
            self.stats.statuses[response.status_code] += 1
            try:
                payload = response.json()
            except ValueError:
                payload = response.text
            reply = Reply(
                response.status_code,
                payload,
                response.headers.get("idempotent-replayed") == "true",
            )
            if reply.status == 409 and reply.code == "idempotency_key_in_use":
                # The first attempt is still running somewhere (or its transaction has
                # not yet been rolled back after its instance died): ask again later.
                self.stats.in_use += 1
                await asyncio.sleep(min(0.1 * (attempt_number + 1), 1.0))
                continue
            if reply.replayed:
                self.stats.replays += 1
            if response.status_code >= 500:
                self.stats.server_errors.append(
                    f"{method} {path} → {response.status_code}: {str(payload)[:300]}"
                )
            return reply
        raise AssertionError("unreachable")

    async def get(self, path: str, **params: Any) -> Any:
        reply = await self.send("GET", path, params=params)
        if not reply.ok:
            raise RuntimeError(f"GET {path} → {reply.status}: {reply.body}")
        return reply.body


def settle(record: KeyRecord, reply: Reply) -> None:
    if reply.status is None:
        record.outcome = "unresolved"
        return
    record.status, record.code = reply.status, reply.code
    record.replayed = reply.replayed
    if reply.ok:
        record.outcome, record.response = "applied", reply.body
    elif reply.status >= 500:
        record.outcome = "error"
    else:
        record.outcome = "refused"


# ------------------------------------------------------------------------- workload


@dataclass
class World:
    api: Api
    rng: random.Random
    items: dict[str, str] = field(default_factory=dict)  # role → item id
    orders: list[OrderTrack] = field(default_factory=list)
    stopping: bool = False
    race_rounds: list[dict[str, Any]] = field(default_factory=list)
    scarce_available: Decimal | None = Decimal(0)  # None: no longer known exactly
    outbox_probe: int = 0  # events present after the setup's order was created
    require_outbox: bool = False  # fail, not skip, when the build writes no events
    commit_latency: int = 0  # ms added to every keyed COMMIT

    def expect(self, kind: str, reply: Reply, *allowed: str) -> None:
        """Count answers a correct service would not give here."""
        if reply.ok or reply.status is None or reply.code in allowed:
            return
        self.api.stats.unexpected[f"{kind} → {reply.status} {reply.code}"] += 1


LOTS = [("RESIN-A", 40), ("RESIN-B", 25), ("RESIN-C", 60), ("RESIN-D", 90)]


def qty(rng: random.Random, low: int, high: int, places: int = 3) -> str:
    whole = rng.randint(low, high)
    if rng.random() < 0.5 and places:
        return str(Decimal(whole) + Decimal(rng.randint(1, 10**places - 1)) / 10**places)
    return str(whole)


def money(rng: random.Random) -> str:
    return str(Decimal(rng.randint(1, 500_000)) / 10_000)


async def setup(world: World, tag: str) -> None:
    api = world.api

    async def make(kind: str, path: str, body: Any) -> Any:
        _, reply = await api.write(kind, path, body)
        if not reply.ok:
            raise RuntimeError(f"setup {path} → {reply.status}: {reply.body}")
        return reply.body

    specs = {
        "bolt": {"name": "Bolt M6", "standard_cost": "0.08"},
        "sheet": {"name": "Steel sheet", "standard_cost": "2.35"},
        "resin": {"name": "Resin", "tracking": "lot", "uom": "kg"},
        "chip": {"name": "Controller chip (scarce)", "standard_cost": "17.5"},
        "widget": {"name": "Widget"},
        "gadget": {"name": "Gadget"},
    }
    for role, spec in specs.items():
        body = {"sku": f"SOAK-{tag}-{role}".upper(), **spec}
        world.items[role] = (await make("setup", "/v1/items", body))["id"]
    items = world.items
    await make(
        "setup",
        "/v1/boms",
        {
            "item_id": items["widget"],
            "lines": [
                {"component_item_id": items["bolt"], "quantity": "4", "scrap_factor": "0.05"},
                {"component_item_id": items["sheet"], "quantity": "1"},
                {"component_item_id": items["resin"], "quantity": "0.25"},
            ],
            "operations": [{"sequence": 10, "name": "Press", "run_minutes": "3"}],
        },
    )
    await make(
        "setup",
        "/v1/boms",
        {
            "item_id": items["gadget"],
            "lines": [{"component_item_id": items["chip"], "quantity": SCARCE_PER_ORDER}],
        },
    )
    for role, amount in (("bolt", 3000), ("sheet", 600)):
        await receive(world, role, str(amount), check=True)
    for _ in LOTS:
        await receive(world, "resin", "150", check=True)


async def receive(world: World, role: str, quantity: str, *, check: bool = False) -> Reply:
    """A receipt whose `reference` is its own idempotency key."""
    api, rng = world.api, world.rng
    key = api.new_key("receipt")
    body: dict[str, Any] = {
        "item_id": world.items[role],
        "quantity": quantity,
        "unit_cost": money(rng),
        "reference": key,
    }
    if role == "resin":
        lot, days = rng.choice(LOTS)
        body |= {"lot_code": lot, "expiry_date": str(date(2031, 1, 1) + timedelta(days=days))}
    record = KeyRecord("receipt", "POST", "/v1/stock/receipts", body)
    api.keys[key] = record
    reply = await api.send("POST", "/v1/stock/receipts", body, key=key)
    settle(record, reply)
    if check and not reply.ok:
        raise RuntimeError(f"receipt → {reply.status}: {reply.body}")
    world.expect("receipt", reply)
    return reply


async def create_order(world: World, product: str, quantity: str) -> OrderTrack | None:
    api = world.api
    key = api.new_key("create")
    track = OrderTrack(product, Decimal(quantity), key)
    body = {"item_id": world.items[product], "quantity": quantity, "reference": key}
    record = KeyRecord("create", "POST", "/v1/production-orders", body, order=track)
    api.keys[key] = record
    world.orders.append(track)
    reply = await api.send("POST", "/v1/production-orders", body, key=key)
    settle(record, reply)
    world.expect("create", reply)
    if not reply.ok:
        track.abandoned = True
        return None
    track.id = reply.body["id"]
    return track


async def act(
    world: World, order: OrderTrack, action: str, body: Any = None, quantity: Decimal | None = None
) -> Reply:
    assert order.id is not None
    path = f"/v1/production-orders/{order.id}/{action}s" if action == "output" else None
    path = path or f"/v1/production-orders/{order.id}/{action}"
    key, reply = await world.api.write(action, path, body, order=order, quantity=quantity)
    order.keys.append(key)
    if reply.status is None:
        order.abandoned = True
    return reply


async def lifecycle_worker(world: World) -> None:
    """Orders of widgets from plan to stock; a few are cancelled on the way."""
    rng = world.rng
    while not world.stopping:
        quantity = rng.randint(1, 6)
        order = await create_order(world, "widget", str(quantity))
        if order is None:
            continue
        if rng.random() < 0.05:
            world.expect("cancel", await act(world, order, "cancel", {"reason": "soak"}))
            continue
        released = False
        for _ in range(3):
            reply = await act(world, order, "release")
            world.expect("release", reply, "insufficient_stock")
            if reply.ok or order.abandoned:
                released = reply.ok
                break
            for shortage in reply.body.get("shortages", []):  # buy what is missing
                role = next(r for r, i in world.items.items() if i == shortage["item_id"])
                extra = Decimal(shortage["shortage"]) + 200
                await receive(world, role, str(extra))
        if order.abandoned:
            continue
        if not released or rng.random() < 0.08:
            world.expect("cancel", await act(world, order, "cancel", {"reason": "soak"}))
            continue
        reply = await act(world, order, "start")
        world.expect("start", reply)
        if not reply.ok:
            continue
        produced = Decimal(0)
        for _ in range(rng.choice([0, 1, 1, 2])):
            if produced + 1 >= quantity:
                break
            reply = await act(world, order, "output", {"quantity": "1"}, quantity=Decimal(1))
            world.expect("output", reply)
            if not reply.ok:
                break
            produced += 1
        if order.abandoned:
            continue
        final = Decimal(quantity) - produced
        reply = await act(world, order, "complete", {"output_quantity": str(final)}, quantity=final)
        world.expect("complete", reply)


async def race_worker(world: World, contenders: int) -> None:
    """Rounds of orders racing to release on a scarce component, across both instances.

    Only this task touches the scarce item, so while every answer is known the client
    knows exactly how many units are free, hence exactly how many releases must win.
    """
    rng = world.rng
    while not world.stopping:
        target = rng.randint(SCARCE_PER_ORDER, SCARCE_PER_ORDER * (contenders - 1) + 2)
        if world.scarce_available is not None and world.scarce_available < target:
            reply = await receive(world, "chip", str(target - world.scarce_available))
            if reply.ok:
                world.scarce_available += target - world.scarce_available
            elif reply.status is None:
                world.scarce_available = None
        created = await asyncio.gather(
            *(create_order(world, "gadget", "1") for _ in range(contenders))
        )
        orders = [o for o in created if o is not None]
        replies = await asyncio.gather(*(act(world, o, "release") for o in orders))
        for reply in replies:
            world.expect("race release", reply, "insufficient_stock")
        wins = [o for o, r in zip(orders, replies, strict=True) if r.ok]
        known = world.scarce_available is not None and all(r.status for r in replies)
        round_ = {"contenders": len(orders), "wins": len(wins), "known": known}
        if known:
            assert world.scarce_available is not None
            available = world.scarce_available
            round_ |= {
                "available": available,
                "expected": min(len(orders), int(available // SCARCE_PER_ORDER)),
            }
            world.scarce_available = available - SCARCE_PER_ORDER * len(wins)
        else:
            world.scarce_available = None
        world.race_rounds.append(round_)
        steps = []
        for order, reply in zip(orders, replies, strict=True):
            if reply.ok and rng.random() < 0.5:
                steps.append(finish_gadget(world, order))
            elif reply.status is not None:
                steps.append(cancel_gadget(world, order, freed=reply.ok))
        await asyncio.gather(*steps)


async def finish_gadget(world: World, order: OrderTrack) -> None:
    reply = await act(world, order, "start")
    world.expect("start", reply)
    if reply.ok:
        reply = await act(world, order, "complete", {}, quantity=order.quantity)
        world.expect("complete", reply)
    if not reply.ok:
        world.scarce_available = None


async def cancel_gadget(world: World, order: OrderTrack, *, freed: bool) -> None:
    reply = await act(world, order, "cancel", {"reason": "lost the race"})
    world.expect("cancel", reply)
    if not reply.ok:
        world.scarce_available = None
    elif freed and world.scarce_available is not None:
        world.scarce_available += SCARCE_PER_ORDER * order.quantity


async def receipt_worker(world: World) -> None:
    rng = world.rng
    while not world.stopping:
        await receive(world, rng.choice(["bolt", "bolt", "sheet", "resin"]), qty(rng, 1, 60))
        await asyncio.sleep(rng.uniform(0.05, 0.25))


async def adjustment_worker(world: World) -> None:
    rng = world.rng
    while not world.stopping:
        role = rng.choice(["bolt", "sheet"])
        delta = Decimal(qty(rng, 1, 8)) * rng.choice([-1, 1])
        body = {
            "item_id": world.items[role],
            "quantity_delta": str(delta),
            "reason": "soak cycle count",
        }
        key = world.api.new_key("adjustment")
        body["reference"] = key
        record = KeyRecord("adjustment", "POST", "/v1/stock/adjustments", body)
        world.api.keys[key] = record
        reply = await world.api.send("POST", "/v1/stock/adjustments", body, key=key)
        settle(record, reply)
        world.expect("adjustment", reply, "insufficient_stock")
        await asyncio.sleep(rng.uniform(0.05, 0.3))


async def reader(world: World) -> None:
    """Reads in between, as dashboards and ERPs do; they must never fail."""
    api, rng = world.api, world.rng
    while not world.stopping:
        path, params = rng.choice(
            [
                ("/v1/stock", {"limit": 100}),
                ("/v1/production-orders", {"status": "in_progress", "limit": 50}),
                (f"/v1/items/{world.items['bolt']}/stock", {}),
            ]
        )
        reply = await api.send("GET", path, params=params)
        world.expect(f"GET {path.split('/')[2]}", reply)
        await asyncio.sleep(rng.uniform(0.1, 0.4))


# ---------------------------------------------------------------------------- kills


def database_ports(pids: list[int], server_port: int) -> set[int]:
    """Local ports of the TCP connections these processes hold to the database server,
    i.e. the `client_port` of their sessions in `pg_stat_activity`."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                if parts[9] in inodes and remote_port == server_port:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


async def moment_to_kill(
    victim: Instance, conn: asyncpg.Connection, database: str, server_port: int, patience: float
) -> tuple[int, int]:
    """Wait (at most `patience` s) until one of the victim's sessions is inside COMMIT;
    returns its sessions running a statement and, of those, the ones committing."""
    give_up = time.monotonic() + patience
    while True:
        ports = database_ports(victim.pids(), server_port)
        rows = await conn.fetch(
            "SELECT state, wait_event FROM pg_stat_activity "
            "WHERE datname = $1 AND client_port = ANY($2::int[]) AND state = 'active'",
            database,
            list(ports),
        )
        committing = sum(r["wait_event"] == "PgSleep" for r in rows)
        if committing or time.monotonic() > give_up:
            return len(rows), committing
        await asyncio.sleep(0.01)


async def killer(
    world: World,
    instances: list[Instance],
    ready: httpx.AsyncClient,
    args: argparse.Namespace,
    database_url: str,
) -> None:
    """SIGKILL one instance's process group every few seconds, alternating, and restart
    it; the other one is always up while this happens. Each kill waits a moment for
    one of the victim's transactions to be inside COMMIT, the worst moment to die."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    server_port = url.port or 5432
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        next_at = args.first_kill
        for number in itertools.count(1):
            wait = next_at - load_elapsed(world)
            if wait > 0:
                await asyncio.sleep(wait)
            if world.stopping or load_elapsed(world) > args.duration - args.min_tail:
                return
            victim = instances[(number - 1) % len(instances)]
            await kill_and_restart(world, victim, number, ready, conn, url.database, server_port)
            # Both instances serve for a while before the next kill, however slow the start.
            next_at = max(next_at + args.kill_every, load_elapsed(world) + args.both_up)
    finally:
        await conn.close()


async def kill_and_restart(
    world: World,
    victim: Instance,
    number: int,
    ready: httpx.AsyncClient,
    conn: asyncpg.Connection,
    database: str | None,
    server_port: int,
) -> None:
    api = world.api
    patience = 3.0 if world.commit_latency else 0.0
    sessions, committing = await moment_to_kill(victim, conn, database or "", server_port, patience)
    roles = victim.roles()
    attempts = list(api.in_flight[victim.name].values())
    total = sum(len(f) for f in api.in_flight.values())
    pids = victim.kill9()
    kill = Kill(number, victim.name, now(), pids, len(attempts), total, attempts)
    kill.sessions, kill.committing = sessions, committing
    api.kills.append(kill)
    say(
        f"kill -9 #{number}: instance {victim.name} (port {victim.port}), process group "
        f"{pids[0]}: {roles}; in flight: {len(attempts)} on {victim.name} ({total} in all), "
        f"its database sessions: {sessions} running, {committing} inside COMMIT"
    )
    victim.start()
    kill.ready_after = await victim.wait_ready(ready)
    say(
        f"instance {victim.name} restarted, ready after {kill.ready_after:.1f} s; "
        f"process group {victim.roles()}"
    )


LOAD_STARTED: list[float] = []


def load_elapsed(_world: World) -> float:
    return time.monotonic() - LOAD_STARTED[0] if LOAD_STARTED else 0.0


# ----------------------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def slow_commits(database_url: str, milliseconds: int) -> None:
    """Make every keyed write's COMMIT take a little longer, like a slow disk.

    A deferred trigger on the idempotency record (which every keyed write inserts in
    its own transaction) sleeps at COMMIT time. A kill that lands then leaves the
    transaction to commit without its worker: the client sees a dropped connection
    for a request that took effect, which is exactly the case a retry with the same
    key must answer by replay. Without it that window is a few microseconds wide.
    Test harness only: the trigger lives in the soak's throwaway database.
    """
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION soak_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep({milliseconds / 1000}); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER soak_slow_commit AFTER INSERT ON idempotency_keys
              DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION soak_slow_commit();
            """
        )
    finally:
        await conn.close()


async def count_events(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def wait_quiet(database_url: str, name: str, limit: float = 20.0) -> int:
    """Wait until no session of the killed or stopped instances is left in the database."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        deadline = time.monotonic() + limit
        while True:
            others = int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                    "AND pid <> pg_backend_pid()",
                    name,
                )
            )
            if others == 0 or time.monotonic() > deadline:
                return others
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def logged_errors(instances: list[Instance]) -> Counter[str]:
    """Why the instances answered 5xx: the cause of each unhandled error they logged."""
    causes: Counter[str] = Counter()
    pattern = re.compile(r"^[\w.]+(?:Error|Exception)\w*: (?:\([\w.]+\) )?(.+)$")
    for instance in instances:
        with contextlib.suppress(OSError):
            for line in instance.log_path.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("level") not in ("error", "critical"):
                        continue
                    found = [pattern.match(x) for x in entry.get("exception", "").splitlines()]
                    causes[next((m[1] for m in reversed(found) if m), entry["message"])] += 1
    return causes


async def resolve(api: Api) -> tuple[int, int]:
    """Ask again for every key that never got a definite answer; (asked, answered)."""
    pending = [(k, r) for k, r in api.keys.items() if r.outcome in ("unresolved", "pending")]
    answered = 0
    for key, record in pending:
        reply = await api.send(record.method, record.path, record.body, key=key, patience=60)
        settle(record, reply)
        record.resolved_late = True
        if reply.status is not None:
            answered += 1
            if reply.ok and record.kind == "create" and record.order is not None:
                record.order.id = reply.body["id"]
    return len(pending), answered


async def replay_sample(api: Api, rng: random.Random, size: int) -> tuple[int, list[str]]:
    """Send answered keys again: each must replay its first answer, byte for byte."""
    applied = [(k, r) for k, r in api.keys.items() if r.outcome == "applied"]
    lost = [kr for kr in applied if kr[1].lost_connection]
    rest = [kr for kr in applied if not kr[1].lost_connection]
    sample = lost[:size] + rng.sample(rest, min(len(rest), max(size - len(lost), size // 2)))
    problems = []
    for key, record in sample:
        reply = await api.send(record.method, record.path, record.body, key=key)
        if not (reply.ok and reply.replayed and reply.body == record.response):
            problems.append(
                f"{record.kind} {key}: replay gave {reply.status} "
                f"replayed={reply.replayed} same_body={reply.body == record.response}"
            )
    return len(sample), problems


async def run(args: argparse.Namespace) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    random.seed(seed)
    server = args.server or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    name = f"prodorder_soak_{tag}"
    from sqlalchemy.engine import make_url

    database_url = make_url(server).set(database=name).render_as_string(hide_password=False)
    token = f"po_soak_{uuid.uuid4().hex}"
    say(f"soak {tag}: seed {seed}, database {name}, {args.duration:.0f} s of load")

    await admin(server, f'CREATE DATABASE "{name}"')
    instances: list[Instance] = []
    api: Api | None = None
    try:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PRODORDER_BOOTSTRAP_KEY": token,
            "PRODORDER_DB_POOL_SIZE": str(args.pool_size),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prodorder_api.cli", "migrate", env=env, cwd=ROOT
        )
        if await migrate.wait() != 0:
            raise RuntimeError("prodorder-api migrate failed")
        if args.commit_latency_ms > 0:
            await slow_commits(database_url, args.commit_latency_ms)
            say(
                f"every keyed COMMIT takes {args.commit_latency_ms} ms longer (a deferred "
                "trigger), so kills also catch requests that commit without an answer"
            )
        ports = args.ports or [free_port(), free_port()]
        instances = [Instance(n, p, args.workers, env) for n, p in zip("AB", ports, strict=False)]
        for instance in instances:
            instance.start()
        api = Api(instances, token, tag)
        ready_client = httpx.AsyncClient()
        for instance in instances:
            took = await instance.wait_ready(ready_client)
            say(
                f"instance {instance.name}: port {instance.port}, {args.workers} workers, "
                f"ready after {took:.1f} s; process group {instance.roles()}"
            )
        world = World(
            api, rng, require_outbox=args.require_outbox, commit_latency=args.commit_latency_ms
        )
        await setup(world, tag)
        probe = await create_order(world, "widget", "1")
        if probe is None:
            raise RuntimeError("setup: could not create an order")
        world.outbox_probe = await count_events(database_url)
        say(
            f"setup done: 6 items, 2 BOMs, stock received; outbox probe: "
            f"{world.outbox_probe} event row(s) after the first order"
        )

        LOAD_STARTED.append(time.monotonic())
        tasks = [asyncio.create_task(lifecycle_worker(world)) for _ in range(args.lifecycles)]
        tasks += [asyncio.create_task(race_worker(world, args.contenders))]
        tasks += [asyncio.create_task(receipt_worker(world))]
        tasks += [asyncio.create_task(adjustment_worker(world))]
        tasks += [asyncio.create_task(reader(world))]
        kill_task = asyncio.create_task(killer(world, instances, ready_client, args, database_url))
        await asyncio.sleep(args.duration)
        world.stopping = True
        say("load stops: waiting for the clients to finish their current requests")
        await kill_task
        results = await asyncio.gather(*tasks, return_exceptions=True)
        crashed = [r for r in results if isinstance(r, BaseException)]
        for exc in crashed:
            say(f"client task failed: {exc!r}")
        load_seconds = load_elapsed(world)
        load_stats = copy.deepcopy(api.stats)  # the totals of the load, before the checks
        for instance in instances:  # both must be up for the resolution phase
            if instance.proc is None or instance.proc.poll() is not None:
                instance.start()
            await instance.wait_ready(ready_client)
        asked, answered = await resolve(api)
        say(f"resolution: {asked} key(s) without an answer asked again, {answered} answered")
        sampled, replay_problems = await replay_sample(api, rng, args.replay_sample)
        say(f"replay check: {sampled} answered key(s) sent again")
        await ready_client.aclose()
        for instance in instances:
            instance.stop()
        lingering = await wait_quiet(database_url, name)

        from bench.soak_checks import Report, check_database

        report = Report()
        report.add("client tasks ran to the end", not crashed, [repr(e) for e in crashed])
        await check_database(report, database_url, world, api)
        report.add(
            "every key answered in the end (none unresolved)",
            all(r.outcome != "unresolved" for r in api.keys.values()),
            [k for k, r in api.keys.items() if r.outcome == "unresolved"][:10],
        )
        report.add(
            f"replays: {sampled} answered keys sent again replay their first answer exactly",
            not replay_problems,
            replay_problems[:10],
        )
        causes = logged_errors(instances)
        report.add(
            "no 5xx answers",
            not api.stats.server_errors,
            [f"{n}× logged cause: {cause}" for cause, n in causes.most_common(5)]
            + api.stats.server_errors[:5],
        )
        report.add(
            "no unexpected refusals (only insufficient_stock where stock can run out)",
            not api.stats.unexpected,
            [f"{n}× {what}" for what, n in api.stats.unexpected.most_common(10)],
        )
        report.add("no database session left behind", lingering == 0, [f"{lingering} left"])
        print_summary(world, api, load_stats, load_seconds, (asked, answered, sampled))
        report.print()
        return 0 if report.ok else 1
    finally:
        for instance in instances:
            instance.stop()
        if api is not None:
            await api.http.aclose()
        if args.keep_db:
            say(f"database kept: {database_url}")
        else:
            await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"database {name} dropped")


def print_summary(
    world: World, api: Api, stats: Stats, seconds: float, after: tuple[int, int, int]
) -> None:
    asked, answered, sampled = after
    ok = sum(n for s, n in stats.statuses.items() if 200 <= s < 300)
    conflicts = stats.statuses.get(409, 0)
    kinds = Counter(r.kind for r in api.keys.values())
    applied = Counter(r.kind for r in api.keys.values() if r.outcome == "applied")
    lost = [r for r in api.keys.values() if r.lost_connection and r.outcome == "applied"]
    print("\n=== kills ===")
    for kill in api.kills:
        writes = [api.keys[a.key] for a in kill.attempts if a.key in api.keys]
        replayed = sum(r.replayed and r.lost_connection for r in writes)
        print(
            f"#{kill.number} at {kill.at:5.1f}s  kill -9 instance {kill.instance} "
            f"(pids {','.join(map(str, kill.pids))}): {kill.in_flight} request(s) in flight "
            f"on it ({kill.in_flight_total} in all), {kill.sessions} database session(s) "
            f"running, {kill.committing} inside COMMIT; {kill.dropped} lost their connection; "
            f"of its {len(writes)} keyed write(s), {replayed} had committed (answered "
            f"by replay on retry); back after {kill.ready_after or 0:.1f} s"
        )
    print("\n=== totals (the load) ===")
    print(
        f"{seconds:.1f} s of load: {stats.calls} requests, {stats.attempts} HTTP attempts "
        f"({stats.attempts / max(seconds, 1):.0f}/s)"
    )
    others = {s: n for s, n in sorted(stats.statuses.items()) if s >= 300 and s != 409}
    print(
        f"2xx {ok}, 409 {conflicts} (idempotency_key_in_use {stats.in_use}, the rest "
        f"insufficient_stock), other statuses {others or 'none'}"
    )
    print(
        f"connection errors {stats.refused + stats.dropped + stats.timeouts} (refused "
        f"{stats.refused}, dropped mid-request {stats.dropped}, timeouts {stats.timeouts}); "
        f"retries {stats.retries}; replays {stats.replays}"
    )
    print(
        f"keys {len(api.keys)}, applied/sent: "
        + ", ".join(f"{k} {applied[k]}/{n}" for k, n in sorted(kinds.items()))
    )
    print(
        f"keyed writes that lost a connection and then got a 2xx: {len(lost)}; "
        f"{sum(r.replayed for r in lost)} had committed (answered by replay), "
        f"{sum(not r.replayed for r in lost)} had not (ran on the retry)"
    )
    rounds = world.race_rounds
    known = [r for r in rounds if r["known"]]
    print(
        f"races: {len(rounds)} rounds, {sum(r['wins'] for r in rounds)} releases won, "
        f"{sum(r['contenders'] - r['wins'] for r in rounds)} refused (409); "
        f"{len(known)} rounds with exactly known stock"
    )
    print(
        f"after the load: {asked} unanswered key(s) asked again ({answered} answered); "
        f"{sampled} answered keys sent again for the replay check"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=50.0, help="seconds of load")
    parser.add_argument("--kill-every", type=float, default=11.0, help="seconds between kills")
    parser.add_argument("--first-kill", type=float, default=6.0, help="seconds into the load")
    parser.add_argument(
        "--min-tail", type=float, default=7.0, help="no kill this close to the end of the load"
    )
    parser.add_argument(
        "--both-up", type=float, default=3.0, help="seconds both serve between kills, at least"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per instance")
    parser.add_argument("--ports", type=int, nargs=2, default=None)
    parser.add_argument("--pool-size", type=int, default=2, help="PRODORDER_DB_POOL_SIZE")
    parser.add_argument("--lifecycles", type=int, default=6, help="order lifecycle clients")
    parser.add_argument("--contenders", type=int, default=5, help="orders per race round")
    parser.add_argument("--replay-sample", type=int, default=150)
    parser.add_argument(
        "--commit-latency-ms",
        type=int,
        default=40,
        help="added to every keyed COMMIT (0: none); see slow_commits",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--server", default=None, help="PostgreSQL server URL (any database)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--require-outbox",
        action="store_true",
        default=os.environ.get("SOAK_REQUIRE_OUTBOX") == "1",
        help="fail when the build writes no events at all (default: report it, do not fail)",
    )
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
