"""Engine, sessions and the one-transaction-per-request rule."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
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


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, busy_timeout_ms: int = 30_000) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _make_sqlite_serialisable(engine, busy_timeout_ms)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


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


async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one session and transaction.

    ``routing.ApiRoute`` commits it after the endpoint returned and its response was
    built, and before the response is sent (together with the idempotency record and
    the outbox events of the same transaction); any exception rolls it back here.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    session = sessionmaker()
    request.state.db_session = session
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
