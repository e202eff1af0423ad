"""Engine, sessions and the one-transaction-per-request rule."""

import functools
import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Table, bindparam, event, insert, inspect, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, make_transient_to_detached
from sqlalchemy.orm.attributes import manager_of_class, set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from starlette.requests import Request

from prodorder_api.errors import Conflict

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps always leave the database as aware UTC datetimes.

    SQLite keeps no zone, so values are stored there as naive UTC; comparisons
    stay correct because every value written goes through this type.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


async def flush_unique(session: AsyncSession, conflict: str) -> None:
    """Flush inside a savepoint; a unique key violated by it is a 409 ``conflict``
    with the given message, and the transaction stays usable."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


async def update_rows(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], **same: Any
) -> None:
    """``UPDATE model SET … WHERE id = …`` for every row (each a dict with ``id`` and the
    same keys), plus ``same`` for all of them, in one statement on PostgreSQL.

    There it is ``UPDATE … FROM unnest(…)``: one statement instead of one per row
    (an executemany of N rows is N statements for the server to parse, plan and log),
    held back by ``pg_write`` to go with the next writes. SQLite has no ``unnest``,
    so there it is an executemany, which costs no round trips in-process. Rows must
    exist and be locked by the caller; the ORM identity map is not touched
    (``update_loaded`` keeps loaded objects in step).
    """
    if not rows:
        return
    table = table_of(model)
    names = [name for name in rows[0] if name != "id"]
    if session.get_bind().dialect.name == "postgresql":
        sql = _update_from_unnest(table, tuple(names), tuple(same))
        arrays = [column_values(table, name, [row[name] for row in rows]) for name in names]
        fixed = [column_value(table, name, value) for name, value in same.items()]
        await pg_write(session, sql, [row["id"] for row in rows], *arrays, *fixed)
        return
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(f"_{name}") for name in names} | same),
        [{f"_{name}": value for name, value in row.items()} for row in rows],
    )


@functools.cache
def _update_from_unnest(table: Table, names: tuple[str, ...], same: tuple[str, ...]) -> str:
    """One SQL text for any number of rows, so asyncpg prepares it once."""
    columns = ("id", *names)
    arrays = ", ".join(f"${n}::{pg_type(table, c)}[]" for n, c in enumerate(columns, 1))
    sets = [f"{name} = v.{name}" for name in names]
    sets += [
        f"{name} = ${n}::{pg_type(table, name)}" for n, name in enumerate(same, 1 + len(columns))
    ]
    return (
        f"UPDATE {table.name} SET {', '.join(sets)} FROM unnest({arrays}) "
        f"AS v({', '.join(columns)}) WHERE {table.name}.id = v.id"
    )


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT INTO table`` of ``rows`` (dicts with the same keys): on PostgreSQL one
    ``INSERT … SELECT * FROM unnest(…)`` held back by ``pg_write``, the same SQL text
    for any number of rows; elsewhere an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(insert(table), list(rows))
        return
    sql, arrays = insert_from_unnest(table, rows)
    await pg_write(session, sql, *arrays)


def insert_from_unnest(
    table: Table, rows: Sequence[dict[str, Any]], first: int = 1
) -> tuple[str, list[list[Any]]]:
    """``insert_rows``'s statement for PostgreSQL, its parameters numbered from
    ``first``, and its parameters (one array per column): to send it on its own or
    inside a larger statement."""
    names = tuple(rows[0])
    arrays = [column_values(table, name, [row[name] for row in rows]) for name in names]
    return _insert_from_unnest(table, names, first), arrays


async def insert_new(session: AsyncSession, objects: Sequence[Base]) -> None:
    """Insert new, not yet added ORM objects and attach them to the session as stored.

    On PostgreSQL with one ``insert_rows`` per table, in the order the objects come
    (parents first), without the unit of work: new orders with their requirements and
    history took ~1 ms of CPU to flush, ~0.3 ms this way. Column defaults are applied
    as the flush would; foreign keys to a parent must be set by the caller. Elsewhere
    the objects are added and flushed as usual.
    """
    if session.get_bind().dialect.name != "postgresql":
        session.add_all(objects)
        await session.flush()
        return
    rows: dict[Table, list[dict[str, Any]]] = {}
    for obj in objects:
        table = table_of(type(obj))
        state = inspect(obj)
        row = {}
        for column in table.columns:
            if column.key not in state.dict:  # as the flush would: its default, or NULL
                default = column.default
                value = None
                if default is not None:
                    value = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
                setattr(obj, column.key, value)
            row[column.key] = getattr(obj, column.key)
        rows.setdefault(table, []).append(row)
    for table, table_rows in rows.items():
        await insert_rows(session, table, table_rows)
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)


@functools.cache
def _insert_from_unnest(table: Table, names: tuple[str, ...], first: int) -> str:
    arrays = ", ".join(f"${n}::{pg_type(table, c)}[]" for n, c in enumerate(names, first))
    return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def pg_type(table: Table, column: str) -> str:
    """The column's PostgreSQL type as SQL (``NUMERIC(24, 6)``, ``UUID``)."""
    return str(table.c[column].type.compile(dialect=_POSTGRESQL))


