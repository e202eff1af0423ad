"""The real server on loopback, for checks that need a live HTTP API.

`make client-check` and `make fuzz` use it: it migrates a fresh SQLite file in a
temporary directory, starts `prodorder-api serve` on a free port with an admin key
installed at start-up (`PRODORDER_BOOTSTRAP_KEY`), waits until `/readyz` answers,
and stops the server again however the check ends.

The server runs this checkout's code: `src/` goes first on `PYTHONPATH`, ahead of
whatever copy of the package the interpreter has installed.
"""

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

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    token: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(workdir: Path, token: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'live.db'}",
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
def live_server(workdir: Path) -> Iterator[LiveServer]:
    """Serve on 127.0.0.1 from a fresh database in ``workdir`` until the block ends."""
    token = "po_live_" + secrets.token_urlsafe(24)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _environment(workdir, token, port)
    log = workdir / "server.log"
    command = [sys.executable, "-m", "prodorder_api.cli"]
    subprocess.run([*command, "migrate"], env=env, cwd=workdir, check=True, timeout=120)
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
        yield LiveServer(base_url=base_url, token=token, log=log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
