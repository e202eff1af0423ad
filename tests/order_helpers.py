"""Factories for BOMs and production orders over the HTTP API."""

from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import create_item, ok, receive


async def create_bom(
    client: httpx.AsyncClient, product_id: str, lines: list[tuple[str, Any]], **fields: Any
) -> dict[str, Any]:
    body = {
        "item_id": product_id,
        "lines": [{"component_item_id": c, "quantity": q} for c, q in lines],
        **fields,
    }
    return ok(await client.post("/v1/boms", json=body), 201)  # type: ignore[no-any-return]


async def create_order(
    client: httpx.AsyncClient, item_id: str, quantity: Any, **fields: Any
) -> dict[str, Any]:
    body = {"item_id": item_id, "quantity": quantity, **fields}
    return ok(await client.post("/v1/production-orders", json=body), 201)  # type: ignore[no-any-return]


async def act(
    client: httpx.AsyncClient, order: dict[str, Any], action: str, body: Any = None
) -> httpx.Response:
    path = f"/v1/production-orders/{order['id']}/{action}"
    if body is None:
        return await client.post(path)
    return await client.post(path, json=body)


def requirement(order: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(r for r in order["requirements"] if r["component_item_id"] == item_id)


async def bicycle(client: httpx.AsyncClient) -> dict[str, Any]:
    """A bicycle from one frame, two wheels and eight bolts (5 % of bolts lost)."""
    frame = await create_item(client, name="Frame")
    wheel = await create_item(client, name="Wheel")
    bolt = await create_item(client, name="Bolt", uom="pcs")
    bike = await create_item(client, name="Bicycle")
    await receive(client, frame["id"], 10, unit_cost="50")
    await receive(client, wheel["id"], 20, unit_cost="12.5")
    await receive(client, bolt["id"], 100, unit_cost="0.1")
    bom = ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": bike["id"],
                "lines": [
                    {"component_item_id": frame["id"], "quantity": 1},
                    {"component_item_id": wheel["id"], "quantity": 2},
                    {"component_item_id": bolt["id"], "quantity": 8, "scrap_factor": "0.05"},
                ],
                "operations": [{"sequence": 10, "name": "Assemble", "run_minutes": "30"}],
            },
        ),
        201,
    )
    return {"frame": frame, "wheel": wheel, "bolt": bolt, "bike": bike, "bom": bom}


async def assert_cost_balances(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    """Σ consumption + labour == Σ output value + scrap value, from the ledger and the order."""
    order = ok(await client.get(f"/v1/production-orders/{order_id}"))
    moves = ok(
        await client.get(
            "/v1/stock/movements", params={"production_order_id": order_id, "limit": 500}
        )
    )["data"]
    consumed = -sum(Decimal(m["value"]) for m in moves if m["type"] == "consumption")
    returned = sum(Decimal(m["value"]) for m in moves if m["type"] == "return")
    output = sum(Decimal(m["value"]) for m in moves if m["type"] == "output")
    assert Decimal(order["material_cost"]) == consumed - returned
    assert Decimal(order["output_value"]) == output
    if order["status"] == "completed":
        labour = Decimal(order["labour_cost"])
        assert consumed + labour == output + Decimal(order["scrap_value"]) + returned
    return order  # type: ignore[no-any-return]
