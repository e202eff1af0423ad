"""A streaming replica of the local PostgreSQL cluster, for tests: made, run, removed.

``streaming_replica(primary_url)``:

1. adds one ``host replication`` line for the primary's user on 127.0.0.1 to the
   primary's ``pg_hba.conf`` (marked with this harness's id) and a physical
   replication slot, then reloads the primary (``pg_reload_conf()``);
2. copies the cluster with ``pg_basebackup -R -S <slot> -X stream`` into a new
   directory under the system's temporary directory, writes a small
   ``postgresql.conf`` and ``pg_hba.conf`` of its own there (Debian keeps the
   cluster's in /etc), and starts the cluster's own ``postgres`` binary on it, on a
   free loopback port, as the OS user ``postgres`` when run by root;
3. waits (bounded polling) until the replica accepts connections and streams.

When the block ends, however it ends: the replica stops, the slot is dropped, the
``pg_hba.conf`` line is removed (the file is then byte for byte what it was, unless
another harness has a line of its own in it at that moment), the primary reloads, the
directory goes. A harness killed before it could clean up leaves a line and a slot
named after its process id, and a replica still running: the next harness stops
that replica and removes what belonged to processes that no longer run.

Other sessions use the same cluster at the same time: nothing here restarts it or
changes a setting other than these two entries, and edits of ``pg_hba.conf`` are
serialised with a lock file.
"""

import asyncio
import fcntl
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

T = TypeVar("T")

MARK = "prodorder-replica-harness"
SLOT_PREFIX = "prodorder_harness_"
LOCK = Path(tempfile.gettempdir()) / "prodorder-replica-harness.lock"
READY_WITHIN_S = 60.0
STOP_TIMEOUT_S = 20.0


class Missing(RuntimeError):
    """What the replica needs is not there (binaries, WAL level, a superuser)."""


def dsn(url: str | URL, **changes: Any) -> str:
    """An asyncpg DSN for a SQLAlchemy URL, with ``changes`` (host, port, database)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql", **changes).render_as_string(hide_password=False)


def run(work: Callable[[asyncpg.Connection], Awaitable[T]], target: str) -> T:
    """``work`` on one connection to ``target`` (a DSN), from synchronous code."""

    async def go() -> T:
        conn = await asyncpg.connect(target, timeout=10)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def fetchval(target: str, sql: str, *args: Any) -> Any:
    return run(lambda conn: conn.fetchval(sql, *args), target)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@dataclass
class Replica:
    port: int
    directory: Path
    log: Path
    primary: URL
    slot: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list, repr=False)
    user: dict[str, Any] = field(default_factory=dict, repr=False)

    def url(self, database_url: str) -> str:
        """``database_url`` (a database on the primary) on this replica."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def dsn(self, database: str = "postgres") -> str:
        return dsn(self.primary, host="127.0.0.1", port=self.port, database=database)

    # --- replay

    def pause_replay(self) -> None:
        fetchval(self.dsn(), "SELECT pg_wal_replay_pause()")
        _poll(
            lambda: fetchval(self.dsn(), "SELECT pg_get_wal_replay_pause_state()") == "paused",
            "replay to pause",
        )

    def resume_replay(self) -> None:
        fetchval(self.dsn(), "SELECT pg_wal_replay_resume()")

    def caught_up(self) -> bool:
        """Whether the replica has replayed all the primary has written until now."""
        primary_lsn = fetchval(dsn(self.primary), "SELECT pg_current_wal_lsn()")
        return bool(
            fetchval(self.dsn(), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", primary_lsn)
        )

    def wait_caught_up(self, within: float = READY_WITHIN_S) -> None:
        _poll(self.caught_up, "the replica to replay the primary's WAL", within)

    def wait_database(self, name: str) -> None:
        """Until the database ``name``, created on the primary, is on the replica."""
        query = "SELECT count(*) FROM pg_database WHERE datname = $1"
        _poll(lambda: fetchval(self.dsn(), query, name) == 1, f"database {name} on the replica")
        self.wait_caught_up()

    # --- up and down

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.user,
            )
        _poll(self._streaming, "the replica to accept connections and stream", READY_WITHIN_S)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def _streaming(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the replica exited:\n{_tail(self.log)}")
        try:
            status = fetchval(self.dsn(), "SELECT status FROM pg_stat_wal_receiver")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return bool(status == "streaming")


def _poll(check: Callable[[], bool], what: str, within: float = READY_WITHIN_S) -> None:
    """Until ``check()`` holds, at most ``within`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + within
    pause = 0.02
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:g} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- the primary


@contextmanager
def _hba_locked() -> Iterator[None]:
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_OWN_LINE = re.compile(rf"# {MARK} pid=(\d+) id=(\w+)$")


def _without(text: str, keep: Callable[[int, str], bool]) -> str:
    """``text`` without the harness lines that ``keep(pid, id)`` rejects."""
    out = []
    for line in text.splitlines(keepends=True):
        found = _OWN_LINE.search(line.rstrip("\n"))
        if found is None or keep(int(found.group(1)), found.group(2)):
            out.append(line)
    return "".join(out)


def _write_same_file(path: Path, text: str) -> None:
    """Rewrite in place: owner, mode and inode stay the cluster's."""
    with path.open("r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()


def _add_hba_line(primary: str, hba: Path, harness_id: str, user: str) -> None:
    with _hba_locked():
        text = _without(hba.read_text(), lambda pid, _id: _alive(pid))
        if text and not text.endswith("\n"):
            text += "\n"
        mark = f"# {MARK} pid={os.getpid()} id={harness_id}"
        line = f"host replication {user} 127.0.0.1/32 trust {mark}\n"
        _write_same_file(hba, text + line)
        fetchval(primary, "SELECT pg_reload_conf()")


def _remove_hba_line(primary: str, hba: Path, harness_id: str) -> None:
    with _hba_locked():
        text = hba.read_text()
        kept = _without(text, lambda pid, own: own != harness_id and _alive(pid))
        if kept != text:
            _write_same_file(hba, kept)
            fetchval(primary, "SELECT pg_reload_conf()")


def _replication_allowed(server: URL) -> bool:
    """A replication connection is accepted (the reload took effect)."""
    done = subprocess.run(
        [
            "psql",
            f"host=127.0.0.1 port={server.port or 5432} user={server.username or 'postgres'} "
            "dbname=postgres replication=true",
            "-Atc",
            "IDENTIFY_SYSTEM",
        ],
        capture_output=True,
        timeout=20,
    )
    return done.returncode == 0


def _stop_orphans(bindir: Path) -> None:
    """Replicas whose harness died without cleaning up (``kill -9``, a CI timeout): stop
    them (they hold their slots) and remove their directories."""
    for owner in Path(tempfile.gettempdir()).glob("prodorder-replica-*/harness.pid"):
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        data = owner.parent / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"],
                capture_output=True,
                timeout=60,
                **_user_of_postgres(),
            )
        shutil.rmtree(owner.parent, ignore_errors=True)


def _drop_stale_slots(primary: str) -> None:
    """The slots of harnesses that no longer run (their replicas stopped first)."""

    async def names(conn: asyncpg.Connection) -> list[str]:
        rows = await conn.fetch(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1",
            SLOT_PREFIX + "%",
        )
        return [row["slot_name"] for row in rows]

    for name in run(names, primary):
        found = re.match(rf"{SLOT_PREFIX}(\d+)_", name)
        if found and not _alive(int(found.group(1))):
            _drop_slot(primary, name)


def _drop_slot(primary: str, slot: str) -> None:
    query = "SELECT active FROM pg_replication_slots WHERE slot_name = $1"
    _poll(lambda: fetchval(primary, query, slot) is not True, f"slot {slot} to be released", 30)
    if fetchval(primary, query, slot) is not None:
        fetchval(primary, "SELECT pg_drop_replication_slot($1)", slot)


# --------------------------------------------------------------------------- the replica

# Must be at least the primary's for a hot standby to start.
_COPIED = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _binaries(primary: str) -> Path:
    major = int(fetchval(primary, "SHOW server_version_num")) // 10000
    bindir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bindir / "postgres").exists() or not (bindir / "pg_basebackup").exists():
        raise Missing(f"no PostgreSQL {major} binaries in {bindir}")
    return bindir


