"""The load driver, run as its own process so it never shares a core's time slice
with the service's event loop.

    python -m bench.driver lifecycle CONFIG.json OUT.json
    python -m bench.driver rate CONFIG.json OUT.json
    python -m bench.driver floor CONFIG.json OUT.json

``lifecycle``: one connection per client; each client runs create → release →
start → complete on its own product, over and over, until the time is up (closed
loop). ``rate``: GETs sent on a fixed schedule (open loop); a request's latency
counts from the moment it was due, so a stalled server cannot hide its queue
(no coordinated omission). Both write counts, latencies and every order they saw
to OUT.json. ``floor``: ``lifecycle``'s loop against ``bench.floor_app``.
"""

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.client import Connection
from bench.stats import summarise

STEPS = ("create", "release", "start", "complete")
ORDERS = "/v1/production-orders"


class Recorder:
    def __init__(self, measure_from: float, measure_to: float) -> None:
        self.window = (measure_from, measure_to)
        self.latencies: dict[str, list[float]] = {}
        self.statuses: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def note(self, kind: str, started: float, ended: float, outcome: str, body: bytes) -> None:
        self.statuses[f"{kind} {outcome}"] += 1
        if not outcome.startswith("2") and f"{kind} {outcome}" not in self.samples:
            self.samples[f"{kind} {outcome}"] = body[:300].decode("utf-8", "replace")
        if self.window[0] <= ended <= self.window[1]:
            self.latencies.setdefault(kind, []).append(ended - started)


async def _lifecycle_client(
    config: dict[str, Any],
    fixture: dict[str, Any],
    stop_at: float,
    recorder: Recorder,
    orders: list[dict[str, Any]],
) -> None:
    conn = Connection(config["host"], config["port"], config["token"])
    prefix = config["prefix"]
    sequence = 0
    try:
        while time.perf_counter() < stop_at:
            sequence += 1
            reference = f"{prefix}-{fixture['client']}-{sequence}"
            started = time.perf_counter()
            body = {"item_id": fixture["product"], "quantity": "1", "reference": reference}
            order: dict[str, Any] = {"reference": reference, "status": None}
            orders.append(order)
            if not await _step(conn, recorder, "create", "POST", ORDERS, body, order):
                continue
            for action in STEPS[1:]:
                path = f"{ORDERS}/{order['id']}/{action}"
                if not await _step(conn, recorder, action, "POST", path, None, order):
                    break
            else:
                recorder.note("lifecycle", started, time.perf_counter(), "200", b"")
    finally:
        conn.close()


async def _step(
    conn: Connection,
    recorder: Recorder,
    kind: str,
    method: str,
    path: str,
    body: Any,
    order: dict[str, Any],
) -> bool:
    started = time.perf_counter()
    try:
        status, raw = await conn.request(method, path, body)
    except Exception as exc:  # a broken connection is an error like any other
        recorder.note(kind, started, time.perf_counter(), f"error {type(exc).__name__}", b"")
        order["unknown"] = kind  # the request may or may not have been applied
        await asyncio.sleep(0.01)
        return False
    recorder.note(kind, started, time.perf_counter(), str(status), raw)
    if 200 <= status < 300:
        data = json.loads(raw)
        order.update(id=data["id"], number=data["number"], status=data["status"])
        return True
    order.setdefault("refused", []).append([kind, status])
    return False


def _written(recorder: Recorder, duration: float, clients: int) -> dict[str, Any]:
    return {
        "duration": duration,
        "clients": clients,
        "latency": {k: summarise(v, duration) for k, v in recorder.latencies.items()},
        "requests": summarise(
            [x for k, v in recorder.latencies.items() if k != "lifecycle" for x in v], duration
        ),
        "statuses": dict(recorder.statuses),
        "samples": recorder.samples,
    }


async def lifecycle(config: dict[str, Any]) -> dict[str, Any]:
    now = time.perf_counter()
    warmup, duration = config["warmup"], config["duration"]
    recorder = Recorder(now + warmup, now + warmup + duration)
    orders: list[dict[str, Any]] = []
    cpu = time.process_time()
    await asyncio.gather(
        *(
            _lifecycle_client(config, fixture, now + warmup + duration, recorder, orders)
            for fixture in config["fixtures"]
        )
    )
    wall = time.perf_counter() - now
    return _written(recorder, duration, len(config["fixtures"])) | {
        "orders": orders,
        "driver_cpu": (time.process_time() - cpu) / wall,
    }


