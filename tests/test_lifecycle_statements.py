"""The SQL a production order's lifecycle costs on PostgreSQL (issue #9: ≤ 30
statements), step by step, counted as ``make bench`` counts them: each statement the
server runs for the request, the held writes ``db.pg_write`` sends together once."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from prodorder_api.observability import request_id_var
from tests.helpers import create_item, ok, receive
from tests.order_helpers import create_bom

pytestmark = pytest.mark.postgres_only


@contextmanager
def by_request(engine: AsyncEngine) -> Iterator[dict[str, list[str]]]:
    """The statements ``engine`` sends meanwhile, by the request id they were sent for
    (as the benchmark's trace has them: a statement of other work is not counted)."""
    sent: dict[str, list[str]] = {}

    def on_execute(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        sent.setdefault(request_id_var.get() or "", []).append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def lifecycle(client: httpx.AsyncClient, product_id: str, prefix: str) -> None:
    headers = {"X-Request-Id": f"{prefix}-create"}
    body = {"item_id": product_id, "quantity": 2}
    order = ok(await client.post("/v1/production-orders", json=body, headers=headers), 201)
    for action in ("release", "start", "complete"):
        headers = {"X-Request-Id": f"{prefix}-{action}"}
        ok(await client.post(f"/v1/production-orders/{order['id']}/{action}", headers=headers))


async def test_a_lifecycle_of_a_five_line_bom_takes_18_statements(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    components = [await create_item(client) for _ in range(5)]
    for component in components:
        await receive(client, component["id"], 10, unit_cost="2")
    product = await create_item(client)
    await create_bom(client, product["id"], [(c["id"], 1) for c in components])
    # A first lifecycle reads what is known after it (MAIN; that the BOM, used now, has
    # no operations and no by-products) and makes the product's balance row, as the
    # benchmark's warm-up lifecycle does.
    await lifecycle(client, product["id"], "statements-first")

    with by_request(app.state.engine) as sent:
        await lifecycle(client, product["id"], "statements")

    steps = ("create", "release", "start", "complete")
    counts = {step: len(sent.get(f"statements-{step}", [])) for step in steps}
    assert counts == {"create": 3, "release": 6, "start": 3, "complete": 6}, sent
    assert not [s for s in sent["statements-create"] if "FROM locations" in s]  # MAIN
    assert not [s for s in sent["statements-create"] if "bom_operations" in s]  # none
    assert not [s for s in sent["statements-complete"] if "bom_by_products" in s]  # none
    assert not [s for s in sent["statements-complete"] if s.startswith("SELECT order_operations")]
