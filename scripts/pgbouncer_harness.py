"""A PgBouncer in transaction mode in front of a PostgreSQL server, for tests and benches.

Debian's ``pgbouncer`` (``make tools`` installs it), run as a child process with an
ini of its own in a temporary directory, on a free loopback port, as the OS user
``postgres`` when started by root (PgBouncer refuses to run as root). Trust
authentication for the users it is given; ``pool_mode = transaction`` with a small
server pool, so that the clients' transactions really are spread over server
connections that other clients used before. Stopped and its directory removed when
the block ends, however it ends; one left by a harness that was killed is stopped by
the next harness.

    python scripts/pgbouncer_harness.py postgresql+asyncpg://postgres@127.0.0.1:5432/x

prints the URL to use through it and runs until interrupted (``make bench`` beside it:
``BENCH_DATABASE_URL=<that URL>``).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class Missing(RuntimeError):
    """PgBouncer is not installed (``make tools``)."""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    directory: Path
    log: Path
    server: URL  # the PostgreSQL server behind it

    def url(self, database_url: str) -> str:
        """``database_url`` (a database on the server behind) through this PgBouncer."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )


def binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found is None:
        raise Missing("pgbouncer is not installed: run `make tools` (Debian's pgbouncer)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ini(server: URL, port: int, directory: Path, pool_size: int) -> str:
    return f"""\
[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
max_db_connections = {pool_size}
server_lifetime = 3600
server_idle_timeout = 60
ignore_startup_parameters = extra_float_digits
stats_period = 1
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
admin_users = {server.username or "postgres"}
"""


def _as_postgres() -> list[str]:
    """``-u postgres`` when running as root: PgBouncer will not run as root."""
    return ["-u", "postgres"] if os.geteuid() == 0 else []


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _stop_orphans() -> None:
    """PgBouncers left running by a harness that was killed (``kill -9``, a CI timeout):
    stopped, their directories removed."""
    for owner in Path(tempfile.gettempdir()).glob("prodorder-pgbouncer-*/owner.pid"):
        try:
            if _alive(int(owner.read_text())):
                continue
            pid = int((owner.parent / "pgbouncer.pid").read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        shutil.rmtree(owner.parent, ignore_errors=True)


@contextmanager
def pgbouncer(server_url: str, *, pool_size: int = 6) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of ``server_url``'s server, at most
    ``pool_size`` server connections per database and user."""
    command = binary()
    server = make_url(server_url)
    _stop_orphans()
    directory = Path(tempfile.mkdtemp(prefix="prodorder-pgbouncer-"))
    (directory / "owner.pid").write_text(str(os.getpid()))
    port = _free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        user = server.username or "postgres"
        (directory / "users.txt").write_text(f'"{user}" ""\n')
        ini = directory / "pgbouncer.ini"
        ini.write_text(_ini(server, port, directory, pool_size))
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            for path in (directory, directory / "users.txt", ini):
                os.chown(path, postgres.pw_uid, postgres.pw_gid)
        process = subprocess.Popen(
            [command, *_as_postgres(), str(ini)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(directory / "stderr.log").open("wb"),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start:\n{_logs(directory)}")
            time.sleep(0.05)
        yield PgBouncer(port, directory, directory / "pgbouncer.log", server)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # safe shutdown: waits for the clients
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(directory, ignore_errors=True)


def _logs(directory: Path) -> str:
    parts = []
    for name in ("stderr.log", "pgbouncer.log"):
        path = directory / name
        if path.exists():
            parts.append(path.read_text(errors="replace")[-3000:])
    return "\n".join(parts)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    server_url = sys.argv[1] if len(sys.argv) > 1 else os.environ["TEST_DATABASE_URL"]
    with pgbouncer(server_url, pool_size=int(os.environ.get("PGBOUNCER_POOL_SIZE", "20"))) as pgb:
        print(pgb.url(server_url), flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
