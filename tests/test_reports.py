"""Shortages, stock valuation and consumption: each equals what the orders and the
ledger say, to the millionth."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import (
    create_item,
    create_location,
    main_location,
    movements,
    ok,
    problem,
    receive,
)
from tests.order_helpers import act, create_bom, create_order


def _mine(report: dict[str, Any], *items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's rows for these items (the database is shared by every test)."""
    ids = {item["id"] for item in items}
    return {row["item_id"]: row for row in report["data"] if row["item_id"] in ids}


# --- shortages -------------------------------------------------------------------


async def test_shortages_list_the_short_components_their_need_and_the_orders(
    client: httpx.AsyncClient,
) -> None:
    p1, p2, p3 = [await create_item(client, name=f"Part {n}") for n in range(3)]
    product = await create_item(client, name="Product")
    await create_bom(client, product["id"], [(p1["id"], 2), (p2["id"], 1), (p3["id"], 1)])
    await receive(client, p1["id"], 5)
    await receive(client, p2["id"], 100)
    # Released first, short of P3: holds 4 of P1 and 2 of P2, nothing of P3.
    o2 = await create_order(client, product["id"], 2, reference="WEB-2")
    ok(await act(client, o2, "release", {"allow_shortage": True}))
    # In progress: holds the last 1 of P1, 2 of P2, and consumed one P2 of those.
    o3 = await create_order(client, product["id"], 2)
    ok(await act(client, o3, "release", {"allow_shortage": True}))
    ok(await act(client, o3, "start"))
    ok(await act(client, o3, "consumptions", {"lines": [{"item_id": p2["id"], "quantity": 1}]}))
    o1 = await create_order(client, product["id"], 3, due_date="2031-01-31")  # planned
    elsewhere = await create_location(client)
    await receive(client, p3["id"], 2, location_id=elsewhere["id"])

    report = ok(await client.get("/v1/reports/shortages"))
    rows = _mine(report, p1, p2, p3)
    assert sorted(rows) == sorted([p1["id"], p3["id"]])  # 97 of P2 are free
    assert {k: rows[p1["id"]][k] for k in ("sku", "required", "available", "shortage")} == {
        "sku": p1["sku"],
        "required": "6",  # O1: 3 × 2; O2 holds all it needs
        "available": "0",  # 5 on hand, 5 reserved
        "shortage": "6",
    }
    assert [(o["id"], o["need"]) for o in rows[p1["id"]]["orders"]] == [(o1["id"], "6")]
    (o1_row,) = rows[p1["id"]]["orders"]
    assert o1_row["number"] == o1["number"] and o1_row["status"] == "planned"
    assert o1_row["due_date"] == "2031-01-31" and o1_row["location_id"] == o1["location_id"]
    p3_row = rows[p3["id"]]
    assert (p3_row["required"], p3_row["available"], p3_row["shortage"]) == ("5", "2", "3")
    assert [(o["id"], o["status"], o["need"], o["reference"]) for o in p3_row["orders"]] == [
        (o2["id"], "released", "2", "WEB-2"),  # by number: O2 was created first
        (o1["id"], "planned", "3", None),
    ]

    main = await main_location(client)
    at_main = _mine(
        ok(await client.get("/v1/reports/shortages", params={"location_id": main["id"]})), p3
    )
    assert (at_main[p3["id"]]["available"], at_main[p3["id"]]["shortage"]) == ("0", "5")
    at_elsewhere = ok(
        await client.get("/v1/reports/shortages", params={"location_id": elsewhere["id"]})
    )
    assert _mine(at_elsewhere, p1, p2, p3) == {}  # no order takes stock there

    with_started = _mine(
        ok(
            await client.get(
                "/v1/reports/shortages",
                params={"status": ["planned", "released", "in_progress"]},
            )
        ),
        p1,
        p2,
        p3,
    )
    # O3 still needs 4 − 1 reserved of P1 and 2 of P3; its P2 is consumed or held.
    assert with_started[p1["id"]]["required"] == "9"
    assert [o["need"] for o in with_started[p1["id"]]["orders"]] == ["3", "6"]
    assert (with_started[p3["id"]]["required"], with_started[p3["id"]]["shortage"]) == ("7", "5")
    assert p2["id"] not in with_started

    only = ok(await client.get("/v1/reports/shortages", params={"item_id": p3["id"]}))
    assert [row["item_id"] for row in only["data"]] == [p3["id"]]
    problem(
        await client.get("/v1/reports/shortages", params={"status": "completed"}),
        422,
        "validation_error",
    )


# --- stock valuation ---------------------------------------------------------------


async def test_valuation_is_on_hand_times_average_cost_for_single_cost_items(
    client: httpx.AsyncClient,
) -> None:
    bolts = await create_item(client, name="Bolt")
    flour = await create_item(client, name="Flour", tracking="lot")
    used_up = await create_item(client, name="Used up")
    await receive(client, bolts["id"], "1000", unit_cost="0.033333")
    await receive(client, flour["id"], "12.5", unit_cost="0.8", lot_code="A")
    await receive(client, flour["id"], "7.5", unit_cost="0.8", lot_code="B")
    await receive(client, used_up["id"], 3, unit_cost="2")
    ok(
        await client.post(
            "/v1/stock/adjustments",
            json={"item_id": used_up["id"], "quantity_delta": -3, "reason": "count"},
        ),
        201,
    )
    ids = [bolts["id"], flour["id"], used_up["id"]]
    report = ok(await client.get("/v1/reports/stock-valuation", params={"item_id": ids}))
    rows = [(r["item_id"], r["on_hand"], r["average_cost"], r["value"]) for r in report["data"]]
    # The used-up item has no stock and no value: left out. Rows are by SKU.
    assert sorted(rows) == sorted(
        [(bolts["id"], "1000", "0.033333", "33.333"), (flour["id"], "20", "0.8", "16")]
    )
    assert [r["sku"] for r in report["data"]] == sorted([bolts["sku"], flour["sku"]])
    expected = sum(Decimal(r["on_hand"]) * Decimal(r["average_cost"]) for r in report["data"])
    assert Decimal(report["total_value"]) == expected == Decimal("49.333")


