"""Unbuild orders (SPEC §9): finished goods taken apart, their components back, the
values exact, and the lot trace following the unbuild both ways; both databases."""

from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import create_item, movements, ok, problem, receive, totals
from tests.order_helpers import act, create_bom, create_order

D = Decimal
UNBUILDS = "/v1/unbuild-orders"


async def _lot(client: httpx.AsyncClient, item: dict[str, Any], code: str) -> dict[str, Any]:
    page = ok(await client.get("/v1/lots", params={"item_id": item["id"], "code": code}))
    return page["data"][0]  # type: ignore[no-any-return]


async def _gearboxes(client: httpx.AsyncClient) -> dict[str, Any]:
    """Three gearboxes (lot G-1) from a shaft of lot S-1 and a housing each, with half
    an offcut per gearbox as a by-product; costs that thirds do not divide."""
    gearbox = await create_item(client, name="Gearbox", tracking="lot")
    shaft = await create_item(client, name="Shaft", tracking="lot")
    housing = await create_item(client, name="Housing")
    offcut = await create_item(client, name="Offcut")
    await receive(client, shaft["id"], 10, lot_code="S-1", unit_cost="2.00")
    await receive(client, housing["id"], 10, unit_cost="1.333333")
    await receive(client, offcut["id"], 1, unit_cost="0.10")  # its average is known
    await create_bom(
        client,
        gearbox["id"],
        [(shaft["id"], 1), (housing["id"], 1)],
        by_products=[{"item_id": offcut["id"], "quantity": "0.5"}],
    )
    order = await create_order(client, gearbox["id"], 3)
    order = ok(await act(client, ok(await act(client, order, "release")), "start"))
    order = ok(await act(client, order, "complete", {"lot_code": "G-1"}))
    assert order["status"] == "completed" and D(order["produced_quantity"]) == 3
    return {
        "gearbox": gearbox,
        "shaft": shaft,
        "housing": housing,
        "offcut": offcut,
        "order": order,
    }


async def test_unbuilding_an_orders_unit_brings_back_its_lots_at_exact_values(
    client: httpx.AsyncClient,
) -> None:
    g = await _gearboxes(client)
    gearbox_before = await totals(client, g["gearbox"]["id"])
    offcut_before = await totals(client, g["offcut"]["id"])
    body = {
        "item_id": g["gearbox"]["id"],
        "quantity": "1",
        "lot_code": "G-1",
        "production_order_id": g["order"]["id"],
        "reason": "returned by customer",
    }
    unbuild = ok(await client.post(UNBUILDS, json=body), 201)
    moves = {(m["type"], m["item_id"]): m for m in unbuild["movements"]}
    assert sorted(t for t, _ in moves) == ["disassembly", "disassembly", "recovery", "recovery"]
    goods = moves[("disassembly", g["gearbox"]["id"])]
    offcut = moves[("disassembly", g["offcut"]["id"])]
    shaft = moves[("recovery", g["shaft"]["id"])]
    housing = moves[("recovery", g["housing"]["id"])]
    assert (D(goods["quantity"]), goods["lot_code"]) == (-1, "G-1")
    assert D(offcut["quantity"]) == D("-0.5")  # the by-product taken back out
    assert (D(shaft["quantity"]), shaft["lot_code"]) == (1, "S-1")
    assert (D(housing["quantity"]), housing["lot_code"]) == (1, None)
    # The goods leave at their average cost (a third of the lot's value), rounded.
    average = D(gearbox_before["value"]) / 3
    assert abs(-D(goods["value"]) - average) <= D("0.000001")
    out = -(D(goods["value"]) + D(offcut["value"]))
    assert D(unbuild["value"]) == out
    # Σ out == Σ in to the millionth; shares follow what the order paid (2.00 : 1.333333).
    assert D(shaft["value"]) + D(housing["value"]) == out
    weight = D("2.00") / (D("2.00") + D("1.333333"))  # what the order paid per unit
    assert D(shaft["value"]) == (out * weight).quantize(D("0.000001"))
    assert all(m["unbuild_order_id"] == unbuild["id"] for m in unbuild["movements"])
    assert all(m["production_order_id"] is None for m in unbuild["movements"])
    assert D((await totals(client, g["gearbox"]["id"]))["on_hand"]) == 2
    assert D((await totals(client, g["offcut"]["id"]))["on_hand"]) == D(
        offcut_before["on_hand"]
    ) - D("0.5")
    for item in ("gearbox", "shaft", "housing", "offcut"):
        stock = await totals(client, g[item]["id"])
        assert D(stock["value"]) == sum(
            D(m["value"]) for m in await movements(client, item_id=g[item]["id"])
        )
    assert ok(await client.get(f"{UNBUILDS}/{unbuild['id']}")) == unbuild
    listed = ok(await client.get(UNBUILDS, params={"item_id": g["gearbox"]["id"]}))["data"]
    assert [u["id"] for u in listed] == [unbuild["id"]]


