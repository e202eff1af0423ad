"""Purchase orders (SPEC §10): create, receive in parts at the line's cost, cancel,
incoming supply in the item's totals, in availability and in MRP, and firming a
plan's purchases into purchase orders per supplier."""

import uuid
from typing import Any

import httpx

from tests.helpers import create_item, movements, ok, problem, receive, totals, unique, walk
from tests.order_helpers import create_bom, create_order
from tests.test_planning import create_plan, firm, plan_out, run


async def create_po(
    client: httpx.AsyncClient,
    *lines: tuple[dict[str, Any], Any, Any, str],
    supplier: str = "Beech & Co",
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "supplier": supplier,
        "lines": [
            {"item_id": item["id"], "quantity": q, "unit_cost": c, "due_date": d}
            for item, q, c, d in lines
        ],
        **fields,
    }
    return ok(await client.post("/v1/purchase-orders", json=body), 201)  # type: ignore[no-any-return]


async def receive_po(
    client: httpx.AsyncClient, po: dict[str, Any], *lines: tuple[int, Any], **fields: Any
) -> httpx.Response:
    body = {"lines": [{"line_id": po["lines"][n]["id"], "quantity": q, **fields} for n, q in lines]}
    return await client.post(f"/v1/purchase-orders/{po['id']}/receipts", json=body)


async def get_po(client: httpx.AsyncClient, po: dict[str, Any]) -> dict[str, Any]:
    return ok(await client.get(f"/v1/purchase-orders/{po['id']}"))  # type: ignore[no-any-return]


async def test_a_purchase_order_is_created_open_with_a_number_and_its_lines(
    client: httpx.AsyncClient,
) -> None:
    blank = await create_item(client, name="Leg blank")
    po = await create_po(client, (blank, 10, "2.5", "2040-01-10"), reference="conf-77")
    assert po["status"] == "open" and po["allowed_actions"] == ["receive", "cancel"]
    assert po["number"].startswith("PO-") and po["supplier"] == "Beech & Co"
    assert po["reference"] == "conf-77" and po["version"] == 1
    [line] = po["lines"]
    assert (line["quantity"], line["unit_cost"], line["due_date"]) == ("10", "2.5", "2040-01-10")
    assert (line["received_quantity"], line["remaining_quantity"]) == ("0", "10")
    assert await get_po(client, po) == po
    again = await create_po(client, (blank, 1, "1", "2040-01-10"))
    assert int(again["number"][3:]) > int(po["number"][3:])


async def test_a_partial_receipt_at_the_line_cost_moves_the_average_exactly(
    client: httpx.AsyncClient,
) -> None:
    blank = await create_item(client, name="Leg blank")
    await receive(client, blank["id"], 3, unit_cost="1")  # value 3
    po = await create_po(client, (blank, 10, "2.333333", "2040-01-10"))

    after = ok(await receive_po(client, po, (0, 4)))

    assert after["status"] == "open" and after["version"] == 2
    assert after["lines"][0]["received_quantity"] == "4"
    assert after["lines"][0]["remaining_quantity"] == "6"
    stock = await totals(client, blank["id"])
    # 3 × 1 + 4 × 2.333333 = 12.333332 over 7 units: 1.761904571… → 1.761905
    assert stock["on_hand"] == "7" and stock["value"] == "12.333332"
    assert stock["average_cost"] == "1.761905"
    [receipt] = await movements(client, purchase_order_id=po["id"])
    assert receipt["type"] == "receipt" and receipt["purchase_order_id"] == po["id"]
    assert (receipt["quantity"], receipt["unit_cost"], receipt["value"]) == (
        "4",
        "2.333333",
        "9.333332",
    )
    assert receipt["reference"] == po["number"]