async def test_valuation_equals_the_ledger_whatever_the_costs(client: httpx.AsyncClient) -> None:
    part = await create_item(client, name="Part")
    product = await create_item(client, name="Product")
    await receive(client, part["id"], 1, unit_cost="1")
    await receive(client, part["id"], 2, unit_cost="2")
    ids = [part["id"], product["id"]]
    before = ok(await client.get("/v1/reports/stock-valuation", params={"item_id": ids}))
    (row,) = before["data"]
    # 3 × the rounded average 1.666667 would be 5.000001; the value is the ledger's 5.
    assert (row["on_hand"], row["average_cost"], row["value"]) == ("3", "1.666667", "5")
    assert before["total_value"] == "5"

    await create_bom(client, product["id"], [(part["id"], 1)])
    order = await create_order(client, product["id"], 2)
    ok(await act(client, order, "release"))
    ok(await act(client, order, "start"))
    ok(await act(client, order, "complete"))
    report = ok(await client.get("/v1/reports/stock-valuation", params={"item_id": ids}))
    rows = _mine(report, part, product)
    ledger = Decimal(0)
    for item_id in ids:
        moves = await movements(client, item_id=item_id)
        value = sum((Decimal(m["value"]) for m in moves), Decimal(0))
        assert Decimal(rows[item_id]["value"]) == value
        ledger += value
    assert Decimal(report["total_value"]) == ledger == Decimal(5)
    assert rows[part["id"]]["on_hand"] == "1" and rows[product["id"]]["on_hand"] == "2"

    everything = ok(await client.get("/v1/reports/stock-valuation"))
    assert Decimal(everything["total_value"]) == sum(
        Decimal(r["value"]) for r in everything["data"]
    )


# --- consumption ---------------------------------------------------------------------


async def test_consumption_equals_the_ledgers_consumption_movements_for_the_period(
    client: httpx.AsyncClient,
) -> None:
    flour = await create_item(client, name="Flour", tracking="lot")
    salt = await create_item(client, name="Salt")
    bread = await create_item(client, name="Bread")
    await receive(client, flour["id"], 10, unit_cost="0.7", lot_code="L1")
    await receive(client, flour["id"], 10, unit_cost="0.9", lot_code="L2")
    await receive(client, salt["id"], 3, unit_cost="0.1")
    await create_bom(client, bread["id"], [(flour["id"], "0.5"), (salt["id"], "0.01")])
    for quantity in (3, 7):
        order = await create_order(client, bread["id"], quantity)
        ok(await act(client, order, "release"))
        ok(await act(client, order, "start"))
        ok(await act(client, order, "complete"))
    extra = await create_order(client, bread["id"], 1)  # and a manual issue
    ok(await act(client, extra, "release"))
    ok(await act(client, extra, "start"))
    ok(
        await act(
            client, extra, "consumptions", {"lines": [{"item_id": salt["id"], "quantity": "0.3"}]}
        )
    )

    # From yesterday, so a run that crosses midnight (UTC) sees the same movements.
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(1)
    ids = [flour["id"], salt["id"]]
    report = ok(
        await client.get(
            "/v1/reports/consumption",
            params={"from": str(yesterday), "to": str(today), "item_id": ids},
        )
    )
    assert report["from"] == str(yesterday) and report["to"] == str(today)
    rows = _mine(report, flour, salt)
    since = datetime.combine(yesterday, datetime.min.time(), UTC).isoformat()
    total = Decimal(0)
    for item in (flour, salt):
        ledger = await movements(client, item_id=item["id"], type="consumption", since=since)
        quantity = -sum((Decimal(m["quantity"]) for m in ledger), Decimal(0))
        value = -sum((Decimal(m["value"]) for m in ledger), Decimal(0))
        row = rows[item["id"]]
        assert (Decimal(row["quantity"]), Decimal(row["value"])) == (quantity, value)
        assert row["movements"] == len(ledger)
        total += value
    assert rows[flour["id"]]["quantity"] == "5"
    assert rows[salt["id"]]["quantity"] == "0.4"  # 0.03 + 0.07 backflushed + 0.3 issued
    assert Decimal(report["total_value"]) == total
    assert rows[flour["id"]]["value"] == "4"  # at the moving average, 0.8

    only_salt = ok(await client.get("/v1/reports/consumption", params={"item_id": salt["id"]}))
    assert [r["item_id"] for r in only_salt["data"]] == [salt["id"]]
    assert only_salt["data"][0]["quantity"] == "0.4"
    before = ok(
        await client.get(
            "/v1/reports/consumption", params={"to": str(today - timedelta(2)), "item_id": ids}
        )
    )
    assert before["data"] == [] and before["total_value"] == "0"
    problem(
        await client.get(
            "/v1/reports/consumption", params={"from": str(today), "to": str(date(2000, 1, 1))}
        ),
        422,
        "validation_error",
    )
