"""Receipts, adjustments and transfers: exact quantities, exact value, one ledger."""

from decimal import Decimal

import httpx

from tests.helpers import (
    adjust,
    assert_ledger_matches_balances,
    create_item,
    create_location,
    main_location,
    movements,
    ok,
    problem,
    receive,
    totals,
)


async def test_point_three_minus_point_one_three_times_is_exactly_zero(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    await receive(client, item["id"], "0.3", unit_cost="1")
    for _ in range(3):
        ok(await adjust(client, item["id"], 0.1 * -1), 201)
    stock = await totals(client, item["id"])
    assert stock["on_hand"] == "0"
    assert stock["available"] == "0"
    assert stock["value"] == "0"
    await assert_ledger_matches_balances(client, item["id"])


async def test_receipt_moves_the_average_cost(client: httpx.AsyncClient) -> None:
    item = await create_item(client, standard_cost="9")
    await receive(client, item["id"], 10, unit_cost="2")
    await receive(client, item["id"], "5", unit_cost="3.5")
    got = ok(await client.get(f"/v1/items/{item['id']}"))
    assert got["average_cost"] == "2.5"  # (20 + 17.5) / 15
    stock = await totals(client, item["id"])
    assert stock == {
        "item_id": item["id"],
        "on_hand": "15",
        "reserved": "0",
        "available": "15",
        "incoming": "0",
        "average_cost": "2.5",
        "value": "37.5",
    }


async def test_value_never_drifts_when_the_average_does_not_terminate(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    await receive(client, item["id"], 3, unit_cost="10")
    await receive(client, item["id"], 3, unit_cost="0")  # average 5
    await receive(client, item["id"], 1, unit_cost="1")  # 31 / 7 = 4.428571428...
    for delta in (-2, -2, -3):
        ok(await adjust(client, item["id"], delta), 201)
    stock = await totals(client, item["id"])
    assert stock["on_hand"] == "0"
    assert stock["value"] == "0"  # the last issue took exactly what was left
    values = [Decimal(m["value"]) for m in await movements(client, item_id=item["id"])]
    assert sum(values) == 0
    await assert_ledger_matches_balances(client, item["id"])


async def test_receipt_without_cost_uses_average_then_standard(client: httpx.AsyncClient) -> None:
    item = await create_item(client, standard_cost="4.25")
    first = await receive(client, item["id"], 2)
    assert first["movements"][0]["unit_cost"] == "4.25"
    await receive(client, item["id"], 2, unit_cost="5.75")  # average 5
    third = await receive(client, item["id"], 1)
    assert third["movements"][0]["unit_cost"] == "5"


async def test_adjustment_cannot_take_more_than_available(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    await receive(client, item["id"], 5)
    body = problem(await adjust(client, item["id"], -6), 409, "insufficient_stock")
    assert body["shortages"][0]["item_id"] == item["id"]
    assert body["shortages"][0]["available"] == "5"
    assert body["shortages"][0]["shortage"] == "1"
    assert (await totals(client, item["id"]))["on_hand"] == "5"
    assert len(await movements(client, item_id=item["id"])) == 1


async def test_positive_adjustment_adds_at_the_average_cost(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    await receive(client, item["id"], 4, unit_cost="2.5")
    made = ok(await adjust(client, item["id"], "1.5"), 201)
    assert made["movements"][0]["unit_cost"] == "2.5"
    assert made["movements"][0]["value"] == "3.75"
    assert (await totals(client, item["id"]))["value"] == "13.75"


async def test_transfer_moves_stock_and_keeps_value(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    main = await main_location(client)
    store = await create_location(client)
    await receive(client, item["id"], 10, unit_cost="3")
    moved = ok(
        await client.post(
            "/v1/stock/transfers",
            json={
                "item_id": item["id"],
                "quantity": "4",
                "from_location_id": main["id"],
                "to_location_id": store["id"],
            },
        ),
        201,
    )
    assert [(m["type"], m["quantity"]) for m in moved["movements"]] == [
        ("transfer_out", "-4"),
        ("transfer_in", "4"),
    ]
    by_location = {
        b["location_id"]: b["on_hand"]
        for b in ok(await client.get("/v1/stock", params={"item_id": item["id"]}))["data"]
    }
    assert by_location == {main["id"]: "6", store["id"]: "4"}
    stock = await totals(client, item["id"])
    assert (stock["on_hand"], stock["value"], stock["average_cost"]) == ("10", "30", "3")
    await assert_ledger_matches_balances(client, item["id"])


async def test_transfer_larger_than_available_changes_nothing(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    main = await main_location(client)
    store = await create_location(client)
    await receive(client, item["id"], 2)
    response = await client.post(
        "/v1/stock/transfers",
        json={
            "item_id": item["id"],
            "quantity": 3,
            "from_location_id": main["id"],
            "to_location_id": store["id"],
        },
    )
    problem(response, 409, "insufficient_stock")
    assert len(await movements(client, item_id=item["id"])) == 1


async def test_movement_filters(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    other = await create_location(client)
    await receive(client, item["id"], 5)
    await receive(client, item["id"], 5, location_id=other["id"])
    ok(await adjust(client, item["id"], -1, location_id=other["id"]), 201)
    assert len(await movements(client, item_id=item["id"])) == 3
    assert len(await movements(client, item_id=item["id"], location_id=other["id"])) == 2
    assert [m["type"] for m in await movements(client, item_id=item["id"], type="adjustment")] == [
        "adjustment"
    ]
    everything = await movements(client, item_id=item["id"])
    since = everything[-1]["created_at"]
    assert [m["id"] for m in await movements(client, item_id=item["id"], since=since)] == [
        everything[-1]["id"]
    ]