async def test_receiving_beyond_the_quantity_is_allowed_and_the_order_is_received(
    client: httpx.AsyncClient,
) -> None:
    top = await create_item(client, name="Table top")
    leg = await create_item(client, name="Leg")
    po = await create_po(client, (top, 2, "40", "2040-01-10"), (leg, 8, "3", "2040-01-12"))
    # The first line in full and beyond; the second in two parts.
    first = ok(await receive_po(client, po, (0, 3), (1, 5)))
    assert first["status"] == "open" and first["received_at"] is None
    assert [li["received_quantity"] for li in first["lines"]] == ["3", "5"]
    assert [li["remaining_quantity"] for li in first["lines"]] == ["0", "3"]
    done = ok(await receive_po(client, po, (1, 3)))
    assert done["status"] == "received" and done["received_at"] is not None
    assert done["allowed_actions"] == []
    assert (await totals(client, top["id"]))["on_hand"] == "3"
    assert (await totals(client, leg["id"]))["on_hand"] == "8"
    # A received order takes no more receipts, nor a cancel.
    refused = problem(await receive_po(client, po, (0, 1)), 409, "invalid_transition")
    assert refused["current_status"] == "received" and refused["allowed_actions"] == []
    problem(await client.post(f"/v1/purchase-orders/{po['id']}/cancel"), 409, "invalid_transition")
    assert (await totals(client, top["id"]))["on_hand"] == "3"


async def test_cancel_after_a_receipt_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    blank = await create_item(client, name="Leg blank")
    po = await create_po(client, (blank, 10, "2", "2040-01-10"))
    received = ok(await receive_po(client, po, (0, 1)))
    problem(await client.post(f"/v1/purchase-orders/{po['id']}/cancel"), 409, "conflict")
    assert await get_po(client, po) == received
    stock = await totals(client, blank["id"])
    assert (stock["on_hand"], stock["incoming"]) == ("1", "9")


