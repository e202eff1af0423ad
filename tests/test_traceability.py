"""Lots and traceability: a recall from a flour lot to the bread lots and the webshop
orders it ended up in, and back from a bread lot to the flour in it."""

from typing import Any

import httpx

from tests.helpers import create_item, ok, problem, receive, unique
from tests.order_helpers import act, create_bom, create_order


async def _make(
    client: httpx.AsyncClient,
    product: dict[str, Any],
    quantity: int,
    outputs: list[tuple[int, str]],
    reference: str | None = None,
) -> dict[str, Any]:
    """An order run from release to completion, its output reported in the lots given."""
    order = await create_order(client, product["id"], quantity, reference=reference)
    ok(await act(client, order, "release"))
    ok(await act(client, order, "start"))
    *partial, (last_quantity, last_lot) = outputs
    for output_quantity, lot in partial:
        ok(await act(client, order, "outputs", {"quantity": output_quantity, "lot_code": lot}))
    return ok(  # type: ignore[no-any-return]
        await act(
            client, order, "complete", {"output_quantity": last_quantity, "lot_code": last_lot}
        )
    )


async def _lot(client: httpx.AsyncClient, item: dict[str, Any], code: str) -> dict[str, Any]:
    page = ok(await client.get("/v1/lots", params={"item_id": item["id"], "code": code}))
    assert len(page["data"]) == 1, page
    return page["data"][0]  # type: ignore[no-any-return]


async def _trace(client: httpx.AsyncClient, lot: dict[str, Any], direction: str) -> Any:
    return ok(await client.get(f"/v1/lots/{lot['id']}/trace", params={"direction": direction}))


async def bakery(client: httpx.AsyncClient) -> dict[str, Any]:
    """Flour lots F1 and F3 made into dough lots D1 and D2; D1 into bread lots B1 (order
    WEB-1 of the webshop), B2 and B3 (order WEB-2), D2 into B4 (WEB-3). F2 is unused."""
    flour = await create_item(client, name="Flour", uom="kg", tracking="lot")
    dough = await create_item(client, name="Dough", uom="kg", tracking="lot")
    bread = await create_item(client, name="Bread", tracking="lot")
    await receive(client, flour["id"], 10, lot_code="F1", expiry_date="2030-01-01", unit_cost="1")
    await receive(client, flour["id"], 20, lot_code="F2", expiry_date="2030-06-01", unit_cost="1")
    await receive(client, flour["id"], 4, lot_code="F3", expiry_date="2030-02-01", unit_cost="1")
    await create_bom(client, dough["id"], [(flour["id"], 1)])
    await create_bom(client, bread["id"], [(dough["id"], 1)])
    refs = [unique("WEB") for _ in range(3)]
    orders = {
        "D1": await _make(client, dough, 10, [(10, "D1")]),  # all of F1, by FEFO
        "D2": await _make(client, dough, 4, [(4, "D2")]),  # F3 expires before F2
        "B1": await _make(client, bread, 5, [(5, "B1")], refs[0]),
        "B23": await _make(client, bread, 5, [(2, "B2"), (3, "B3")], refs[1]),
        "B4": await _make(client, bread, 4, [(4, "B4")], refs[2]),
    }
    lots = {code: await _lot(client, flour, code) for code in ("F1", "F2", "F3")}
    lots |= {code: await _lot(client, dough, code) for code in ("D1", "D2")}
    lots |= {code: await _lot(client, bread, code) for code in ("B1", "B2", "B3", "B4")}
    return {"flour": flour, "dough": dough, "bread": bread, "orders": orders, "lots": lots}


