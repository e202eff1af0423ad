"""The benches' plain asyncpg access to PostgreSQL: a DSN from a SQLAlchemy URL, and
one administrative statement (``CREATE DATABASE`` …) on the server."""

import asyncpg
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """``url`` (``postgresql+asyncpg://…``) as asyncpg takes it, optionally for another
    database on the same server."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