def column_value(table: Table, column: str, value: Any) -> Any:
    """``value`` as the column's type binds it for PostgreSQL (``Exact`` refuses a
    seventh decimal place, ``UTCDateTime`` makes timestamps aware UTC)."""
    column_type = table.c[column].type
    if isinstance(column_type, TypeDecorator):
        return column_type.process_bind_param(value, _POSTGRESQL)
    return value


def column_values(table: Table, column: str, values: Sequence[Any]) -> list[Any]:
    column_type = table.c[column].type
    if isinstance(column_type, TypeDecorator):
        return [column_type.process_bind_param(value, _POSTGRESQL) for value in values]
    if isinstance(column_type, JSON):  # asyncpg takes json as text
        return [None if value is None else json.dumps(value) for value in values]
    return list(values)


def attach(session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[Any]:
    """Rows read past the ORM (``pg_call``, values as ``result_values`` gives them) as
    the session's objects of ``model``, as a query with ``populate_existing`` would
    give them: an object the session holds already takes the row's values, any other
    is made and attached as stored."""
    objects = []
    identity_map = session.sync_session.identity_map
    manager = manager_of_class(model)
    for values in rows:
        obj = identity_map.get(identity_key(model, values["id"]))
        if obj is None:
            # Made as a query's load makes it, without ``__init__`` and the attribute
            # event it fires per column: ~9 instead of ~19 µs an item locked.
            obj = manager.new_instance()
            obj.__dict__.update(values)
            make_transient_to_detached(obj)
            session.add(obj)
        else:
            for name, value in values.items():
                set_committed_value(obj, name, value)
        objects.append(obj)
    return objects


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def result_values(table: Table, columns: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    """A row ``pg_call`` fetched, each value as SQLAlchemy reads the column of ``table``
    in the same place (``Exact`` and ``UTCDateTime`` process what they read)."""
    values = []
    for column, value in zip(columns, row, strict=True):
        column_type = table.c[column].type
        if isinstance(column_type, TypeDecorator) and value is not None:
            value = column_type.process_result_value(value, _POSTGRESQL)
        values.append(value)
    return tuple(values)


async def pg_call(session: AsyncSession, method: str, sql: str, *args: Any) -> Any:
    """``asyncpg.Connection.<method>(sql, *args)`` on the session's connection, inside
    its transaction (PostgreSQL only: ``sql`` is PostgreSQL's, with ``$n`` parameters).

    For the hottest statements of the write paths. asyncpg prepares and caches the
    statement as it does under SQLAlchemy, but the call costs a fraction of the CPU:
    measured in-process, an UPDATE of five balances took 0.32 ms through the session
    and 0.05 ms here, a one-row SELECT 0.12 and 0.03 ms. Statements sent here are
    seen by the engine's ``before_cursor_execute`` listeners like its own. The writes
    ``pg_write`` holds back go first.
    """
    sync, driver = await _held(session)
    writes: _Writes | None = sync.info.pop(_WRITES, None)
    if writes is not None:
        await _send(sync, driver, "execute", *writes.statement())
    return await _send(sync, driver, method, sql, *args)


async def pg_write(session: AsyncSession, sql: str, *args: Any) -> None:
    """A write whose result nobody reads (``INSERT INTO t …``, ``UPDATE t …`` or
    ``DELETE FROM t …`` with ``$n`` parameters), held back and sent together with the
    writes that follow it, as one statement (``WITH w1 AS (…), w2 AS (…) …``), before
    the next statement of any kind (``pg_call``, SQLAlchemy's, a savepoint) or the
    commit; dropped by a rollback.

    So the writes between two reads cost one statement and one round trip: a
    completion's reservations, requirements, balances, items, movements, history and
    order took 7 statements, now 1. PostgreSQL runs the parts of one statement in one
    snapshot, so a part cannot see another's rows; a write to a table another held
    write already touches (other than two INSERTs) first sends those held back.
    Foreign keys are checked at the end of the statement, so a child row may come
    with its parent. A write that fails fails the statement it went with, so an error
    can surface there rather than here: only writes the caller has checked belong here.
    """
    sync, driver = await _held(session)
    table, inserts = _target(sql)
    writes: _Writes | None = sync.info.get(_WRITES)
    if writes is not None and table in writes.tables and not (inserts and writes.tables[table]):
        sync.info.pop(_WRITES)
        await _send(sync, driver, "execute", *writes.statement())
        writes = None
    if writes is None:
        writes = sync.info[_WRITES] = _Writes()
    writes.add(sql, args, table, inserts)


async def _held(session: AsyncSession) -> tuple[Connection, Any]:
    """The session's connection and its asyncpg connection, in a transaction."""
    held: tuple[Connection, Any] | None = session.info.get(_DRIVER)
    if held is None:  # once per transaction (~25 µs a time)
        connection = await session.connection()
        pooled = await connection.get_raw_connection()
        driver: Any = pooled.driver_connection
        assert connection.sync_connection is not None and driver is not None
        if not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it
            # executes; a transaction that starts here must not run in autocommit. Its
            # (private) way of starting one sends BEGIN alone, a statement and a round
            # trip less than a first statement of our own; ``SELECT 1`` where it is
            # missing.
            adapted: Any = pooled.dbapi_connection
            if getattr(adapted, "_transaction", False) is None and hasattr(
                adapted, "_start_transaction"
            ):
                await adapted._start_transaction()
            else:
                await connection.exec_driver_sql("SELECT 1")
        held = session.info[_DRIVER] = (connection.sync_connection, driver)
    return held


async def _send(sync: Connection, driver: Any, method: str, sql: str, *args: Any) -> Any:
    _announce(sync, sql, args)
    return await getattr(driver, method)(sql, *args)


def _announce(sync: Connection, sql: str, args: Sequence[Any]) -> None:
    """As SQLAlchemy's own execution does, so that listeners (the benchmark's trace,
    the tests' statement counts) see these statements too."""
    for listener in sync.dispatch.before_cursor_execute:
        listener(sync, None, sql, args, None, False)


# The session's connection and its asyncpg connection, while a transaction holds them.
_DRIVER = "prodorder.driver_connection"
# The writes ``pg_write`` holds back, in the connection's info while it holds any.
_WRITES = "prodorder.held_writes"
_TARGET = re.compile(r"(?:INSERT INTO|UPDATE|DELETE FROM) (\w+) ")
_PARAMETER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _target(sql: str) -> tuple[str, bool]:
    """The table ``sql`` writes, and whether it only inserts."""
    match = _TARGET.match(sql)
    if match is None:
        raise ValueError(f"not a single-table write: {sql[:80]}")
    return match.group(1), sql.startswith("INSERT")


@functools.lru_cache(maxsize=512)
def _renumbered(sql: str, offset: int) -> str:
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


@functools.lru_cache(maxsize=512)
def _together(parts: tuple[str, ...]) -> str:
    """One statement of ``parts`` (already numbered apart): the last one's writes are
    the statement's own, the others' are its ``WITH`` queries (all are run)."""
    if len(parts) == 1:
        return parts[0]
    queries = ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts[:-1], 1))
    return f"WITH {queries} {parts[-1]}"


