"""The /v1 guard in-process, on both databases: the key before the body, bounded bodies,
rate limits (in the process and in Redis), and API keys through the API."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from prodorder_api.app import create_app
from prodorder_api.auth import service as auth
from prodorder_api.settings import Settings
from tests.conftest import ADMIN_TOKEN

BIG = 2 * 1024 * 1024  # over the default bound of 1 MiB


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def _app(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the test database, with its own settings; a client without a key."""
    settings = {"PRODORDER_BOOTSTRAP_KEY": ADMIN_TOKEN, **settings}
    application = create_app(
        Settings(DATABASE_URL=database_url, PRODORDER_DISPATCHER=False, **settings)
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("10.1.2.3", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def _new_key(client: httpx.AsyncClient, scope: str = "write") -> dict[str, Any]:
    response = await client.post(
        "/v1/api-keys", json={"name": f"test {uuid.uuid4().hex[:6]}", "scope": scope}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _item(sku: str | None = None) -> dict[str, str]:
    return {"sku": sku or f"G-{uuid.uuid4().hex[:10]}", "name": "Guarded", "uom": "pcs"}


# ------------------------------------------------------------------ the key, then the body


async def test_no_key_is_401_whatever_the_body(anon_client: httpx.AsyncClient) -> None:
    for headers in ({}, _bearer("po_wrong"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await anon_client.post(
            "/v1/items", content=b"[" * BIG, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_body_over_the_bound_is_413_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    sku = f"BIG-{uuid.uuid4().hex[:8]}"
    body = b'{"sku": "' + sku.encode() + b'", "name": "' + b"x" * BIG + b'", "uom": "pcs"}'
    response = await client.post(
        "/v1/items", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"
    listed = (await client.get("/v1/items", params={"limit": 500})).json()["data"]
    assert sku not in {item["sku"] for item in listed}


async def test_a_streamed_body_over_the_bound_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536  # 2.5 MiB in all, no Content-Length

    response = await client.post(
        "/v1/items", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_body_within_the_bound_is_served(database_url: str) -> None:
    async with _app(database_url, PRODORDER_MAX_BODY_BYTES=200) as http:
        item = _item()
        small = await http.post("/v1/items", json=item, headers=_bearer(ADMIN_TOKEN))
        assert small.status_code == 201, small.text
        large = await http.post(
            "/v1/items", json={**item, "name": "n" * 200}, headers=_bearer(ADMIN_TOKEN)
        )
        assert large.status_code == 413


# ------------------------------------------------------------------------ API keys


async def test_keys_through_the_api(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    created = await _new_key(client, "read")
    assert created["token"].startswith("po_") and created["scope"] == "read"
    assert created["prefix"] == created["token"][:10]
    token = created["token"]

    assert (await anon_client.get("/v1/items", headers=_bearer(token))).status_code == 200
    refused = await anon_client.post("/v1/items", json=_item(), headers=_bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (await anon_client.get("/v1/api-keys", headers=_bearer(token))).status_code == 403

    shown = (await client.get(f"/v1/api-keys/{created['id']}")).json()
    assert shown["last_used_at"] is not None and shown["revoked_at"] is None
    listed = (await client.get("/v1/api-keys", params={"limit": 500})).json()["data"]
    mine = [key for key in listed if key["id"] == created["id"]]
    assert len(mine) == 1
    assert set(mine[0]) == {
        "id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"
    }  # fmt: skip

    revoked = await client.delete(f"/v1/api-keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    # Refused at once by the process that revoked it, although it was just cached.
    after = await anon_client.get("/v1/items", headers=_bearer(token))
    assert after.status_code == 401
    assert after.json()["detail"] == "the API key is unknown or revoked"
    again = await client.delete(f"/v1/api-keys/{created['id']}")
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_key_routes_refuse_bad_input(client: httpx.AsyncClient) -> None:
    assert (await client.delete(f"/v1/api-keys/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/v1/api-keys/not-an-id")).status_code == 404
    for body in ({"name": "x", "scope": "root"}, {"name": "", "scope": "read"}, {"scope": "read"}):
        response = await client.post("/v1/api-keys", json=body)
        assert response.status_code == 422, body


async def test_a_short_bootstrap_key_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        async with _app(database_url, PRODORDER_BOOTSTRAP_KEY="hunter2"):
            pass
    assert auth.bootstrap_problem("hunter2")
    assert auth.bootstrap_problem("k" * 32) is None


# ---------------------------------------------------------------------- rate limits


async def test_the_request_past_the_limit_is_429(database_url: str) -> None:
    async with _app(database_url, PRODORDER_RATE_LIMIT="3/hour") as http:
        key = await _new_key_on(http)
        remaining = []
        for _ in range(3):
            response = await http.get("/v1/items", headers=_bearer(key))
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        limited = await http.get("/v1/items", headers=_bearer(key))
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 3600
        assert limited.headers["ratelimit-remaining"] == "0"
        # Another key has a budget of its own.
        other = await _new_key_on(http)
        assert (await http.get("/v1/items", headers=_bearer(other))).status_code == 200


async def test_guessing_keys_is_limited_by_address(database_url: str) -> None:
    async with _app(database_url, PRODORDER_RATE_LIMIT="5/hour") as http:
        statuses = [
            (await http.get("/v1/items", headers=_bearer(f"po_guess_{n}"))).status_code
            for n in range(7)
        ]
        assert statuses == [401] * 5 + [429] * 2


async def test_without_a_limit_nothing_is_limited(client: httpx.AsyncClient) -> None:
    for _ in range(60):
        response = await client.get("/v1/locations")
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


async def test_a_limit_that_is_not_one_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(ValueError, match="PRODORDER_RATE_LIMIT"):
        async with _app(database_url, PRODORDER_RATE_LIMIT="lots"):
            pass


async def _new_key_on(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/v1/api-keys", json={"name": "limited", "scope": "write"}, headers=_bearer(ADMIN_TOKEN)
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires Redis (TEST_REDIS_URL is empty)")
        pytest.skip("no Redis server (TEST_REDIS_URL)")
    return url


async def test_two_instances_on_redis_share_one_budget(database_url: str) -> None:
    url = redis_url()
    async with (
        _app(database_url, PRODORDER_RATE_LIMIT="4/hour", PRODORDER_REDIS_URL=url) as one,
        _app(database_url, PRODORDER_RATE_LIMIT="4/hour", PRODORDER_REDIS_URL=url) as two,
    ):
        key = await _new_key_on(one)  # the admin key's request counts, not this key's
        statuses = [
            (await http.get("/v1/items", headers=_bearer(key))).status_code
            for http in (one, two, one, two, one, two)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_redis_out_of_reach_limits_nothing(database_url: str) -> None:
    async with _app(
        database_url, PRODORDER_RATE_LIMIT="1/hour", PRODORDER_REDIS_URL="redis://127.0.0.1:1/0"
    ) as http:
        for _ in range(3):
            response = await http.get("/v1/items", headers=_bearer(ADMIN_TOKEN))
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers
