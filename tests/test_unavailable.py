"""A database out of reach is the service being unavailable, not a bug: 503 with
``Retry-After`` and a problem document, never a 500."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy.exc

from prodorder_api.app import create_app
from prodorder_api.errors import database_unavailable
from prodorder_api.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH


@asynccontextmanager
async def _client(database_url: str, bootstrap: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(
            DATABASE_URL=database_url,
            PRODORDER_DISPATCHER=False,
            PRODORDER_BOOTSTRAP_KEY=ADMIN_TOKEN if bootstrap else None,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH
        ) as http:
            yield http


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "service_unavailable"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        "sqlite+aiosqlite:////nonexistent-directory/prodorder.db",
    ],
    ids=["postgresql-refused", "sqlite-missing"],
)
async def test_a_database_out_of_reach_answers_503(url: str) -> None:
    async with _client(url) as http:
        _assert_unavailable(await http.get("/v1/items"))
        _assert_unavailable(await http.get(f"/v1/production-orders/{uuid.uuid4()}"))
        _assert_unavailable(await http.post("/v1/items", json={"sku": "X", "name": "x"}))
        # Liveness does not touch the database.
        assert (await http.get("/healthz")).status_code == 200


@pytest.mark.postgres_only
async def test_connections_killed_under_the_pool_give_503_then_recover(database_url: str) -> None:
    """PostgreSQL restarted (or an administrator killed the sessions): the request that
    finds its pooled connection dead gets a 503; the pool then reconnects."""
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    sessions = (
        "SELECT array_agg(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        others = set(await admin.fetchval(sessions) or [])  # the suite's own app: spared
        async with _client(database_url, bootstrap=True) as http:
            assert (await http.get("/v1/items")).status_code == 200
            ours = set(await admin.fetchval(sessions) or []) - others
            assert ours
            await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", ours)
            statuses = [(await http.get("/v1/items")).status_code for _ in range(3)]
    finally:
        await admin.close()
    assert statuses[0] == 503 and statuses[-1] == 200, statuses


def test_bugs_are_not_mistaken_for_unavailability(tmp_path: Path) -> None:
    undefined = asyncpg.UndefinedTableError('relation "x" does not exist')
    wrapped = sqlalchemy.exc.ProgrammingError("SELECT 1 FROM x", {}, undefined)
    assert not database_unavailable(wrapped)
    assert not database_unavailable(asyncpg.QueryCanceledError("statement timeout"))
    assert not database_unavailable(ValueError("bad"))
    assert database_unavailable(asyncpg.AdminShutdownError("terminating connection"))
    assert database_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    chained = RuntimeError("while handling")
    chained.__cause__ = asyncpg.CannotConnectNowError("the database system is starting up")
    assert database_unavailable(chained)
    # A replica's read cancelled by replay is worth a retry; other 40001s stay 500s.
    conflict = asyncpg.SerializationError("canceling statement due to conflict with recovery")
    assert database_unavailable(sqlalchemy.exc.DBAPIError("SELECT 1", {}, conflict))
    assert not database_unavailable(
        asyncpg.SerializationError("could not serialize access due to concurrent update")
    )


def test_the_api_document_declares_the_503_on_every_route_that_reads_the_database() -> None:
    document = create_app(Settings(DATABASE_URL="sqlite+aiosqlite://")).openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = operation["responses"].get("503")
            assert declared is not None, (method, path)
            assert "application/problem+json" in declared["content"], (method, path)
            assert "Retry-After" in declared["headers"], (method, path)
            if path == "/healthz":  # reads no database: only the connection cap applies
                assert "database" not in declared["description"]
                assert "PRODORDER_MAX_CONNECTIONS" in declared["description"]
