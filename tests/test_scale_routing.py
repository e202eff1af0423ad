"""Where a request reads (read_routing.py), in-process and on both backends: the rule,
and the fallback to the primary when the replica cannot be reached. The live replica
itself is tests/test_scale_replica.py."""

import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from prodorder_api.app import create_app
from prodorder_api.read_routing import RETRY_AFTER_S, ReadReplica
from prodorder_api.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH
from tests.helpers import create_item


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
async def unreachable_replica_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        DATABASE_URL=database_url,
        PRODORDER_READ_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/x",
        PRODORDER_BOOTSTRAP_KEY=ADMIN_TOKEN,
        PRODORDER_DISPATCHER=False,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _request(method: str, path: str, **headers: str) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": method, "path": path, "headers": raw})


@pytest.mark.parametrize(
    ("method", "path", "headers", "replica"),
    [
        ("GET", "/v1/items", {}, True),
        ("HEAD", "/v1/production-orders/x", {}, True),
        ("GET", "/v1/reports/shortages", {}, True),
        ("GET", "/v1/items", {"Consistency": "strong"}, False),
        ("GET", "/v1/items", {"Consistency": " Strong "}, False),
        ("GET", "/v1/items", {"Consistency": "eventual"}, True),
        ("POST", "/v1/items", {}, False),
        ("PATCH", "/v1/production-orders/x", {}, False),
        ("GET", "/v1/events", {}, False),
        ("GET", "/v1/api-keys", {}, False),
        ("GET", "/v1/webhooks/x/deliveries", {}, False),
        ("GET", "/readyz", {}, False),
    ],
)
def test_pure_reads_of_v1_go_to_the_replica_and_nothing_else_does(
    method: str, path: str, headers: dict[str, str], replica: bool
) -> None:
    rule = ReadReplica.serves
    assert rule(None, _request(method, path, **headers)) is replica  # type: ignore[arg-type]


async def test_with_the_replica_out_of_reach_reads_and_writes_use_the_primary(
    unreachable_replica_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=unreachable_replica_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        item = await create_item(http)
        began = time.monotonic()
        for _ in range(3):
            got = await http.get(f"/v1/items/{item['id']}")
            assert got.status_code == 200, got.text
        replica: ReadReplica = unreachable_replica_app.state.replica
        assert replica.last_failure is not None and "Connect" in replica.last_failure
        assert replica.down_until > began  # tried once, then the primary until the retry
        assert replica.down_until <= time.monotonic() + RETRY_AFTER_S
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["replica"]["status"] == "unreachable"
