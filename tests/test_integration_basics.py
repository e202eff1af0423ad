"""API keys and scopes, ETag / If-Match, Idempotency-Key."""

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI

from prodorder_api.auth import service as keys
from tests.helpers import create_item, movements, ok, problem, receive, totals, unique
from tests.order_helpers import bicycle, create_order


async def new_key(app: FastAPI, scope: str) -> dict[str, str]:
    async with app.state.sessionmaker() as session, session.begin():
        _, token = await keys.create(session, unique("key"), scope)
    return {"Authorization": f"Bearer {token}"}


async def test_every_v1_operation_needs_a_key_and_writes_need_write(
    app: FastAPI, anon_client: httpx.AsyncClient
) -> None:
    read = await new_key(app, "read")
    document = app.openapi()
    checked = 0
    for path, operations in document["paths"].items():
        if not path.startswith("/v1"):
            continue
        concrete = path
        for name in (
            "item_id",
            "order_id",
            "bom_id",
            "location_id",
            "work_center_id",
            "id",
            "subscription_id",
            "webhook_id",
            "lot_id",
        ):
            concrete = concrete.replace("{" + name + "}", str(uuid.uuid4()))
        concrete = concrete.replace("{sequence}", "10")
        for method in operations:
            response = await anon_client.request(method.upper(), concrete, json={})
            problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            bad = await anon_client.request(
                method.upper(), concrete, json={}, headers={"Authorization": "Bearer nope"}
            )
            problem(bad, 401, "unauthorized")
            if method != "get":
                problem(
                    await anon_client.request(method.upper(), concrete, json={}, headers=read),
                    403,
                    "forbidden",
                )
            checked += 1
    assert checked > 40
    assert (await anon_client.get("/healthz")).status_code == 200
    assert (await anon_client.get("/readyz")).status_code == 200


async def test_revoked_key_is_refused(app: FastAPI, anon_client: httpx.AsyncClient) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        key, token = await keys.create(session, unique("key"), "read")
    headers = {"Authorization": f"Bearer {token}"}
    ok(await anon_client.get("/v1/items", headers=headers))
    async with app.state.sessionmaker() as session, session.begin():
        await keys.revoke(session, str(key.id))
    problem(await anon_client.get("/v1/items", headers=headers), 401, "unauthorized")


async def test_stale_if_match_is_412_and_changes_nothing(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    order = await create_order(client, b["bike"]["id"], 2)
    got = await client.get(f"/v1/production-orders/{order['id']}")
    assert got.headers["etag"] == f'"{order["version"]}"'
    released = await client.post(
        f"/v1/production-orders/{order['id']}/release", headers={"If-Match": got.headers["etag"]}
    )
    assert released.status_code == 200
    assert released.headers["etag"] == f'"{released.json()["version"]}"'
    stale = await client.post(
        f"/v1/production-orders/{order['id']}/start", headers={"If-Match": got.headers["etag"]}
    )
    problem(stale, 412, "precondition_failed")
    again = ok(await client.get(f"/v1/production-orders/{order['id']}"))
    assert again["status"] == "released" and again["version"] == released.json()["version"]
    stale_patch = await client.patch(
        f"/v1/production-orders/{order['id']}", json={"priority": 5}, headers={"If-Match": '"1"'}
    )
    problem(stale_patch, 412, "precondition_failed")
    assert ok(await client.get(f"/v1/production-orders/{order['id']}"))["priority"] == 0
    item = b["frame"]
    problem(
        await client.patch(
            f"/v1/items/{item['id']}", json={"name": "x"}, headers={"If-Match": '"99"'}
        ),
        412,
        "precondition_failed",
    )
    fresh = await client.patch(
        f"/v1/items/{item['id']}",
        json={"name": "Frame 2"},
        headers={"If-Match": f'"{item["version"]}"'},
    )
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'


async def test_ten_identical_posts_with_one_key_apply_once(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    key = {"Idempotency-Key": unique("idem")}
    body = {"item_id": item["id"], "quantity": "2.5", "unit_cost": "4"}
    responses = await asyncio.gather(
        *(client.post("/v1/stock/receipts", json=body, headers=key) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    assert len(await movements(client, item_id=item["id"])) == 1
    assert (await totals(client, item["id"]))["on_hand"] == "2.5"
    first = next(
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    )
    replay = await client.post("/v1/stock/receipts", json=body, headers=key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    reused = await client.post("/v1/stock/receipts", json={**body, "quantity": 3}, headers=key)
    problem(reused, 422, "idempotency_key_reused")
    assert len(await movements(client, item_id=item["id"])) == 1


async def test_failed_request_is_not_remembered(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    key = {"Idempotency-Key": unique("idem")}
    body = {"item_id": item["id"], "quantity_delta": -1, "reason": "count"}
    problem(
        await client.post("/v1/stock/adjustments", json=body, headers=key),
        409,
        "insufficient_stock",
    )
    await receive(client, item["id"], 1)
    retried = await client.post("/v1/stock/adjustments", json=body, headers=key)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers


@pytest.mark.postgres_only
async def test_idempotency_is_scoped_per_api_key(
    app: FastAPI, anon_client: httpx.AsyncClient
) -> None:
    one, two = await new_key(app, "write"), await new_key(app, "write")
    key = {"Idempotency-Key": "same-key"}
    first = await anon_client.post(
        "/v1/items", json={"sku": unique("A"), "name": "a"}, headers={**one, **key}
    )
    second = await anon_client.post(
        "/v1/items", json={"sku": unique("B"), "name": "b"}, headers={**two, **key}
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_expired_idempotency_records_are_purged(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from prodorder_api.idempotency.models import IdempotencyRecord
    from prodorder_api.webhooks.dispatcher import Dispatcher

    key = unique("idem")
    item = await create_item(client)
    body = {"item_id": item["id"], "quantity": 1}
    ok(await client.post("/v1/stock/receipts", json=body, headers={"Idempotency-Key": key}), 201)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    dispatcher = Dispatcher(app.state.sessionmaker, app.state.settings)
    try:
        assert await dispatcher.purge() >= 1
    finally:
        await dispatcher.aclose()
    async with app.state.sessionmaker() as session:
        left = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
    assert left is None
    again = await client.post("/v1/stock/receipts", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