async def test_a_cancelled_order_takes_no_receipts(client: httpx.AsyncClient) -> None:
    blank = await create_item(client, name="Leg blank")
    po = await create_po(client, (blank, 10, "2", "2040-01-10"))
    cancelled = ok(await client.post(f"/v1/purchase-orders/{po['id']}/cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert cancelled["lines"][0]["remaining_quantity"] == "0"
    refused = problem(await receive_po(client, po, (0, 1)), 409, "invalid_transition")
    assert refused["current_status"] == "cancelled"
    assert (await totals(client, blank["id"]))["on_hand"] == "0"


async def test_incoming_and_availability_count_open_lines_until_received_or_cancelled(
    client: httpx.AsyncClient,
) -> None:
    part = await create_item(client, name="Part")
    product = await create_item(client, name="Product")
    await create_bom(client, product["id"], [(part["id"], 1)])
    order = await create_order(client, product["id"], 5)
    late = await create_po(client, (part, 4, "1", "2040-02-01"))
    early = await create_po(client, (part, 3, "1", "2040-01-15"))
    assert (await totals(client, part["id"]))["incoming"] == "7"

    async def incoming(shortage: str = "5") -> list[tuple[str, str, str]]:
        body = ok(await client.get(f"/v1/production-orders/{order['id']}/availability"))
        [component] = body["components"]
        assert component["shortage"] == shortage  # incoming supply is no stock yet
        return [
            (i["purchase_order_id"], i["due_date"], i["quantity"]) for i in component["incoming"]
        ]

    assert await incoming() == [
        (early["id"], "2040-01-15", "3"),
        (late["id"], "2040-02-01", "4"),
    ]
    ok(await receive_po(client, late, (0, 1)))
    assert (await totals(client, part["id"]))["incoming"] == "6"
    assert await incoming("4") == [
        (early["id"], "2040-01-15", "3"),
        (late["id"], "2040-02-01", "3"),
    ]
    ok(await client.post(f"/v1/purchase-orders/{early['id']}/cancel"))
    ok(await receive_po(client, late, (0, 5)))  # over-received: nothing more to come
    assert (await totals(client, part["id"]))["incoming"] == "0"
    assert await incoming("0") == []


async def test_mrp_nets_an_open_purchase_order_as_a_scheduled_receipt(
    client: httpx.AsyncClient,
) -> None:
    top = await create_item(client, name="Table top", lead_time_days=10)
    table = await create_item(client, name="Table", lead_time_days=2)
    await create_bom(client, table["id"], [(top["id"], 1)])
    plan = await create_plan(client, (table, 3, "2040-04-15"))
    before = await run(client, plan)
    assert [(p["kind"], p["quantity"]) for p in before["proposals"] if p["item_id"] == top["id"]]
    assert [
        (p["kind"], p["quantity"]) for p in before["proposals"] if p["item_id"] == top["id"]
    ] == [("purchase", "3")]

    # Due before the tables start (the 13th): it covers the shortfall, nothing to buy.
    po = await create_po(client, (top, 3, "40", "2040-04-10"))
    covered = await run(client, plan)
    assert [p["item_id"] for p in covered["proposals"]] == [table["id"]]
    # Due too late (after the 13th), it covers nothing on the day: buy again.
    ok(await client.post(f"/v1/purchase-orders/{po['id']}/cancel"))
    await create_po(client, (top, 3, "40", "2040-04-14"))
    late = await run(client, plan)
    assert [(p["kind"], p["quantity"]) for p in late["proposals"] if p["item_id"] == top["id"]] == [
        ("purchase", "3")
    ]


async def test_firm_with_purchases_makes_one_purchase_order_per_supplier(
    client: httpx.AsyncClient,
) -> None:
    oak, pine = unique("Oak Ltd"), unique("Pine Ltd")
    top = await create_item(client, name="Top", default_supplier=oak, standard_cost="40")
    leg = await create_item(client, name="Leg", default_supplier=pine)
    glue = await create_item(client, name="Glue")  # no supplier, no cost
    screw = await create_item(client, name="Screw", default_supplier=oak)
    await receive(client, screw["id"], 1, unit_cost="0.25")  # an average cost: 0.25
    table = await create_item(client, name="Table", lead_time_days=2)
    lines = [(top["id"], 1), (leg["id"], 4), (glue["id"], "0.1"), (screw["id"], 9)]
    await create_bom(client, table["id"], lines)
    plan = await create_plan(client, (table, 2, "2040-04-15"), name=unique("April"))
    await run(client, plan)

    firmed = plan_out(
        await client.post(f"/v1/production-plans/{plan['id']}/firm", json={"purchases": True})
    )

    bought = {p["item_id"]: p for p in firmed["proposals"] if p["kind"] == "purchase"}
    assert set(bought) == {top["id"], leg["id"], glue["id"], screw["id"]}
    assert all(p["purchase_order_id"] and p["production_order_id"] is None for p in bought.values())
    [made] = [p for p in firmed["proposals"] if p["kind"] == "production"]
    assert made["production_order_id"] and made["purchase_order_id"] is None
    pos = {
        po["supplier"]: po
        for po in ok(
            await client.get("/v1/purchase-orders", params={"status": "open", "limit": 500})
        )["data"]
        if po["production_plan_id"] == plan["id"]
    }
    assert set(pos) == {oak, pine, None}
    assert {bought[i]["purchase_order_id"] for i in (top["id"], screw["id"])} == {pos[oak]["id"]}
    assert bought[leg["id"]]["purchase_order_id"] == pos[pine]["id"]
    assert bought[glue["id"]]["purchase_order_id"] == pos[None]["id"]
    by_item = {li["item_id"]: li for po in pos.values() for li in po["lines"]}
    # Average cost, else standard cost, else 0; the proposal's quantity and due date.
    assert [by_item[i]["unit_cost"] for i in (top["id"], leg["id"], glue["id"], screw["id"])] == [
        "40",
        "0",
        "0",
        "0.25",
    ]
    for item_id, proposal in bought.items():
        line = by_item[item_id]
        assert (line["quantity"], line["due_date"]) == (proposal["quantity"], proposal["due_date"])
    assert all(po["reference"] == plan["name"] for po in pos.values())
    assert plan_out(await client.get(f"/v1/production-plans/{plan['id']}")) == firmed

    # Nothing left to firm; running again proposes no purchase: the orders cover it.
    refused = await client.post(f"/v1/production-plans/{plan['id']}/firm", json={"purchases": True})
    problem(refused, 409, "conflict")
    again = await run(client, plan)
    assert [p for p in again["proposals"] if p["kind"] == "purchase"] == []


async def test_firm_without_purchases_leaves_them_proposals(client: httpx.AsyncClient) -> None:
    top = await create_item(client, name="Top", default_supplier="Oak Ltd")
    table = await create_item(client, name="Table")
    await create_bom(client, table["id"], [(top["id"], 1)])
    plan = await create_plan(client, (table, 1, "2040-04-15"))
    await run(client, plan)
    firmed = await firm(client, plan)
    [bought] = [p for p in firmed["proposals"] if p["kind"] == "purchase"]
    assert bought["purchase_order_id"] is None
    # The purchases are still to firm.
    later = plan_out(
        await client.post(f"/v1/production-plans/{plan['id']}/firm", json={"purchases": True})
    )
    [bought] = [p for p in later["proposals"] if p["kind"] == "purchase"]
    assert bought["purchase_order_id"] is not None


async def test_create_is_idempotent(client: httpx.AsyncClient) -> None:
    blank = await create_item(client, name="Leg blank")
    body = {
        "supplier": "Beech & Co",
        "lines": [
            {"item_id": blank["id"], "quantity": 5, "unit_cost": "2", "due_date": "2040-01-10"}
        ],
    }
    headers = {"Idempotency-Key": unique("po")}
    first = await client.post("/v1/purchase-orders", json=body, headers=headers)
    again = await client.post("/v1/purchase-orders", json=body, headers=headers)
    assert ok(again, 201) == ok(first, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    found = ok(await client.get("/v1/purchase-orders", params={"item_id": blank["id"]}))["data"]
    assert [po["id"] for po in found] == [first.json()["id"]]
    problem(
        await client.post(
            "/v1/purchase-orders", json={**body, "supplier": "Other"}, headers=headers
        ),
        422,
        "idempotency_key_reused",
    )


async def test_a_receipt_is_idempotent(client: httpx.AsyncClient) -> None:
    blank = await create_item(client, name="Leg blank")
    po = await create_po(client, (blank, 5, "2", "2040-01-10"))
    body = {"lines": [{"line_id": po["lines"][0]["id"], "quantity": 2}]}
    headers = {"Idempotency-Key": unique("receipt")}
    path = f"/v1/purchase-orders/{po['id']}/receipts"
    first = ok(await client.post(path, json=body, headers=headers))
    replay = await client.post(path, json=body, headers=headers)
    assert ok(replay) == first and replay.headers["Idempotent-Replayed"] == "true"
    assert (await totals(client, blank["id"]))["on_hand"] == "2"


async def test_lists_filter_by_status_item_and_supplier(client: httpx.AsyncClient) -> None:
    one, two = await create_item(client, name="One"), await create_item(client, name="Two")
    supplier = unique("Supplier")
    a = await create_po(client, (one, 1, "1", "2040-01-10"), supplier=supplier)
    b = await create_po(client, (one, 1, "1", "2040-01-10"), (two, 1, "1", "2040-01-10"))
    c = await create_po(client, (two, 1, "1", "2040-01-10"), supplier=supplier)
    ok(await client.post(f"/v1/purchase-orders/{c['id']}/cancel"))

    async def ids(**params: Any) -> list[str]:
        rows: list[str] = []
        cursor = None
        while True:
            query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = ok(await client.get("/v1/purchase-orders", params=query))
            rows += [po["id"] for po in page["data"]]
            if (cursor := page["next_cursor"]) is None:
                return rows

    assert await ids(item_id=one["id"]) == [a["id"], b["id"]]
    assert await ids(item_id=two["id"]) == [b["id"], c["id"]]
    assert await ids(supplier=supplier) == [a["id"], c["id"]]
    assert await ids(supplier=supplier, status="cancelled") == [c["id"]]
    assert await ids(item_id=two["id"], status="open") == [b["id"]]


async def test_input_is_validated(client: httpx.AsyncClient) -> None:
    blank = await create_item(client, name="Leg blank")
    line = {"item_id": blank["id"], "quantity": 5, "unit_cost": "2", "due_date": "2040-01-10"}

    async def create(**changes: Any) -> httpx.Response:
        body = {"supplier": "Beech & Co", "lines": [{**line, **changes}]}
        return await client.post("/v1/purchase-orders", json=body)

    for changes in ({"quantity": 0}, {"quantity": "-1"}, {"unit_cost": "-1"}, {"due_date": None}):
        problem(await create(**changes), 422, "validation_error")
    unknown = problem(await create(item_id=str(uuid.uuid4())), 422, "validation_error")
    assert unknown["errors"][0]["loc"] == ["body", "lines", 0, "item_id"]
    problem(
        await client.post("/v1/purchase-orders", json={"supplier": "x", "lines": []}),
        422,
        "validation_error",
    )

    po = await create_po(client, (blank, 5, "2", "2040-01-10"))
    other = await create_po(client, (blank, 5, "2", "2040-01-10"))
    path = f"/v1/purchase-orders/{po['id']}/receipts"
    for bad in (
        {"line_id": other["lines"][0]["id"], "quantity": 1},
        {"line_id": str(uuid.uuid4()), "quantity": 1},
    ):
        body = problem(await client.post(path, json={"lines": [bad]}), 422, "validation_error")
        assert body["errors"][0]["loc"] == ["body", "lines", 0, "line_id"]
    zero = {"line_id": po["lines"][0]["id"], "quantity": 0}
    problem(await client.post(path, json={"lines": [zero]}), 422, "validation_error")
    nowhere = {"line_id": po["lines"][0]["id"], "quantity": 1, "location_id": str(uuid.uuid4())}
    body = problem(await client.post(path, json={"lines": [nowhere]}), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "lines", 0, "location_id"]
    assert await get_po(client, po) == po  # nothing was received
    problem(await client.get(f"/v1/purchase-orders/{uuid.uuid4()}"), 404, "not_found")
    problem(await client.get("/v1/purchase-orders/not-an-id"), 404, "not_found")


async def test_lot_and_serial_tracked_lines_are_received_like_stock_receipts(
    client: httpx.AsyncClient,
) -> None:
    flour = await create_item(client, name="Flour", tracking="lot")
    motor = await create_item(client, name="Motor", tracking="serial")
    po = await create_po(client, (flour, 20, "1.5", "2040-01-10"), (motor, 2, "80", "2040-01-10"))
    problem(await receive_po(client, po, (0, 5)), 422, "validation_error")  # no lot
    body = {
        "lines": [
            {
                "line_id": po["lines"][0]["id"],
                "quantity": 5,
                "lot_code": "L-1",
                "expiry_date": "2040-06-01",
            },
            {"line_id": po["lines"][0]["id"], "quantity": 15, "lot_code": "L-2"},
            {"line_id": po["lines"][1]["id"], "quantity": 2, "serials": ["M-1", "M-2"]},
        ]
    }
    done = ok(await client.post(f"/v1/purchase-orders/{po['id']}/receipts", json=body))
    assert done["status"] == "received"
    lots = {m["lot_code"]: m["quantity"] for m in await movements(client, item_id=flour["id"])}
    assert lots == {"L-1": "5", "L-2": "15"}
    assert (await totals(client, motor["id"]))["value"] == "160"


async def test_events_carry_the_purchase_order(client: httpx.AsyncClient) -> None:
    blank = await create_item(client, name="Leg blank")
    po = await create_po(client, (blank, 5, "2", "2040-01-10"))
    partly = ok(await receive_po(client, po, (0, 2)))
    done = ok(await receive_po(client, po, (0, 3)))
    cancelled = await create_po(client, (blank, 1, "2", "2040-01-10"))
    cancelled = ok(await client.post(f"/v1/purchase-orders/{cancelled['id']}/cancel"))
    kinds = ["purchase_order.created", "purchase_order.received", "purchase_order.cancelled"]
    events = await walk(client, "/v1/events", limit=500, types=kinds)
    mine = [
        (e["type"], e["data"]) for e in events if e["data"]["id"] in (po["id"], cancelled["id"])
    ]
    assert mine == [
        ("purchase_order.created", po),
        ("purchase_order.received", partly),
        ("purchase_order.received", done),
        ("purchase_order.created", {**cancelled, **_first_version(cancelled)}),
        ("purchase_order.cancelled", cancelled),
    ]


def _first_version(cancelled: dict[str, Any]) -> dict[str, Any]:
    """The cancelled order as it was created."""
    return {
        "status": "open",
        "allowed_actions": ["receive", "cancel"],
        "version": 1,
        "cancelled_at": None,
        "updated_at": cancelled["created_at"],
        "lines": [{**li, "remaining_quantity": li["quantity"]} for li in cancelled["lines"]],
    }


async def test_an_items_default_supplier_is_set_changed_and_cleared(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client, name="Seat")
    assert item["default_supplier"] is None
    path = f"/v1/items/{item['id']}"
    changed = ok(await client.patch(path, json={"default_supplier": "Oak & Sons"}))
    assert changed["default_supplier"] == "Oak & Sons"
    assert ok(await client.patch(path, json={"default_supplier": None}))["default_supplier"] is None
    problem(await client.patch(path, json={"default_supplier": ""}), 422, "validation_error")
