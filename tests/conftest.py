"""Every test runs on both backends: the embedded SQLite and a real PostgreSQL.

Each run migrates its own databases with ``alembic upgrade head`` (never
``create_all``): a fresh SQLite file, and a PostgreSQL database created on the
server named by ``TEST_DATABASE_URL`` and dropped at the end. Under ``CI=true`` a
missing PostgreSQL fails the run instead of skipping.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from prodorder_api import migrate
from prodorder_api.app import create_app
from prodorder_api.settings import Settings
from tests.invariants import broken_invariants

BACKENDS = ["sqlite", "postgresql"]
# An admin key installed at start-up (PRODORDER_BOOTSTRAP_KEY), used by `client`.
ADMIN_TOKEN = "po_test_admin_" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgresql"]
        metafunc.parametrize("backend", backends, scope="session")


def _server_url() -> str | None:
    if "TEST_DATABASE_URL" in os.environ:
        return os.environ["TEST_DATABASE_URL"] or None
    return DEFAULT_SERVER


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    await conn.close()


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for this run and backend."""
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    server = postgres_server_url()
    name = f"prodorder_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_server_url() -> str:
    url = _server_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires PostgreSQL (TEST_DATABASE_URL is empty)")
        pytest.skip("no PostgreSQL server")
    try:
        asyncio.run(_ping(url))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return url


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        Settings(
            DATABASE_URL=database_url,
            PRODORDER_DB_POOL_SIZE=20,
            PRODORDER_BOOTSTRAP_KEY=ADMIN_TOKEN,
            # No background webhook delivery here; the webhook tests run their own.
            PRODORDER_DISPATCHER=False,
        )
    )
    async with application.router.lifespan_context(application):
        yield application
        # Every test of this backend has run: the whole database must still add up.
        problems = await broken_invariants(application.state.engine)
        assert not problems, "\n".join(problems[:20])


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, authorised with an admin key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        yield http


@pytest.fixture
async def anon_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app without any API key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