def _config(primary: str, port: int, directory: Path) -> str:
    async def settings(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", list(_COPIED)
        )

    copied = "".join(f"{row['name']} = {row['setting']}\n" for row in run(settings, primary))
    return (
        f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{directory}'\nhot_standby = on\n"
        f"shared_buffers = 32MB\nfsync = off\nlogging_collector = off\n"
        f"hba_file = '{directory / 'data' / 'pg_hba.conf'}'\n"
        f"ident_file = '{directory / 'data' / 'pg_ident.conf'}'\n" + copied
    )


def _user_of_postgres() -> dict[str, Any]:
    """Run the replica's processes as ``postgres`` when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    postgres = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), postgres.pw_uid, postgres.pw_gid)


@contextmanager
def streaming_replica(primary_url: str) -> Iterator[Replica]:
    """A hot standby of ``primary_url``'s cluster, streaming from a slot of its own."""
    primary = dsn(primary_url, database="postgres")
    server = make_url(primary_url)
    user = server.username or "postgres"
    if fetchval(primary, "SHOW wal_level") not in ("replica", "logical"):
        raise Missing("the primary's wal_level must be replica or logical")
    if not fetchval(
        primary, "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = $1", user
    ):
        raise Missing(f"{user} may not replicate")
    bindir = _binaries(primary)
    hba = Path(fetchval(primary, "SHOW hba_file"))
    harness_id = secrets.token_hex(4)
    slot = f"{SLOT_PREFIX}{os.getpid()}_{harness_id}"
    directory = Path(tempfile.mkdtemp(prefix="prodorder-replica-"))
    data = directory / "data"
    port = _free_port()
    replica = Replica(port, directory, directory / "postgres.log", server, slot)
    slot_made = hba_added = False
    (directory / "harness.pid").write_text(str(os.getpid()))
    try:
        _stop_orphans(bindir)
        _drop_stale_slots(primary)
        _add_hba_line(primary, hba, harness_id, user)
        hba_added = True
        _poll(lambda: _replication_allowed(server), "pg_hba.conf to allow replication", 30)
        fetchval(primary, "SELECT pg_create_physical_replication_slot($1)", slot)
        slot_made = True
        _chown_tree(directory)
        subprocess.run(
            [
                str(bindir / "pg_basebackup"),
                "-h", "127.0.0.1",
                "-p", str(server.port or 5432),
                "-U", user,
                "-D", str(data),
                "-R", "-S", slot, "-X", "stream", "-c", "fast", "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=600,
            **_user_of_postgres(),
        )  # fmt: skip
        (data / "postgresql.conf").write_text(_config(primary, port, directory))
        (data / "pg_hba.conf").write_text(
            f"local all all trust\nhost all all 127.0.0.1/32 trust\n"
            f"host replication {user} 127.0.0.1/32 trust\n"
        )
        (data / "pg_ident.conf").write_text("")
        _chown_tree(directory)
        replica.command = [str(bindir / "postgres"), "-D", str(data)]
        replica.user = _user_of_postgres()
        replica.start()
        yield replica
    finally:
        with suppress(Exception):
            replica.stop()
        try:
            if slot_made:
                _drop_slot(primary, slot)
        finally:
            if hba_added:
                _remove_hba_line(primary, hba, harness_id)
            shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    primary_url = sys.argv[1] if len(sys.argv) > 1 else os.environ["TEST_DATABASE_URL"]
    signal.signal(signal.SIGTERM, _interrupt)
    with streaming_replica(primary_url) as replica:
        print(replica.url(primary_url), flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
