"""Starting and stopping what the benchmark runs: uvicorn servers, the driver, wrk."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A uvicorn master and its workers, in a process group of their own."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(
        cls,
        name: str,
        args: list[str],
        env: dict[str, str],
        port: int,
        log: Path,
        ready: str | None,
    ) -> "Server":
        """Started, and answering ``ready`` (None: not waited for; see ``wait_ready``)."""
        with log.open("wb") as out:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(name, process, port, log)
        if ready is not None:
            server.wait_ready(ready)
        return server

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s: see {self.log}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), SIGKILL to the group if slow."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # workers whose master died first
            os.killpg(self.process.pid, signal.SIGKILL)


def driver(mode: str, config: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run ``bench.driver`` in its own process; its JSON result."""
    config_path, out_path = work / f"driver-{mode}.json", work / f"driver-{mode}-result.json"
    config_path.write_text(json.dumps(config))
    subprocess.run(
        [sys.executable, "-m", "bench.driver", mode, str(config_path), str(out_path)],
        cwd=ROOT,
        check=True,
    )
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def wrk(url: str, token: str | None, connections: int, seconds: float) -> dict[str, Any]:
    """wrk, 2 threads, ``connections`` keep-alive connections: requests/s and latency."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    args += ["-s", str(ROOT / "bench" / "wrk_report.lua")]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = result["duration_us"] / 1e6
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "rate": result["requests"] / seconds_run,
        "count": result["requests"],
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "errors": errors,
        "non_2xx": result["status"],
    }


class CpuMeter:
    """CPU seconds spent while it runs, by whom: the service (uvicorn processes),
    postgres (backends of the benchmark's database), load (the driver, wrk, pgbench)
    and other (everything else on the machine: noise). Samples /proc 5 times a second.
    """

    def __init__(self, database: str, service: int | None = None) -> None:
        self.database, self.service = database, service
        self.tick = os.sysconf("SC_CLK_TCK")
        self.first: dict[int, tuple[str, int]] = {}
        self.last: dict[int, int] = {}
        self.machine = self._machine()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _machine() -> int:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # all but idle and iowait

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        parents, ticks = {}, {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            pid = int(entry.name)
            parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
        for pid, value in ticks.items():
            if pid not in self.first:
                self.first[pid] = (self._group(pid, parents), value)
            self.last[pid] = value

    def _group(self, pid: int, parents: dict[int, int]) -> str:
        title = _cmdline(pid)  # a backend's is "postgres: 15/main: user database host …"
        if title.startswith("postgres: ") and f" {self.database} " in title:
            return "postgres"
        ancestor = pid
        while ancestor > 1:
            if ancestor == self.service:
                return "service"
            if ancestor == os.getpid():
                return "load" if pid != os.getpid() else "other"
            ancestor = parents.get(ancestor, 1)
        return "other"

    def stop(self) -> dict[str, float]:
        """CPU seconds by group, ``wall`` seconds and the number of ``cpus``."""
        self._stop.set()
        self._thread.join()
        self._sample()
        spent = {"service": 0.0, "postgres": 0.0, "load": 0.0}
        for pid, (group, first) in self.first.items():
            if group != "other":
                spent[group] += (self.last[pid] - first) / self.tick
        busy = (self._machine() - self.machine) / self.tick
        spent["other"] = max(0.0, busy - sum(spent.values()))
        spent["wall"] = time.monotonic() - self.started
        spent["cpus"] = os.cpu_count() or 1
        return spent


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def machine_busy(seconds: float) -> float:
    """Share of all CPUs busy over ``seconds``, before anything of ours runs."""
    before = CpuMeter._machine()
    time.sleep(seconds)
    return (
        (CpuMeter._machine() - before) / os.sysconf("SC_CLK_TCK") / seconds / (os.cpu_count() or 1)
    )
