"""``db.pg_write``: writes held back and sent together, before whatever comes next.

The rules a caller relies on: a held write is in the database before the next
statement of any kind runs and before the commit; a rollback drops it, also for the
next transaction on the same connection; writes that cannot share a statement (two to
the same table, other than two INSERTs) do not. PostgreSQL only: SQLite has no
``pg_write``.
"""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from prodorder_api.db import create_engine, create_sessionmaker, pg_call, pg_write
from tests.test_outbox_statements import statements

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[tuple[AsyncEngine, str, str]]:
    """An engine with one pooled connection, and two tables of its own."""
    engine = create_engine(database_url, pool_size=1)
    a, b = (f"held_{name}_{uuid.uuid4().hex[:8]}" for name in "ab")
    async with engine.begin() as conn:
        for table in (a, b):
            await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL)"))
    try:
        yield engine, a, b
    finally:
        async with engine.begin() as conn:
            for table in (a, b):
                await conn.execute(text(f"DROP TABLE {table}"))
        await engine.dispose()


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def rows(engine: AsyncEngine, table: str) -> list[tuple[int, int]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT id, n FROM {table} ORDER BY id"))
        return [(row.id, row.n) for row in result]


async def test_writes_between_two_reads_go_as_one_statement_before_the_second_read(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    engine, a, b = scratch
    with statements(engine) as sent:
        async with sessions(engine)() as session, session.begin():
            await pg_call(session, "fetchval", f"SELECT count(*) FROM {a}")
            await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, 10)
            await pg_write(session, f"INSERT INTO {b} (id, n) VALUES ($1, $2)", 1, 20)
            await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 2, 30)
            assert not [s for s in sent if "INSERT" in s]  # nothing sent yet
            seen = await pg_call(session, "fetchval", f"SELECT sum(n) FROM {a}")
    assert seen == 40
    writes = [s for s in sent if "INSERT" in s]
    assert len(writes) == 1 and writes[0].startswith("WITH w1 AS (INSERT INTO")
    assert await rows(engine, a) == [(1, 10), (2, 30)]
    assert await rows(engine, b) == [(1, 20)]


async def test_held_writes_go_before_sqlalchemys_next_statement_and_before_the_commit(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    engine, a, b = scratch
    async with sessions(engine)() as session, session.begin():
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, 10)
        seen = (await session.execute(text(f"SELECT n FROM {a} WHERE id = 1"))).scalar_one()
        await pg_write(session, f"INSERT INTO {b} (id, n) VALUES ($1, $2)", 1, 20)
    assert seen == 10
    assert await rows(engine, b) == [(1, 20)]


async def test_a_rollback_drops_held_writes_also_for_the_connections_next_transaction(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    engine, a, _ = scratch  # one pooled connection: the next transaction gets it again
    async with sessions(engine)() as session:
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, 10)
        await session.rollback()
    async with sessions(engine)() as session, session.begin():
        await pg_call(session, "execute", "SELECT 1")
    async with sessions(engine)() as session:
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 2, 10)
        await session.close()  # no commit: the transaction is rolled back
    async with sessions(engine)() as session, session.begin():
        await pg_call(session, "execute", "SELECT 1")
    assert await rows(engine, a) == []


async def test_a_second_write_to_the_same_table_sees_the_first(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    """Parts of one statement share a snapshot: an UPDATE would not see the row an
    INSERT beside it adds, nor another UPDATE's change. So they are not put together."""
    engine, a, b = scratch
    with statements(engine) as sent:
        async with sessions(engine)() as session, session.begin():
            await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, 1)
            await pg_write(session, f"UPDATE {a} SET n = n + $1 WHERE id = $2", 10, 1)
            await pg_write(session, f"INSERT INTO {b} (id, n) VALUES ($1, $2)", 1, 1)
            await pg_write(session, f"UPDATE {a} SET n = n + $1 WHERE id = $2", 100, 1)
            await pg_write(session, f"DELETE FROM {b} WHERE id = $1", 1)
    assert await rows(engine, a) == [(1, 111)]
    assert await rows(engine, b) == []
    # [insert a], [update a, insert b], [update a, delete b]
    assert len([s for s in sent if a in s or b in s]) == 3


async def test_a_savepoint_keeps_the_writes_held_before_it_and_undoes_those_inside(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    engine, a, _ = scratch
    async with sessions(engine)() as session, session.begin():
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, 10)
        nested = await session.begin_nested()
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 2, 20)
        await nested.rollback()
        await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 3, 30)
    assert await rows(engine, a) == [(1, 10), (3, 30)]


async def test_a_held_write_that_fails_fails_the_statement_it_goes_with(
    scratch: tuple[AsyncEngine, str, str],
) -> None:
    """Here a NOT NULL violation surfaces at the commit; nothing is written."""
    engine, a, b = scratch
    session = sessions(engine)()
    with pytest.raises(Exception, match="null value"):
        async with session.begin():
            await pg_write(session, f"INSERT INTO {b} (id, n) VALUES ($1, $2)", 1, 1)
            await pg_write(session, f"INSERT INTO {a} (id, n) VALUES ($1, $2)", 1, None)
    await session.close()
    assert await rows(engine, a) == [] and await rows(engine, b) == []
