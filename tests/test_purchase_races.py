"""Concurrent receipts against one purchase-order line (SPEC §10), against a live
multi-worker server on PostgreSQL: none loses a quantity. Every receipt locks the
purchase order (and its lines) before it reads ``received_quantity``."""

from collections import Counter
from decimal import Decimal

import httpx
import pytest

from tests.helpers import create_item, movements, ok
from tests.test_order_races import (  # noqa: F401  (fixtures)
    assert_balances_sane,
    assert_sane,
    clean_server,
    live,
    race,
    report,
    server,
    server_log,
)

pytestmark = pytest.mark.postgres_only

RECEIPTS = 24


@pytest.mark.usefixtures("clean_server")
async def test_concurrent_receipts_on_one_line_never_lose_a_quantity(
    live: httpx.AsyncClient,  # noqa: F811
) -> None:
    part = await create_item(live, name="Raced part")
    body = {
        "supplier": "Race & Co",
        "lines": [
            {"item_id": part["id"], "quantity": 1000, "unit_cost": "1.5", "due_date": "2040-01-10"}
        ],
    }
    po = ok(await live.post("/v1/purchase-orders", json=body), 201)
    line_id = po["lines"][0]["id"]
    quantities = [Decimal(n % 5 + 1) / 4 for n in range(RECEIPTS)]  # 0.25 … 1.25

    responses, took = await race(
        [
            live.post(
                f"/v1/purchase-orders/{po['id']}/receipts",
                json={"lines": [{"line_id": line_id, "quantity": str(q)}]},
            )
            for q in quantities
        ]
    )

    assert_sane(responses)
    statuses = Counter(r.status_code for r in responses)
    report(f"{RECEIPTS} receipts on one line", statuses=dict(statuses), seconds=f"{took:.2f}")
    assert statuses == {200: RECEIPTS}, [r.text for r in responses if r.status_code != 200]
    after = ok(await live.get(f"/v1/purchase-orders/{po['id']}"))
    total = sum(quantities, Decimal(0))
    assert Decimal(after["lines"][0]["received_quantity"]) == total
    assert after["version"] == 1 + RECEIPTS
    ledger = await movements(live, purchase_order_id=po["id"])
    assert len(ledger) == RECEIPTS
    assert sum((Decimal(m["quantity"]) for m in ledger), Decimal(0)) == total
    stock = await assert_balances_sane(live, part["id"])
    assert Decimal(stock["on_hand"]) == total
    assert Decimal(stock["value"]) == total * Decimal("1.5")
    assert Decimal(stock["incoming"]) == Decimal(1000) - total