async def test_forward_trace_from_a_flour_lot_finds_every_bread_lot_and_its_order(
    client: httpx.AsyncClient,
) -> None:
    b = await bakery(client)
    lots, orders = b["lots"], b["orders"]
    trace = await _trace(client, lots["F1"], "forward")
    assert trace["lot"]["id"] == lots["F1"]["id"] and trace["direction"] == "forward"
    found = {(row["code"], row["level"]): row for row in trace["data"]}
    assert sorted(found) == [("B1", 2), ("B2", 2), ("B3", 2), ("D1", 1)]

    dough = found[("D1", 1)]
    assert dough["lot_id"] == lots["D1"]["id"]
    assert dough["item_id"] == b["dough"]["id"]
    assert dough["via_lot_id"] == lots["F1"]["id"]
    assert dough["production_order_id"] == orders["D1"]["id"]
    assert dough["production_order_number"] == orders["D1"]["number"]
    for code, order in (("B1", "B1"), ("B2", "B23"), ("B3", "B23")):
        row = found[(code, 2)]
        assert row["lot_id"] == lots[code]["id"]
        assert row["item_id"] == b["bread"]["id"]
        assert row["via_lot_id"] == lots["D1"]["id"]
        assert row["production_order_id"] == orders[order]["id"]
        assert row["production_order_number"] == orders[order]["number"]
        assert row["production_order_status"] == "completed"
        assert row["reference"] == orders[order]["reference"]
    # Sorted by level, then order number.
    assert [r["level"] for r in trace["data"]] == [1, 2, 2, 2]

    other = await _trace(client, lots["F3"], "forward")
    assert [(r["code"], r["reference"]) for r in other["data"]] == [
        ("D2", None),
        ("B4", orders["B4"]["reference"]),
    ]
    assert (await _trace(client, lots["F2"], "forward"))["data"] == []
    assert (await _trace(client, lots["B1"], "forward"))["data"] == []


async def test_backward_trace_from_a_bread_lot_finds_exactly_its_dough_and_flour(
    client: httpx.AsyncClient,
) -> None:
    b = await bakery(client)
    lots, orders = b["lots"], b["orders"]
    trace = await _trace(client, lots["B2"], "backward")
    rows = [
        (r["lot_id"], r["level"], r["via_lot_id"], r["production_order_id"]) for r in trace["data"]
    ]
    # Level 1: the dough the bread order consumed; level 2: the flour in that dough.
    assert rows == [
        (lots["D1"]["id"], 1, lots["B2"]["id"], orders["B23"]["id"]),
        (lots["F1"]["id"], 2, lots["D1"]["id"], orders["D1"]["id"]),
    ]
    assert [r["code"] for r in (await _trace(client, lots["B4"], "backward"))["data"]] == [
        "D2",
        "F3",
    ]
    assert (await _trace(client, lots["F1"], "backward"))["data"] == []


async def test_lots_list_shows_on_hand_and_filters(client: httpx.AsyncClient) -> None:
    b = await bakery(client)
    flour_lots = ok(await client.get("/v1/lots", params={"item_id": b["flour"]["id"]}))
    assert flour_lots["next_cursor"] is None
    assert [(lot["code"], lot["on_hand"]) for lot in flour_lots["data"]] == [
        ("F1", "0"),
        ("F2", "20"),
        ("F3", "0"),
    ]
    assert flour_lots["data"][1]["expiry_date"] == "2030-06-01"
    first = ok(await client.get("/v1/lots", params={"item_id": b["bread"]["id"], "limit": 2}))
    rest = ok(
        await client.get(
            "/v1/lots",
            params={"item_id": b["bread"]["id"], "limit": 2, "cursor": first["next_cursor"]},
        )
    )
    assert [lot["code"] for lot in first["data"] + rest["data"]] == ["B1", "B2", "B3", "B4"]
    assert rest["next_cursor"] is None
    one = ok(await client.get(f"/v1/lots/{b['lots']['B3']['id']}"))
    assert one == {**b["lots"]["B3"], "on_hand": "3"}


async def test_unknown_lots_and_bad_directions_are_refused(client: httpx.AsyncClient) -> None:
    problem(await client.get("/v1/lots/not-a-lot"), 404, "not_found")
    missing = "01900000-0000-7000-8000-000000000000"
    problem(await client.get(f"/v1/lots/{missing}/trace"), 404, "not_found")
    item = await create_item(client, tracking="lot")
    await receive(client, item["id"], 1, lot_code="L1")
    lot = await _lot(client, item, "L1")
    problem(
        await client.get(f"/v1/lots/{lot['id']}/trace", params={"direction": "sideways"}),
        422,
        "validation_error",
    )
    problem(await client.get("/v1/lots", params={"code": "bad code!"}), 422, "validation_error")
