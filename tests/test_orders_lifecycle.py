"""The production-order lifecycle with exact stock, reservations and cost at each step."""

import httpx

from tests.helpers import ok, problem, receive, totals
from tests.order_helpers import (
    act,
    assert_cost_balances,
    bicycle,
    create_order,
    requirement,
)


async def test_bicycle_from_release_to_completion(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    frame, wheel, bolt, bike = b["frame"]["id"], b["wheel"]["id"], b["bolt"]["id"], b["bike"]["id"]
    order = await create_order(client, bike, 4, reference="SHOP-1001")
    assert order["number"].startswith("MO-") and len(order["number"]) == 9
    assert order["status"] == "planned"
    assert order["bom_id"] == b["bom"]["id"]
    assert [(r["required_quantity"], r["reserved_quantity"]) for r in order["requirements"]] == [
        ("4", "0"),
        ("8", "0"),
        ("33.6", "0"),
    ]
    assert order["operations"][0]["planned_minutes"] == "120"
    assert (await totals(client, bike))["incoming"] == "4"

    order = ok(await act(client, order, "release"))
    assert order["status"] == "released" and order["released_at"]
    assert [r["reserved_quantity"] for r in order["requirements"]] == ["4", "8", "33.6"]
    assert (await totals(client, bolt))["available"] == "66.4"
    assert (await totals(client, bolt))["reserved"] == "33.6"

    order = ok(await act(client, order, "start"))
    assert order["status"] == "in_progress"

    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    assert order["produced_quantity"] == "1"
    assert order["material_cost"] == "75.84"  # 50 + 2 × 12.5 + 8.4 × 0.1
    assert order["unit_cost"] == "75.84"
    assert requirement(order, frame)["consumed_quantity"] == "1"
    assert requirement(order, frame)["reserved_quantity"] == "3"
    assert requirement(order, bolt)["reserved_quantity"] == "25.2"
    assert (await totals(client, bike))["on_hand"] == "1"
    assert (await totals(client, bolt))["on_hand"] == "91.6"

    order = ok(await act(client, order, "scrap", {"quantity": 1, "reason": "bent frame"}))
    assert order["scrapped_quantity"] == "1"
    assert order["scrap_value"] == "75.84"
    assert (await totals(client, bike))["on_hand"] == "1"  # nothing received for scrap

    order = ok(await act(client, order, "complete"))
    assert order["status"] == "completed" and order["completed_at"]
    assert order["produced_quantity"] == "3"
    assert order["material_cost"] == "303.36"
    assert order["output_value"] == "227.52"
    assert order["unit_cost"] == "75.84"
    assert [r["reserved_quantity"] for r in order["requirements"]] == ["0", "0", "0"]
    assert [r["consumed_quantity"] for r in order["requirements"]] == ["4", "8", "33.6"]
    assert order["allowed_actions"] == []
    assert [h["action"] for h in order["history"]] == [
        "create",
        "release",
        "start",
        "output",
        "scrap",
        "complete",
    ]

    stock = await totals(client, bike)
    assert (stock["on_hand"], stock["value"], stock["average_cost"], stock["incoming"]) == (
        "3",
        "227.52",
        "75.84",
        "0",
    )
    for component, on_hand in ((frame, "6"), (wheel, "12"), (bolt, "66.4")):
        got = await totals(client, component)
        assert (got["on_hand"], got["reserved"]) == (on_hand, "0")
    await assert_cost_balances(client, order["id"])


async def test_manual_issue_is_shared_over_the_units(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    paint = ok(
        await client.post(
            "/v1/items", json={"sku": f"PAINT-{b['bike']['sku']}", "name": "Paint", "uom": "l"}
        ),
        201,
    )
    await receive(client, paint["id"], 10, unit_cost="4")
    order = await create_order(client, b["bike"]["id"], 4)
    order = ok(await act(client, order, "release"))
    order = ok(await act(client, order, "start"))
    order = ok(
        await act(
            client, order, "consumptions", {"lines": [{"item_id": paint["id"], "quantity": "2"}]}
        )
    )
    extra = requirement(order, paint["id"])
    assert (extra["in_bom"], extra["consumed_quantity"], extra["required_quantity"]) == (
        False,
        "2",
        "0",
    )
    assert order["material_cost"] == "8"
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    assert order["output_value"] == "77.84"  # 75.84 backflushed + 8 × 1/4
    order = ok(await act(client, order, "complete", {"output_quantity": 3}))
    assert order["material_cost"] == "311.36"
    assert order["output_value"] == "311.36"
    assert order["unit_cost"] == "77.84"
    await assert_cost_balances(client, order["id"])


async def test_release_refuses_and_reserves_nothing_when_short(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    order = await create_order(client, b["bike"]["id"], 11)  # frames and wheels are short
    body = problem(await act(client, order, "release"), 409, "insufficient_stock")
    assert body["shortages"] == [
        {
            "item_id": b["frame"]["id"],
            "location_id": order["location_id"],
            "lot_code": None,
            "required": "11",
            "available": "10",
            "shortage": "1",
        },
        {
            "item_id": b["wheel"]["id"],
            "location_id": order["location_id"],
            "lot_code": None,
            "required": "22",
            "available": "20",
            "shortage": "2",
        },
    ]
    for part in ("frame", "wheel", "bolt"):
        assert (await totals(client, b[part]["id"]))["reserved"] == "0"
    again = ok(await client.get(f"/v1/production-orders/{order['id']}"))
    assert again["status"] == "planned" and again["version"] == order["version"]

    order = ok(await act(client, order, "release", {"allow_shortage": True}))
    assert [r["reserved_quantity"] for r in order["requirements"]] == ["10", "20", "92.4"]
    await receive(client, b["frame"]["id"], 5, unit_cost="50")
    order = ok(await act(client, order, "reserve"))
    assert requirement(order, b["frame"]["id"])["reserved_quantity"] == "11"
    assert requirement(order, b["wheel"]["id"])["reserved_quantity"] == "20"
    assert (await totals(client, b["frame"]["id"]))["available"] == "4"


async def test_unrelease_and_cancel_free_reservations(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    order = await create_order(client, b["bike"]["id"], 2)
    order = ok(await act(client, order, "release"))
    assert (await totals(client, b["wheel"]["id"]))["reserved"] == "4"
    order = ok(await act(client, order, "unrelease"))
    assert order["status"] == "planned"
    assert (await totals(client, b["wheel"]["id"]))["reserved"] == "0"
    order = ok(await act(client, order, "release"))
    order = ok(await act(client, order, "cancel", {"reason": "customer cancelled"}))
    assert order["status"] == "cancelled" and order["cancelled_at"]
    assert (await totals(client, b["wheel"]["id"]))["reserved"] == "0"
    assert (await totals(client, b["bike"]["id"]))["incoming"] == "0"