@dataclass
class _Writes:
    parts: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    tables: dict[str, bool] = field(default_factory=dict)  # table → only inserted so far

    def add(self, sql: str, args: Sequence[Any], table: str, inserts: bool) -> None:
        self.parts.append(_renumbered(sql, len(self.args)))
        self.args += args
        self.tables[table] = self.tables.get(table, True) and inserts

    def statement(self) -> tuple[str, ...]:
        return (_together(tuple(self.parts)), *self.args)


def _send_held(conn: Connection, *_: Any) -> None:
    """Before SQLAlchemy sends a statement on ``conn`` (or commits), the writes
    ``pg_write`` held back, from SQLAlchemy's synchronous side (``run_async``)."""
    writes: _Writes | None = conn.info.pop(_WRITES, None)
    if writes is not None:
        sql, *args = writes.statement()
        _announce(conn, sql, args)
        adapted: Any = conn.connection.dbapi_connection
        adapted.run_async(lambda driver: driver.execute(sql, *args))


def _drop_held(conn: Connection, *_: Any) -> None:
    # A connection that broke (invalidated) has no info to read: asking raises, and
    # the rollback would fail with it. Its writes went with it; the checkout listener
    # below clears what its pool entry still holds.
    if not conn.invalidated:
        conn.info.pop(_WRITES, None)


