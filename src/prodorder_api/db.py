"""Engine, sessions and the one-transaction-per-request rule."""

import functools
import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Index,
    MetaData,
    Numeric,
    Table,
    bindparam,
    case,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from starlette.requests import Request

from prodorder_api.errors import Conflict

if TYPE_CHECKING:
    from prodorder_api.read_routing import ReadReplica

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
    """Flush inside a savepoint; a unique or foreign key violated by it is a 409 ``conflict``
    with the given message, and the transaction stays usable."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def update_by_id(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], **same: Any
) -> None:
    """``UPDATE table SET … WHERE id = …`` for every row (dicts with ``id`` and the same
    other keys), plus ``same`` for all of them: one statement however many rows, on
    both databases (``SET c = CASE id WHEN … THEN … END WHERE id IN (…)``). The ORM's
    flush sends one UPDATE per row, and an executemany is still N statements for the
    server to run. The rows must exist and be locked by the caller."""
    if not rows:
        return
    columns = ("id", *(name for name in rows[0] if name != "id"))
    fixed = {f"same_{name}": value for name, value in same.items()}
    for start in range(0, len(rows), UPDATE_CHUNK):  # far below both parameter limits
        chunk = rows[start : start + UPDATE_CHUNK]
        statement = _update_by_id(table, columns, tuple(same), len(chunk))
        params = {f"{name}_{n}": row[name] for n, row in enumerate(chunk) for name in columns}
        await session.execute(statement, params | fixed)


UPDATE_CHUNK = 200


@functools.lru_cache(maxsize=256)
def _update_by_id(table: Table, columns: tuple[str, ...], same: tuple[str, ...], count: int) -> Any:
    """``update_by_id``'s statement for ``count`` rows, built once, its values named
    parameters (``on_hand_0`` …) so that SQLAlchemy compiles it once too. (A ``VALUES``
    list is never cached by SQLAlchemy: compiled at each call, it took ~5 % of a
    lifecycle's CPU in-process.)"""
    ids = [bindparam(f"id_{n}", type_=table.c.id.type) for n in range(count)]
    changes: dict[str, Any] = {
        name: case(
            *(
                (table.c.id == ids[n], bindparam(f"{name}_{n}", type_=table.c[name].type))
                for n in range(count)
            ),
            else_=table.c[name],
        )
        for name in columns[1:]
    }
    changes |= {name: bindparam(f"same_{name}", type_=table.c[name].type) for name in same}
    return update(table).where(table.c.id.in_(ids)).values(changes)


async def update_loaded(
    session: AsyncSession, changes: Sequence[tuple[Base, dict[str, Any]]], **same: Any
) -> None:
    """``update_by_id`` for objects the session has loaded (all of one model): one
    statement, then each object's new values set as committed, so the flush neither
    writes them again nor shows the old ones."""
    if not changes:
        return
    rows = [{"id": inspect(obj).identity[0], **changed} for obj, changed in changes]  # type: ignore[index]
    await update_by_id(session, table_of(type(changes[0][0])), rows, **same)
    for obj, changed in changes:
        for name, value in (changed | same).items():
            set_committed_value(obj, name, value)


# Where the two databases differ. Each difference is one function here, named for what
# it does; nothing outside this module and the repositories asks which one it runs on.


def _is_postgresql(session: AsyncSession | Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignoring(session: AsyncSession | Session, model: type[Base]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for ``model``: the same clause, spelt by each
    dialect's own ``insert``. Call ``.values(…).on_conflict_do_nothing(…)`` on it."""
    return (postgresql.insert if _is_postgresql(session) else sqlite.insert)(model)


async def serialise(session: AsyncSession, key: int) -> None:
    """Queue this transaction behind every other that serialises on ``key``, until it
    ends: a transaction-scoped advisory lock on PostgreSQL; nothing on SQLite, where
    every write transaction holds the database lock from ``BEGIN IMMEDIATE``."""
    if _is_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def plan_for_values(session: AsyncSession) -> None:
    """Have the rest of this transaction's statements planned for their parameters'
    values, never by a prepared statement's generic plan: PostgreSQL's
    ``plan_cache_mode``; nothing on SQLite. For a metadata filter, whose generic plan
    walks the primary key past the GIN index: p99 over 100,000 orders 216 ms against
    24 ms (bench/metadata_bench.py, docs/benchmarks.md)."""
    if _is_postgresql(session):
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def try_serialise(session: AsyncSession, name: str) -> bool:
    """``serialise`` on a name, without waiting: False when another transaction holds
    it. Always True on SQLite, where no other writer runs meanwhile."""
    if not _is_postgresql(session):
        return True
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": name}
    )
    return bool(got)


async def next_numbers(
    session: AsyncSession, sequence: DbSequence, column: Any, count: int
) -> list[int]:
    """``count`` new numbers for ``column``, unique and increasing: the PostgreSQL
    ``sequence``; on SQLite, which has none, max + 1, which cannot race since the
    writer holds the database lock (BEGIN IMMEDIATE)."""
    if _is_postgresql(session):
        if count == 1:
            return [int(await session.scalar(select(sequence.next_value())) or 0)]
        taken = await session.scalars(
            select(sequence.next_value()).select_from(func.generate_series(1, count))
        )
        return sorted(int(number) for number in taken)
    current = int(await session.scalar(select(func.max(column))) or 0)
    return list(range(current + 1, current + 1 + count))


async def copy_rows(
    session: AsyncSession, table: Table, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    """Many rows into ``table``: PostgreSQL's COPY, an executemany on SQLite.

    For the bulk writes only (MRP's proposals). Measured on the 5,000-item MRP bench,
    70,000 rows: a Core executemany took 1.05 s of CPU, COPY 0.55 s. Values go in as
    they are, past the column types: give what the driver takes (no ``Exact`` here)."""
    if not records:
        return
    if _is_postgresql(session):
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table.name, columns=list(columns), records=records)
        return
    await session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in records])


