"""The SQL a production order's lifecycle costs on PostgreSQL (issue #9: ≤ 30
statements), step by step, counted as ``make bench`` counts them: each statement the
server runs, the held writes ``db.pg_write`` sends together counting once."""

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import create_item, ok, receive
from tests.order_helpers import act, create_bom, create_order
from tests.test_outbox_statements import statements

pytestmark = pytest.mark.postgres_only


async def test_a_lifecycle_of_a_five_line_bom_takes_at_most_26_statements(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    components = [await create_item(client) for _ in range(5)]
    for component in components:
        await receive(client, component["id"], 10, unit_cost="2")
    product = await create_item(client)
    await create_bom(client, product["id"], [(c["id"], 1) for c in components])
    # A first lifecycle reads what is known after it (MAIN, the BOM's by-products)
    # and makes the product's balance row, as the benchmark's warm-up lifecycle does.
    first = await create_order(client, product["id"], 1)
    for action in ("release", "start", "complete"):
        ok(await act(client, first, action))

    sent: dict[str, list[str]] = {}
    with statements(app.state.engine) as sent["create"]:
        order = await create_order(client, product["id"], 2)
    for action in ("release", "start", "complete"):
        with statements(app.state.engine) as sent[action]:
            ok(await act(client, order, action))

    counts = {step: len(sql) for step, sql in sent.items()}
    assert counts == {"create": 4, "release": 8, "start": 4, "complete": 10}, sent
    assert not [s for s in sent["create"] if "FROM locations" in s]  # MAIN, known by now
    assert not [s for s in sent["complete"] if "bom_by_products" in s]  # it has none
    assert sum(counts.values()) <= 26
