"""Fixtures and helpers for the tests past one machine (SPEC §12, tests/test_scale_*.py).

* ``own_database``: a fresh, migrated database for the module.
* ``pgbouncer``: a PgBouncer in transaction mode in front of the test server
  (scripts/pgbouncer_harness.py), for the module.
* ``replica``: a streaming replica of the local cluster (scripts/replica_harness.py),
  for the module.
* ``instances(...)``: real ``prodorder-api serve`` processes on one database, each on
  its own free port, stopped after; ``round_robin(...)``: one client whose requests
  go to them in turn.

Each run builds its own (ports, temporary directories, a slot) and removes it after.
Under ``CI=true`` a missing PgBouncer or replica is a failure, never a skip.
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from scripts import pgbouncer_harness, replica_harness
from scripts.live_server import fresh_postgres_database

from prodorder_api import migrate
from tests.conftest import ADMIN_TOKEN, AUTH, postgres_server_url

SRC = Path(__file__).resolve().parents[1] / "src"
READY_WITHIN_S = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires it: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def own_database() -> Iterator[str]:
    """A database of the module's own, migrated directly on the primary and dropped
    after: nothing else in the test session holds connections to it."""
    with fresh_postgres_database(postgres_server_url()) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[pgbouncer_harness.PgBouncer]:
    server = postgres_server_url()
    try:
        pgbouncer_harness.binary()
    except pgbouncer_harness.Missing as exc:
        _unavailable(str(exc))
    with pgbouncer_harness.pgbouncer(server, pool_size=6) as running:
        yield running


@pytest.fixture(scope="module")
def replica() -> Iterator[replica_harness.Replica]:
    server = postgres_server_url()
    try:
        with replica_harness.streaming_replica(server) as running:
            yield running
    except replica_harness.Missing as exc:
        _unavailable(str(exc))


# --------------------------------------------------------------------------- instances


@dataclass(frozen=True)
class Instance:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def _instance(
    database_url: str, log: Path, workers: int, settings: dict[str, str]
) -> Iterator[Instance]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PRODORDER_DB_POOL_SIZE": "5",
        "LOG_LEVEL": "WARNING",
        "PRODORDER_BOOTSTRAP_KEY": ADMIN_TOKEN,
        **settings,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prodorder_api.cli", "serve", "--workers", str(workers)],
            cwd=SRC.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go with it
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while not _ready(base_url):
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no 200 from /readyz within {READY_WITHIN_S} s:\n{_tail(log)}")
            time.sleep(0.1)
        yield Instance(base_url, log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextmanager
def instances(
    database_url: str,
    workdir: Path,
    *,
    count: int = 2,
    workers: int = 2,
    settings: dict[str, str] | None = None,
) -> Iterator[list[Instance]]:
    """``count`` instances of ``prodorder-api serve --workers N`` on ``database_url``
    (already migrated), their logs in ``workdir``."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                _instance(database_url, workdir / f"instance-{n}.log", workers, settings or {})
            )
            for n in range(count)
        ]


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next instance in turn."""

    def __init__(self, base_urls: list[str], limits: httpx.Limits) -> None:
        self._targets = itertools.cycle([httpx.URL(url) for url in base_urls])
        self._inner = httpx.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = next(self._targets)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def round_robin(base_urls: list[str]) -> httpx.AsyncClient:
    """An admin client of all ``base_urls``, able to hold a whole race open at once."""
    # No kept-alive connection (as tests/test_order_races.py): none to be closed under us.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    return httpx.AsyncClient(
        transport=RoundRobin(base_urls, limits),
        base_url="http://instances",
        headers=AUTH,
        timeout=httpx.Timeout(60.0, connect=10.0),
    )


def logged_errors(logs: list[Path], since: dict[Path, int]) -> list[str]:
    """Lines of ``logs`` written after the offsets in ``since`` that mention an error."""
    bad = []
    for log in logs:
        with log.open("rb") as f:
            f.seek(since.get(log, 0))
            written = f.read().decode(errors="replace")
        words = ("deadlock", "traceback", "unhandled error", "error", "exception")
        bad += [line for line in written.splitlines() if any(w in line.lower() for w in words)]
    return bad


def log_sizes(logs: list[Path]) -> dict[Path, int]:
    return {log: log.stat().st_size if log.exists() else 0 for log in logs}