class hours_between(FunctionElement[Decimal]):
    """``hours_between(start, end)``: the hours from one timestamp to the other."""

    type = Numeric()
    inherit_cache = True


@compiles(hours_between, "postgresql")
def _hours_between_pg(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600)"


@compiles(hours_between)
def _hours_between_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 24)"


class date_of(FunctionElement[date]):
    """``date_of(timestamp)``: its calendar day (UTC, as every timestamp is stored)."""

    type = Date()
    inherit_cache = True


@compiles(date_of, "postgresql")
def _date_of_pg(element: date_of, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC' AS DATE)"


@compiles(date_of)
def _date_of_sqlite(element: date_of, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


# Metadata maps: JSONB on PostgreSQL, where a GIN index answers ``@>``; JSON text on SQLite.
JsonMap = JSON().with_variant(postgresql.JSONB(), "postgresql")


def metadata_index(table: str) -> Index:
    """The GIN index (``jsonb_path_ops``: containment only, a third of the default's
    size) on a table's ``metadata``; PostgreSQL only, SQLite has no index for it."""
    return Index(
        f"ix_{table}_metadata",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql")


def built_on(dialect: str) -> Any:
    """Alembic's ``include_object`` for autogenerate on ``dialect``: leaves out what the
    models build only on another database (``ddl_if``), as ``create_all`` does."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


class metadata_has(FunctionElement[bool]):
    """``metadata_has(column, key, value)``: the map in ``column`` holds ``key: value``.
    On PostgreSQL a containment (``@>``), which the column's GIN index answers; on
    SQLite a lookup in ``json_each``, exact for any key."""

    type = Boolean()
    inherit_cache = True


@compiles(metadata_has, "postgresql")
def _metadata_has_pg(element: metadata_has, compiler: Any, **kw: Any) -> str:
    column, key, value = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"({column} @> jsonb_build_object(CAST({key} AS TEXT), CAST({value} AS TEXT)))"


@compiles(metadata_has)
def _metadata_has_sqlite(element: metadata_has, compiler: Any, **kw: Any) -> str:
    column, key, value = (compiler.process(arg, **kw) for arg in element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}) AS m"
        f" WHERE m.key = {key} AND m.value = {value} AND m.type = 'text')"
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# A file to append every SQL statement to (see ``trace_sql``); for the benchmark only.
TRACE_SQL_ENV = "PRODORDER_TRACE_SQL"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    busy_timeout_ms: int = 30_000,
    pgbouncer: bool = False,
    connect_timeout_s: float | None = None,
) -> AsyncEngine:
    """The engine for ``url``. ``pgbouncer``: PgBouncer in transaction mode sits between
    (``PRODORDER_DB_PGBOUNCER``); ``connect_timeout_s``: give up opening a connection
    sooner than asyncpg's 60 s (the replica, which has the primary to fall back on)."""
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
        connect_args = _pgbouncer_connect_args() if pgbouncer else {}
        if connect_timeout_s is not None:
            connect_args["timeout"] = connect_timeout_s
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            connect_args=connect_args,
        )
    # An executemany INSERT (the ORM inserting an order's requirements, the outbox
    # events) is one statement per row for the server to parse, plan and log;
    # insertmanyvalues makes it one multi-row INSERT (per 1,000 rows, fewer where the
    # driver limits parameters), as it already does where RETURNING is wanted.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    trace = os.environ.get(TRACE_SQL_ENV)
    if trace:
        trace_sql(engine, trace)
    return engine


def _pgbouncer_connect_args() -> dict[str, Any]:
    """asyncpg behind PgBouncer in transaction mode (1.18 keeps no prepared statements
    apart): each transaction may run on another server connection, and a server
    connection carries the statements other clients prepared on it. So neither asyncpg
    (``statement_cache_size``) nor SQLAlchemy (``prepared_statement_cache_size``) keeps a
    statement past the transaction that prepared it, and every name is unique across all
    clients, not only within one connection as ``__asyncpg_stmt_1__`` is. Measured in
    `make bench` (docs/scaling-out.md): each statement is then parsed and planned anew."""
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def _unique_statement_name() -> str:
    return f"po_{uuid.uuid4().hex}"


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

    Where the request is read from is decided here and nowhere else
    (``read_routing``): a pure read goes to the replica when one is configured and up.
    """
    replicas: ReadReplica | None = getattr(request.app.state, "replica", None)
    session = None
    if replicas is not None and replicas.serves(request):
        session = await replicas.session()
    if session is None:
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        session = sessionmaker()
    request.state.db_session = session
    return session


async def on_primary(session: AsyncSession) -> bool:
    """Move a session that reads the replica to the primary, for a read that found the
    replica behind what the client has already seen (``If-None-Match`` naming a newer
    version). True when it moved; False when it was on the primary already. Whatever it
    read on the replica is dropped with the replica's transaction."""
    primary: AsyncEngine | None = session.info.pop(PRIMARY_OF_REPLICA, None)
    if primary is None:
        return False
    await session.rollback()
    session.bind = primary
    return True


# In the ``info`` of a session that reads the replica: the primary's engine.
PRIMARY_OF_REPLICA = "prodorder.replica.primary"
