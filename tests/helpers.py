"""Small factories over the HTTP API, so tests read like the spec."""

import uuid
from decimal import Decimal
from typing import Any

import httpx


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    for field in ("type", "title", "detail"):
        assert body[field], body
    return body


async def create_item(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"sku": unique("SKU"), "name": "Test item", **fields}
    return ok(await client.post("/v1/items", json=body), 201)  # type: ignore[no-any-return]


async def create_location(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {"code": unique("LOC"), "name": "Test location"}
    return ok(await client.post("/v1/locations", json=body), 201)  # type: ignore[no-any-return]


async def main_location(client: httpx.AsyncClient) -> dict[str, Any]:
    page = ok(await client.get("/v1/locations", params={"code": "MAIN"}))
    return page["data"][0]  # type: ignore[no-any-return]


async def receive(
    client: httpx.AsyncClient, item_id: str, quantity: Any, **fields: Any
) -> dict[str, Any]:
    body = {"item_id": item_id, "quantity": quantity, **fields}
    return ok(await client.post("/v1/stock/receipts", json=body), 201)  # type: ignore[no-any-return]


async def adjust(
    client: httpx.AsyncClient, item_id: str, delta: Any, **fields: Any
) -> httpx.Response:
    body = {"item_id": item_id, "quantity_delta": delta, "reason": "test", **fields}
    return await client.post("/v1/stock/adjustments", json=body)


async def totals(client: httpx.AsyncClient, item_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/items/{item_id}/stock"))  # type: ignore[no-any-return]


async def walk(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a cursor list, page by page."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = ok(await client.get(path, params=query))
        rows.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def movements(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return await walk(client, "/v1/stock/movements", limit=500, **params)


async def balances(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return await walk(client, "/v1/stock", limit=500, include_empty="true", **params)


async def assert_ledger_matches_balances(client: httpx.AsyncClient, item_id: str) -> None:
    """For every balance, on-hand equals the sum of its movements; the item's value too."""
    ledger: dict[tuple[str, str | None], Decimal] = {}
    value = Decimal(0)
    for m in await movements(client, item_id=item_id):
        key = (m["location_id"], m["lot_code"])
        ledger[key] = ledger.get(key, Decimal(0)) + Decimal(m["quantity"])
        value += Decimal(m["value"])
    kept = {
        (b["location_id"], b["lot_code"]): Decimal(b["on_hand"])
        for b in await balances(client, item_id=item_id)
    }
    assert {k: v for k, v in kept.items() if v} == {k: v for k, v in ledger.items() if v}
    for b in await balances(client, item_id=item_id):
        assert Decimal(b["on_hand"]) >= 0
        assert 0 <= Decimal(b["reserved"]) <= Decimal(b["on_hand"])
    assert Decimal((await totals(client, item_id))["value"]) == value
