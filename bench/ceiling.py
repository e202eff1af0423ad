"""Run the generated pgbench scripts: one pgbench process per client.

pgbench gives every client the same script, but each HTTP client has its own
product, components and balances; so each client gets its own script (its ids as
literals) and its own pgbench process with one connection, all started together
for the same duration. The sum of their lifecycles is the ceiling.
"""

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench import pgbench
from bench.stats import summarise


async def roles(dsn: str, fixture: dict[str, Any]) -> dict[str, str]:
    """The ids a lifecycle of ``fixture`` touches, by role (see pgbench.template)."""
    conn = await asyncpg.connect(dsn)
    try:
        location = str(await conn.fetchval("SELECT id FROM locations WHERE code = 'MAIN'"))
        found = {
            "product": fixture["product"],
            "bom": fixture["bom"],
            "location": location,
            **{f"component{n}": c for n, c in enumerate(fixture["components"])},
        }
        by_item = {item: role for role, item in found.items() if role != "location"}
        for item_id, balance_id in await conn.fetch(
            "SELECT item_id::text, id::text FROM stock_balances "
            "WHERE item_id = ANY($1::uuid[]) AND location_id = $2::uuid AND lot_code = ''",
            list(by_item),
            location,
        ):
            found[f"balance.{by_item[item_id]}"] = balance_id
    finally:
        await conn.close()
    return found


def write_scripts(
    template: str, client_roles: list[dict[str, str]], directory: Path, name: str
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, own in enumerate(client_roles):
        path = directory / f"{name}-{n:03d}.sql"
        path.write_text(pgbench.for_client(template, own))
        paths.append(path)
    return paths


def run(sqlalchemy_url: str, scripts: list[Path], seconds: float, logs: Path) -> dict[str, Any]:
    """All scripts at once for ``seconds``; lifecycles/s and per-lifecycle latency."""
    url = make_url(sqlalchemy_url)
    base = ["pgbench", "-n", "-M", "prepared", "-c", "1", "-j", "1", "-T", str(int(seconds))]
    base += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    base += ["-U", url.username or "postgres"]
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*"):
        old.unlink()
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [*base, "-l", f"--log-prefix={logs}/c{n:03d}", "-f", str(script), url.database or ""],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n, script in enumerate(scripts)
    ]
    outputs = [p.communicate()[0] for p in processes]
    wall = time.monotonic() - started
    failures = [
        out.strip().splitlines()[-1] if out.strip() else f"exit {p.returncode}"
        for p, out in zip(processes, outputs, strict=True)
        if p.returncode != 0 or "number of failed transactions: 0 " not in out
    ]
    latencies = []
    for log in logs.glob("c*"):
        for line in log.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1e6)
    processed = sum(
        int(m.group(1))
        for out in outputs
        if (m := re.search(r"actually processed: (\d+)", out)) is not None
    )
    return {
        "lifecycle": summarise(latencies, seconds) | {"rate": processed / seconds},
        "clients": len(scripts),
        "failures": failures,
        "wall": wall,
    }
