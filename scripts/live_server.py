"""The real server on loopback, for checks that need a live HTTP API.

`make client-check` and `make fuzz` use it: it migrates a fresh database (a SQLite
file in a temporary directory, or a new PostgreSQL database that is dropped again),
starts `prodorder-api serve` on a free port with an admin key installed at start-up
(`PRODORDER_BOOTSTRAP_KEY`), waits until `/readyz` answers, and stops the server
again however the check ends.

The server runs this checkout's code: `src/` goes first on `PYTHONPATH`, ahead of
whatever copy of the package the interpreter has installed.
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    token: str
    log: Path
    pid: int  # the serving process (with one worker, the one that reads requests)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str, token: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        PRODORDER_BOOTSTRAP_KEY=token,
        LOG_LEVEL=os.environ.get("LIVE_LOG_LEVEL", "WARNING"),
    )
    return env


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server ``server_url``; dropped afterwards."""
    name = f"prodorder_live_{secrets.token_hex(6)}"
    admin = make_url(server_url).set(drivername="postgresql")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def live_server(
    workdir: Path, database_url: str | None = None, settings: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """Serve on 127.0.0.1 until the block ends, from ``database_url`` (an empty database)
    or else a new SQLite file in ``workdir``; ``settings``: more environment variables."""
    token = "po_live_" + secrets.token_urlsafe(24)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'live.db'}"
    env = {**_environment(database_url, token, port), **(settings or {})}
    log = workdir / "server.log"
    command = [sys.executable, "-m", "prodorder_api.cli"]
    subprocess.run([*command, "migrate"], env=env, cwd=workdir, check=True, timeout=120)
    # A SIGTERM (a CI timeout, `kill`) unwinds like an exception, so the server still stops.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "serve"],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not become ready:\n{_tail(log)}")
            time.sleep(0.2)
        yield LiveServer(base_url=base_url, token=token, log=log, pid=process.pid)
    finally:
        _stop(process)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