def _drop_held_on_checkout(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    # A connection that went back to the pool without a commit or rollback event (a
    # lost one) must not carry its writes into another transaction.
    record.info.pop(_WRITES, None)


@event.listens_for(Session, "after_transaction_end")
def _release_driver(session: Session, _transaction: SessionTransaction) -> None:
    session.info.pop(_DRIVER, None)


@event.listens_for(Session, "after_transaction_create")
def _enter_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # The session sends SAVEPOINT when its connection is next asked for: the next
    # ``pg_call`` or ``pg_write`` must ask, or it would run outside the savepoint.
    if transaction.nested:
        session.info.pop(_DRIVER, None)


async def update_loaded(
    session: AsyncSession, changes: Sequence[tuple[Base, dict[str, Any]]], **same: Any
) -> None:
    """``update_rows`` for objects the session has loaded (all of one model): one
    statement, then each object's new values set as committed, so the unit of work
    neither writes them again nor shows the old ones."""
    if not changes:
        return
    rows = [{"id": getattr(obj, "id"), **values} for obj, values in changes]  # noqa: B009
    await update_rows(session, type(changes[0][0]), rows, **same)
    for obj, values in changes:
        for name, value in (values | same).items():
            set_committed_value(obj, name, value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# A file to append every SQL statement to (see ``trace_sql``); for the benchmark only.
TRACE_SQL_ENV = "PRODORDER_TRACE_SQL"


def create_engine(url: str, *, pool_size: int = 10, busy_timeout_ms: int = 30_000) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _make_sqlite_serialisable(engine, busy_timeout_ms)
    else:
        # No overflow: a connection opened beyond the pool is closed again as soon as
        # it is returned, and under load that meant a new PostgreSQL backend (fork,
        # authentication, asyncpg set-up) for a large share of requests. In `make
        # bench` 60 backends a second came and went on the GET scenario alone, and a
        # third of the machine's CPU was their start and exit: 2,000 GETs/s with
        # overflow, 2,900 without (wrk, 32 connections, 2 workers). Requests
        # beyond the pool wait for a connection instead; none holds two at once.
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
        # Before the trace's listeners: a commit's held writes are traced before it.
        sync = engine.sync_engine
        event.listen(sync, "before_execute", _send_held)
        event.listen(sync, "commit", _send_held)
        event.listen(sync, "rollback", _drop_held)
        event.listen(sync.pool, "checkout", _drop_held_on_checkout)
    # An executemany INSERT (the ORM inserting an order's requirements, the outbox
    # events) is one statement per row for the server to parse, plan and log;
    # insertmanyvalues makes it one multi-row INSERT (per 1,000 rows, fewer where the
    # driver limits parameters), as it already does where RETURNING is wanted.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    trace = os.environ.get(TRACE_SQL_ENV)
    if trace:
        trace_sql(engine, trace)
    return engine


def trace_sql(engine: AsyncEngine, path: str) -> None:
    """Append what ``engine`` sends to ``path`` as JSON lines: each statement with its
    parameters (type-tagged), and each transaction's begin, commit and rollback, all
    with the request id.

    ``make bench`` turns a traced lifecycle into its pgbench script this way. Installed
    only when ``PRODORDER_TRACE_SQL`` is set, so an untraced engine pays nothing.
    """
    from prodorder_api.observability import request_id_var

    out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the engine
    pid = os.getpid()

    def write(conn: Connection, kind: str, **fields: Any) -> None:
        entry = {"pid": pid, "conn": id(conn.connection.dbapi_connection), "event": kind}
        entry["request_id"] = request_id_var.get()
        out.write(json.dumps({**entry, **fields}) + "\n")

    def on_statement(
        conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> None:
        # insertmanyvalues batches arrive flagged "many" too, but as one flat statement.
        if context is not None and context.execute_style is ExecuteStyle.EXECUTEMANY:
            rows = [[_traced(v) for v in row] for row in parameters]
            write(conn, "sql", sql=statement, many=rows)
        else:
            write(conn, "sql", sql=statement, params=[_traced(v) for v in parameters or ()])

    def on_dispose(_engine: Engine) -> None:
        out.close()

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", on_statement)
    event.listen(sync, "begin", lambda conn: write(conn, "begin"))
    event.listen(sync, "commit", lambda conn: write(conn, "commit"))
    event.listen(sync, "rollback", lambda conn: write(conn, "rollback"))
    event.listen(sync, "engine_disposed", on_dispose)


def _traced(value: Any) -> Any:
    """A parameter as JSON that keeps its SQL type: ``{"uuid": "…"}``, ``{"decimal": "…"}``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return {"array": [_traced(v) for v in value]}
    return {"text": str(value)}


def _make_sqlite_serialisable(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Writers take SQLite's lock when the transaction begins, not at their first write.

    pysqlite starts a transaction lazily, so "read a balance, then write it" from two
    connections loses updates. Taking the driver's transaction handling away and
    issuing BEGIN IMMEDIATE makes every transaction queue for the write lock, which
    is what SELECT ... FOR UPDATE does on PostgreSQL.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_dependency(request: Request) -> AsyncSession:
    """The request's one session and transaction.

    ``routing.ApiRoute`` commits it after the endpoint returned and its response was
    built, and before the response is sent (together with the idempotency record and
    the outbox events of the same transaction); any exception rolls it back there, and
    it closes it. A plain function, not a generator: FastAPI wraps a dependency that
    yields in a context manager and an exit stack, ~0.05 ms of CPU a request.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    session = sessionmaker()
    request.state.db_session = session
    return session
