"""Set-up over the API: products with 5-line BOMs and components in stock.

Each client of a write scenario gets its own product, BOM and components, so the
lifecycle scenario measures independent work; in the contention scenario the first
BOM line of every product is one shared component.
"""

import asyncio
from typing import Any

from bench.client import Connection

LINES = 5
OWN_STOCK = "1000000"  # per component: far more than any run consumes
SHARED_STOCK = "100000000"
ORDERS = "/v1/production-orders"


async def _item(conn: Connection, sku: str, name: str, stock: str | None) -> str:
    item = await conn.json("POST", "/v1/items", {"sku": sku, "name": name})
    if stock is not None:
        receipt = {"item_id": item["id"], "quantity": stock, "unit_cost": "1.25"}
        await conn.json("POST", "/v1/stock/receipts", receipt)
    return str(item["id"])


async def _fixture(conn: Connection, client: str, shared: str | None) -> dict[str, Any]:
    components = [shared] if shared else []
    while len(components) < LINES:
        n = len(components)
        components.append(await _item(conn, f"{client}-C{n}", f"{client} part {n}", OWN_STOCK))
    product = await _item(conn, f"{client}-P", f"{client} product", None)
    lines = [{"component_item_id": c, "quantity": str(n + 1)} for n, c in enumerate(components)]
    bom = await conn.json("POST", "/v1/boms", {"item_id": product, "lines": lines})
    return {"client": client, "product": product, "components": components, "bom": bom["id"]}


async def make(
    host: str, port: int, token: str, names: list[str], shared: str | None = None
) -> list[dict[str, Any]]:
    """One fixture per name, made 8 at a time."""
    pending = list(names)
    done: list[dict[str, Any]] = []

    async def work() -> None:
        conn = Connection(host, port, token)
        try:
            while pending:
                done.append(await _fixture(conn, pending.pop(0), shared))
        finally:
            conn.close()

    await asyncio.gather(*(work() for _ in range(8)))
    return sorted(done, key=lambda f: names.index(f["client"]))


async def shared_component(host: str, port: int, token: str, tag: str) -> str:
    conn = Connection(host, port, token)
    try:
        return await _item(conn, f"{tag}-SHARED", "shared component", SHARED_STOCK)
    finally:
        conn.close()


async def lifecycle(
    conn: Connection, fixture: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One order of the fixture's product from create to complete; the final order."""
    body = {"item_id": fixture["product"], "quantity": "1", "reference": fixture["client"]}
    order = await _post(conn, ORDERS, body, "create", headers)
    for action in ("release", "start", "complete"):
        order = await _post(conn, f"{ORDERS}/{order['id']}/{action}", None, action, headers)
    return order


async def _post(
    conn: Connection, path: str, body: Any, step: str, headers: dict[str, str] | None
) -> dict[str, Any]:
    request_headers = {"X-Request-ID": f"{headers['X-Request-ID']}-{step}"} if headers else None
    status, raw = await conn.request("POST", path, body, request_headers)
    if status not in (200, 201):
        raise RuntimeError(f"{step}: {status} {raw[:300]!r}")
    import json

    result: dict[str, Any] = json.loads(raw)
    return result