async def _floor_client(
    config: dict[str, Any], client: str, stop_at: float, recorder: Recorder
) -> None:
    conn = Connection(config["host"], config["port"])
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            values = None
            for step in STEPS:
                sent = time.perf_counter()
                status, raw = await conn.request("POST", f"/{client}/{step}", values)
                recorder.note(step, sent, time.perf_counter(), str(status), raw)
                if status != 200:
                    await asyncio.sleep(0.01)
                    break
                if step == "create":
                    values = json.loads(raw)
            else:
                recorder.note("lifecycle", started, time.perf_counter(), "200", b"")
    finally:
        conn.close()


async def floor(config: dict[str, Any]) -> dict[str, Any]:
    """Lifecycles through ``bench.floor_app``: each client replays its own script."""
    now = time.perf_counter()
    warmup, duration = config["warmup"], config["duration"]
    recorder = Recorder(now + warmup, now + warmup + duration)
    stop_at = now + warmup + duration
    await asyncio.gather(*(_floor_client(config, c, stop_at, recorder) for c in config["clients"]))
    return _written(recorder, duration, len(config["clients"]))


async def rate(config: dict[str, Any]) -> dict[str, Any]:
    """GET ``path`` at ``rate`` per second for ``duration`` (after ``warmup``).

    Requests not answered ``grace`` seconds after the last was due are abandoned and
    count as infinitely late, so an overloaded server ends the run on time.
    """
    per_second, warmup, duration = config["rate"], config["warmup"], config["duration"]
    grace = config.get("grace", 2.0)
    due: asyncio.Queue[float | None] = asyncio.Queue()
    start = time.perf_counter() + 0.05
    measured_from = start + warmup
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    samples: dict[str, str] = {}
    in_flight: dict[int, float] = {}

    async def worker(n: int) -> None:
        conn = Connection(config["host"], config["port"], config.get("token"))
        try:
            while (at := await due.get()) is not None:
                in_flight[n] = at
                try:
                    status, raw = await conn.request("GET", config["path"])
                    outcome = str(status)
                except Exception as exc:
                    outcome, raw = f"error {type(exc).__name__}", b""
                del in_flight[n]
                if at >= measured_from:
                    latencies.append(time.perf_counter() - at)
                    statuses[f"get {outcome}"] += 1
                    if not outcome.startswith("2"):
                        samples.setdefault(outcome, raw[:300].decode("utf-8", "replace"))
        finally:
            conn.close()

    workers = [asyncio.create_task(worker(n)) for n in range(config["connections"])]
    cpu = time.process_time()
    total = int(per_second * (warmup + duration))
    sent = 0
    lag: list[float] = []
    while sent < total:
        now = time.perf_counter()
        while sent < total and start + sent / per_second <= now:
            due.put_nowait(start + sent / per_second)
            lag.append(now - (start + sent / per_second))
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / per_second - time.perf_counter()))
    for _ in workers:
        due.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=grace)
    late = sum(at >= measured_from for at in in_flight.values())
    while not due.empty():
        at = due.get_nowait()
        late += at is not None and at >= measured_from
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = time.perf_counter() - start
    answered = len(latencies)
    latencies += [float("inf")] * late
    summary = summarise(latencies, duration) | {"rate": answered / duration}
    return {
        "duration": duration,
        "rate": per_second,
        "connections": config["connections"],
        "latency": {"get": summary},
        "late": late,
        "statuses": dict(statuses),
        "samples": samples,
        "driver_cpu": (time.process_time() - cpu) / wall,
        "send_lag_p99_ms": 1000 * sorted(lag)[int(0.99 * (len(lag) - 1))] if lag else 0,
    }


def main() -> None:
    mode, config_path, out_path = sys.argv[1:4]
    config = json.loads(Path(config_path).read_text())
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        runner = asyncio.run
    modes = {"lifecycle": lifecycle, "floor": floor, "rate": rate}
    result = runner(modes[mode](config))
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