async def test_the_lot_trace_follows_an_unbuild_both_ways(client: httpx.AsyncClient) -> None:
    g = await _gearboxes(client)
    body = {
        "item_id": g["gearbox"]["id"],
        "quantity": "2",
        "lot_code": "G-1",
        "production_order_id": g["order"]["id"],
    }
    unbuild = ok(await client.post(UNBUILDS, json=body), 201)
    gear_lot, shaft_lot = (
        await _lot(client, g["gearbox"], "G-1"),
        await _lot(client, g["shaft"], "S-1"),
    )
    forward = ok(
        await client.get(f"/v1/lots/{gear_lot['id']}/trace", params={"direction": "forward"})
    )["data"]
    links = [
        (r["code"], r["level"], r["unbuild_order_id"], r["production_order_id"]) for r in forward
    ]
    # S-1 came out of G-1 by the unbuild; and S-1, in turn, had gone into G-1 by the order.
    assert links == [("S-1", 1, unbuild["id"], None), ("G-1", 2, None, g["order"]["id"])]
    backward = ok(
        await client.get(f"/v1/lots/{shaft_lot['id']}/trace", params={"direction": "backward"})
    )["data"]
    assert (
        "G-1",
        1,
        unbuild["id"],
        None,
    ) in [
        (r["code"], r["level"], r["unbuild_order_id"], r["production_order_id"]) for r in backward
    ]
    # The shaft lot still leads forward to the gearboxes made of it, through the order.
    made = ok(
        await client.get(f"/v1/lots/{shaft_lot['id']}/trace", params={"direction": "forward"})
    )["data"]
    assert ("G-1", g["order"]["id"]) in [(r["code"], r["production_order_id"]) for r in made]


async def test_without_an_order_the_default_bom_is_reversed(client: httpx.AsyncClient) -> None:
    stool = await create_item(client, name="Stool")
    leg = await create_item(client, name="Leg")
    seat = await create_item(client, name="Seat")
    await receive(client, stool["id"], 3, unit_cost="10")
    await create_bom(client, stool["id"], [(leg["id"], 3), (seat["id"], 1)], output_quantity=1)
    unbuild = ok(await client.post(UNBUILDS, json={"item_id": stool["id"], "quantity": 2}), 201)
    assert unbuild["production_order_id"] is None and unbuild["bom_id"] is not None
    back = {m["item_id"]: m for m in unbuild["movements"] if m["type"] == "recovery"}
    assert D(back[leg["id"]]["quantity"]) == 6 and D(back[seat["id"]]["quantity"]) == 2
    assert D(unbuild["value"]) == 20
    assert sum(D(m["value"]) for m in back.values()) == 20
    assert D((await totals(client, stool["id"]))["on_hand"]) == 1


async def test_unbuilding_more_than_there_is_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    g = await _gearboxes(client)
    before = [await totals(client, g[k]["id"]) for k in ("gearbox", "shaft", "housing")]
    body = {
        "item_id": g["gearbox"]["id"],
        "quantity": "4",
        "lot_code": "G-1",
        "production_order_id": g["order"]["id"],
    }
    problem(await client.post(UNBUILDS, json=body), 422, "validation_error")  # made 3
    shelf = await create_item(client, name="Shelf")
    board = await create_item(client, name="Board")
    await create_bom(client, shelf["id"], [(board["id"], 2)])
    await receive(client, shelf["id"], 1, unit_cost="5")
    problem(
        await client.post(UNBUILDS, json={"item_id": shelf["id"], "quantity": 2}),
        409,
        "insufficient_stock",
    )
    # A lot-tracked component needs the order its lots come from.
    problem(
        await client.post(
            UNBUILDS, json={"item_id": g["gearbox"]["id"], "quantity": 1, "lot_code": "G-1"}
        ),
        422,
        "validation_error",
    )
    problem(
        await client.post(UNBUILDS, json={"item_id": g["gearbox"]["id"], "quantity": 1}),
        422,
        "validation_error",
    )
    after = [await totals(client, g[k]["id"]) for k in ("gearbox", "shaft", "housing")]
    assert after == before
    assert D((await totals(client, board["id"]))["on_hand"]) == 0
    assert ok(await client.get(UNBUILDS, params={"item_id": shelf["id"]}))["data"] == []
