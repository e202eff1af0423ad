"""Lots and serials in production orders, over-production, and exact order costing."""

from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import (
    assert_ledger_matches_balances,
    balances,
    create_item,
    movements,
    ok,
    problem,
    receive,
    totals,
)
from tests.order_helpers import act, assert_cost_balances, create_order, requirement

ORDERS = "/v1/production-orders"


async def make_bom(
    client: httpx.AsyncClient, product_id: str, *lines: tuple[str, Any, str]
) -> dict[str, Any]:
    """A BOM from ``(component, quantity, consumption)`` lines."""
    body = {
        "item_id": product_id,
        "lines": [
            {"component_item_id": c, "quantity": q, "consumption": how} for c, q, how in lines
        ],
    }
    return ok(await client.post("/v1/boms", json=body), 201)  # type: ignore[no-any-return]


async def started(client: httpx.AsyncClient, product_id: str, quantity: Any) -> dict[str, Any]:
    order = await create_order(client, product_id, quantity)
    order = ok(await act(client, order, "release"))
    return ok(await act(client, order, "start"))  # type: ignore[no-any-return]


def reserved_lots(order: dict[str, Any], item_id: str) -> dict[str | None, str]:
    return {r["lot_code"]: r["quantity"] for r in requirement(order, item_id)["reservations"]}


async def lot_balances(
    client: httpx.AsyncClient, item_id: str
) -> dict[str | None, tuple[str, str]]:
    return {
        b["lot_code"]: (b["on_hand"], b["reserved"])
        for b in await balances(client, item_id=item_id)
    }


async def consumed_lots(
    client: httpx.AsyncClient, order_id: str, item_id: str
) -> dict[str | None, Decimal]:
    per_lot: dict[str | None, Decimal] = defaultdict(Decimal)
    for m in await movements(client, production_order_id=order_id, item_id=item_id):
        if m["type"] == "consumption":
            per_lot[m["lot_code"]] += Decimal(m["quantity"])
    return dict(per_lot)


async def state(client: httpx.AsyncClient, order_id: str, *item_ids: str) -> Any:
    """What a refused request must leave alone: the order, stock totals, the ledger."""
    return (
        ok(await client.get(f"{ORDERS}/{order_id}")),
        [await totals(client, i) for i in item_ids],
        len(await movements(client, production_order_id=order_id)),
    )


async def lotted_component(client: httpx.AsyncClient) -> dict[str, Any]:
    """A lot-tracked component in four lots, received in an order unlike their expiry."""
    item = await create_item(client, name="Resin", tracking="lot")
    for code, quantity, expiry in (
        ("NOEXP", 5, None),
        ("LATE", 5, "2031-01-01"),
        ("EARLY", 3, "2030-01-01"),
        ("MID", 5, "2030-06-01"),
    ):
        extra = {"expiry_date": expiry} if expiry else {}
        await receive(client, item["id"], quantity, unit_cost="2", lot_code=code, **extra)
    return item


# --- lots of components -----------------------------------------------------------


async def test_release_reserves_lots_fefo_and_backflush_consumes_them(
    client: httpx.AsyncClient,
) -> None:
    resin = await lotted_component(client)
    part = await create_item(client, name="Moulded part")
    await make_bom(client, part["id"], (resin["id"], 3, "backflush"))
    order = await create_order(client, part["id"], 2)  # 6 of resin

    order = ok(await act(client, order, "release"))
    assert reserved_lots(order, resin["id"]) == {"EARLY": "3", "MID": "3"}
    assert requirement(order, resin["id"])["reserved_quantity"] == "6"
    assert await lot_balances(client, resin["id"]) == {
        "NOEXP": ("5", "0"),
        "LATE": ("5", "0"),
        "EARLY": ("3", "3"),
        "MID": ("5", "3"),
    }

    order = ok(await act(client, order, "start"))
    order = ok(await act(client, order, "outputs", {"quantity": 2}))
    assert await consumed_lots(client, order["id"], resin["id"]) == {
        "EARLY": Decimal(-3),
        "MID": Decimal(-3),
    }
    assert requirement(order, resin["id"])["consumed_quantity"] == "6"
    assert reserved_lots(order, resin["id"]) == {}
    assert await lot_balances(client, resin["id"]) == {
        "NOEXP": ("5", "0"),
        "LATE": ("5", "0"),
        "EARLY": ("0", "0"),
        "MID": ("2", "0"),
    }
    order = ok(await act(client, order, "complete"))
    assert order["material_cost"] == "12"
    await assert_cost_balances(client, order["id"])
    await assert_ledger_matches_balances(client, resin["id"])


async def test_backflush_takes_the_earliest_expiring_reserved_lot_first(
    client: httpx.AsyncClient,
) -> None:
    """Lot codes sort the other way round from expiry, so only FEFO picks B-EARLY."""
    yeast = await create_item(client, name="Yeast", tracking="lot")
    await receive(
        client, yeast["id"], 3, unit_cost="1", lot_code="A-LATE", expiry_date="2030-09-01"
    )
    await receive(
        client, yeast["id"], 3, unit_cost="1", lot_code="B-EARLY", expiry_date="2030-01-01"
    )
    bread = await create_item(client, name="Bread")
    await make_bom(client, bread["id"], (yeast["id"], 3, "backflush"))
    order = await started(client, bread["id"], 2)
    assert reserved_lots(order, yeast["id"]) == {"A-LATE": "3", "B-EARLY": "3"}

    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    assert await consumed_lots(client, order["id"], yeast["id"]) == {"B-EARLY": Decimal(-3)}
    assert reserved_lots(order, yeast["id"]) == {"A-LATE": "3"}


async def test_manual_consumption_takes_the_named_lot(client: httpx.AsyncClient) -> None:
    resin = await lotted_component(client)
    part = await create_item(client, name="Moulded part")
    await make_bom(client, part["id"], (resin["id"], 3, "manual"))
    order = await started(client, part["id"], 2)
    assert reserved_lots(order, resin["id"]) == {"EARLY": "3", "MID": "3"}

    def line(quantity: Any, lot: str) -> dict[str, Any]:
        return {"lines": [{"item_id": resin["id"], "quantity": quantity, "lot_code": lot}]}

    order = ok(await act(client, order, "consumptions", line(1, "LATE")))  # not reserved
    assert await consumed_lots(client, order["id"], resin["id"]) == {"LATE": Decimal(-1)}
    assert reserved_lots(order, resin["id"]) == {"EARLY": "3", "MID": "3"}
    order = ok(await act(client, order, "consumptions", line(2, "MID")))  # reserved
    assert await consumed_lots(client, order["id"], resin["id"]) == {
        "LATE": Decimal(-1),
        "MID": Decimal(-2),
    }
    assert reserved_lots(order, resin["id"]) == {"EARLY": "3", "MID": "1"}
    assert requirement(order, resin["id"])["consumed_quantity"] == "3"
    assert await lot_balances(client, resin["id"]) == {
        "NOEXP": ("5", "0"),
        "LATE": ("4", "0"),
        "EARLY": ("3", "3"),
        "MID": ("3", "1"),
    }

    before = await state(client, order["id"], resin["id"])
    problem(await act(client, order, "consumptions", line(4, "EARLY")), 409, "insufficient_stock")
    assert await state(client, order["id"], resin["id"]) == before
    for m in await movements(client, production_order_id=order["id"]):
        assert m["lot_code"], m
    await assert_ledger_matches_balances(client, resin["id"])


# --- lots and serials of the finished product ----------------------------------


async def test_lot_tracked_product_needs_a_lot_on_output(client: httpx.AsyncClient) -> None:
    flour = await create_item(client, name="Flour")
    await receive(client, flour["id"], 10, unit_cost="1.5")
    cake = await create_item(client, name="Cake", tracking="lot")
    await make_bom(client, cake["id"], (flour["id"], 1, "backflush"))
    order = await started(client, cake["id"], 2)

    before = await state(client, order["id"], cake["id"], flour["id"])
    body = problem(await act(client, order, "outputs", {"quantity": 1}), 422, "validation_error")
    assert body["errors"][0]["loc"][-1] == "lot_code"
    problem(await act(client, order, "complete"), 422, "validation_error")
    assert await state(client, order["id"], cake["id"], flour["id"]) == before

    order = ok(
        await act(
            client,
            order,
            "outputs",
            {"quantity": 1, "lot_code": "CAKE-1", "expiry_date": "2030-02-01"},
        )
    )
    outputs = await movements(client, production_order_id=order["id"], type="output")
    assert [(m["lot_code"], m["quantity"]) for m in outputs] == [("CAKE-1", "1")]
    order = ok(await act(client, order, "complete", {"lot_code": "CAKE-2"}))
    assert order["produced_quantity"] == "2"
    assert await lot_balances(client, cake["id"]) == {"CAKE-1": ("1", "0"), "CAKE-2": ("1", "0")}
    await assert_cost_balances(client, order["id"])
    await assert_ledger_matches_balances(client, cake["id"])


async def test_serial_tracked_product_needs_one_serial_per_unit(
    client: httpx.AsyncClient,
) -> None:
    chip = await create_item(client, name="Chip")
    await receive(client, chip["id"], 10, unit_cost="4")
    board = await create_item(client, name="Board", tracking="serial")
    await make_bom(client, board["id"], (chip["id"], 1, "backflush"))
    order = await started(client, board["id"], 3)

    before = await state(client, order["id"], board["id"], chip["id"])
    for serials in ([], ["SN-1"], ["SN-1", "SN-2", "SN-3"], ["SN-1", "SN-1"]):
        response = await act(client, order, "outputs", {"quantity": 2, "serials": serials})
        problem(response, 422, "validation_error")
    problem(await act(client, order, "outputs", {"quantity": 2}), 422, "validation_error")
    problem(
        await act(client, order, "outputs", {"quantity": "0.5", "serials": ["SN-1"]}),
        422,
        "validation_error",
    )
    assert await state(client, order["id"], board["id"], chip["id"]) == before

    order = ok(await act(client, order, "outputs", {"quantity": 2, "serials": ["SN-1", "SN-2"]}))
    assert order["produced_quantity"] == "2"
    assert (await totals(client, board["id"]))["on_hand"] == "2"
    before = await state(client, order["id"], board["id"], chip["id"])
    again = await act(client, order, "outputs", {"quantity": 1, "serials": ["SN-2"]})
    assert again.status_code in (409, 422), again.text  # SN-2 is in stock already
    problem(await act(client, order, "complete"), 422, "validation_error")  # 1 unit, no serial
    assert await state(client, order["id"], board["id"], chip["id"]) == before

    order = ok(await act(client, order, "complete", {"serials": ["SN-3"]}))
    assert order["status"] == "completed" and order["produced_quantity"] == "3"
    assert (await totals(client, board["id"]))["on_hand"] == "3"
    await assert_cost_balances(client, order["id"])


# --- over-production and costing -------------------------------------------------


async def test_over_production_backflushes_more_and_needs_the_stock(
    client: httpx.AsyncClient,
) -> None:
    sheet = await create_item(client, name="Sheet")
    await receive(client, sheet["id"], 7, unit_cost="1.5")
    box = await create_item(client, name="Box")
    await make_bom(client, box["id"], (sheet["id"], 2, "backflush"))
    order = await started(client, box["id"], 2)
    assert requirement(order, sheet["id"])["reserved_quantity"] == "4"

    order = ok(await act(client, order, "outputs", {"quantity": 3}))  # one more than ordered
    assert order["produced_quantity"] == "3"
    assert requirement(order, sheet["id"])["consumed_quantity"] == "6"
    assert requirement(order, sheet["id"])["reserved_quantity"] == "0"
    sheets = await totals(client, sheet["id"])
    assert (sheets["on_hand"], sheets["reserved"]) == ("1", "0")

    before = await state(client, order["id"], box["id"], sheet["id"])
    body = problem(await act(client, order, "outputs", {"quantity": 1}), 409, "insufficient_stock")
    assert body["shortages"][0]["item_id"] == sheet["id"]
    assert await state(client, order["id"], box["id"], sheet["id"]) == before

    await receive(client, sheet["id"], 1, unit_cost="1.5")
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    order = ok(await act(client, order, "complete"))  # nothing left to report
    assert (order["status"], order["produced_quantity"]) == ("completed", "4")
    assert requirement(order, sheet["id"])["consumed_quantity"] == "8"
    assert (order["material_cost"], order["output_value"], order["scrap_value"]) == (
        "12",
        "12",
        "0",
    )
    assert order["unit_cost"] == "3"
    boxes = await totals(client, box["id"])
    assert (boxes["on_hand"], boxes["value"], boxes["incoming"]) == ("4", "12", "0")
    assert (await totals(client, sheet["id"]))["on_hand"] == "0"
    await assert_cost_balances(client, order["id"])
    await assert_ledger_matches_balances(client, sheet["id"])


async def glued_chair(client: httpx.AsyncClient) -> dict[str, str]:
    """A chair from one leg set (backflush, 2 each) and one pot of glue (manual, 3 each)."""
    legs = await create_item(client, name="Leg set")
    glue = await create_item(client, name="Glue")
    chair = await create_item(client, name="Chair")
    await receive(client, legs["id"], 10, unit_cost="2")
    await receive(client, glue["id"], 10, unit_cost="3")
    await make_bom(client, chair["id"], (legs["id"], 1, "backflush"), (glue["id"], 1, "manual"))
    return {"legs": legs["id"], "glue": glue["id"], "chair": chair["id"]}


async def test_complete_with_no_final_output_puts_the_rest_on_the_finished_item(
    client: httpx.AsyncClient,
) -> None:
    c = await glued_chair(client)
    order = await started(client, c["chair"], 4)
    glue = {"lines": [{"item_id": c["glue"], "quantity": 4}]}
    order = ok(await act(client, order, "consumptions", glue))
    assert order["material_cost"] == "12"
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    assert order["output_value"] == "5"  # 2 backflushed + 12 × 1/4

    order = ok(await act(client, order, "complete", {"output_quantity": 0}))
    assert (order["status"], order["produced_quantity"]) == ("completed", "1")
    assert (order["material_cost"], order["output_value"], order["scrap_value"]) == (
        "14",
        "14",
        "0",
    )
    assert order["unit_cost"] == "14"
    assert requirement(order, c["legs"])["consumed_quantity"] == "1"
    legs = await totals(client, c["legs"])
    assert (legs["on_hand"], legs["reserved"]) == ("9", "0")
    chairs = await totals(client, c["chair"])
    assert (chairs["on_hand"], chairs["value"]) == ("1", "14")
    balanced = await assert_cost_balances(client, order["id"])
    assert Decimal(balanced["material_cost"]) == Decimal(balanced["output_value"]) + Decimal(
        balanced["scrap_value"]
    )
    await assert_ledger_matches_balances(client, c["chair"])


async def test_complete_with_nothing_produced_writes_the_cost_off(
    client: httpx.AsyncClient,
) -> None:
    c = await glued_chair(client)
    order = await started(client, c["chair"], 2)
    order = ok(
        await act(client, order, "consumptions", {"lines": [{"item_id": c["glue"], "quantity": 2}]})
    )
    order = ok(await act(client, order, "complete", {"output_quantity": 0}))
    assert (order["status"], order["produced_quantity"]) == ("completed", "0")
    assert (order["material_cost"], order["output_value"], order["scrap_value"]) == (
        "6",
        "0",
        "6",
    )
    assert order["unit_cost"] is None
    assert [r["reserved_quantity"] for r in order["requirements"]] == ["0", "0"]
    legs = await totals(client, c["legs"])
    assert (legs["on_hand"], legs["reserved"]) == ("10", "0")  # nothing backflushed
    chairs = await totals(client, c["chair"])
    assert (chairs["on_hand"], chairs["value"], chairs["incoming"]) == ("0", "0", "0")
    await assert_cost_balances(client, order["id"])


async def test_cost_shares_that_do_not_terminate_still_balance_exactly(
    client: httpx.AsyncClient,
) -> None:
    pin = await create_item(client, name="Pin")
    await receive(client, pin["id"], 1, unit_cost="1")
    await receive(client, pin["id"], 2, unit_cost="0")  # 3 pins worth 1: a third each
    oil = await create_item(client, name="Oil")
    await receive(client, oil["id"], 1, unit_cost="1")
    hinge = await create_item(client, name="Hinge")
    await make_bom(client, hinge["id"], (pin["id"], 1, "backflush"))
    order = await started(client, hinge["id"], 3)
    order = ok(
        await act(client, order, "consumptions", {"lines": [{"item_id": oil["id"], "quantity": 1}]})
    )

    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    order = ok(await act(client, order, "complete"))
    assert (order["status"], order["produced_quantity"]) == ("completed", "3")
    assert (order["material_cost"], order["output_value"], order["scrap_value"]) == (
        "2",
        "2",
        "0",
    )
    assert order["unit_cost"] == "0.666667"
    outputs = await movements(client, production_order_id=order["id"], type="output")
    assert sum(Decimal(m["value"]) for m in outputs) == 2
    for m in outputs:
        assert abs(Decimal(m["value"]) - Decimal(2) / 3) < Decimal("0.00001"), m
        assert -Decimal(m["unit_cost"]).as_tuple().exponent <= 6, m  # type: ignore[operator]
    hinges = await totals(client, hinge["id"])
    assert (hinges["on_hand"], hinges["value"]) == ("3", "2")
    pins = await totals(client, pin["id"])
    assert (pins["on_hand"], pins["value"]) == ("0", "0")
    await assert_cost_balances(client, order["id"])
    await assert_ledger_matches_balances(client, pin["id"])
    await assert_ledger_matches_balances(client, hinge["id"])


async def test_items_outside_the_bom_are_consumed_and_recorded(
    client: httpx.AsyncClient,
) -> None:
    c = await glued_chair(client)
    polish = await create_item(client, name="Polish")
    await receive(client, polish["id"], 5, unit_cost="0.8")
    order = await started(client, c["chair"], 2)
    bom_requirements = [dict(r) for r in order["requirements"]]

    for quantity in ("1.5", "0.5"):
        order = ok(
            await act(
                client,
                order,
                "consumptions",
                {"lines": [{"item_id": polish["id"], "quantity": quantity}]},
            )
        )
    extra = requirement(order, polish["id"])
    assert [r["component_item_id"] for r in order["requirements"]].count(polish["id"]) == 1
    assert (
        extra["in_bom"],
        extra["required_quantity"],
        extra["consumed_quantity"],
        extra["reserved_quantity"],
        extra["consumption"],
    ) == (False, "0", "2", "0", "manual")
    assert order["requirements"][:2] == bom_requirements
    assert all(r["in_bom"] for r in bom_requirements)
    assert order["material_cost"] == "1.6"

    problem(
        await act(
            client,
            order,
            "consumptions",
            {"lines": [{"item_id": "0192f0a0-0000-7000-8000-000000000000", "quantity": 1}]},
        ),
        422,
        "validation_error",
    )
    order = ok(
        await act(client, order, "consumptions", {"lines": [{"item_id": c["glue"], "quantity": 2}]})
    )
    order = ok(await act(client, order, "complete"))
    assert requirement(order, polish["id"])["consumed_quantity"] == "2"  # never backflushed
    assert (await totals(client, polish["id"]))["on_hand"] == "3"
    assert order["material_cost"] == "11.6"  # 1.6 polish + 6 glue + 4 legs
    assert order["output_value"] == "11.6" and order["unit_cost"] == "5.8"
    await assert_cost_balances(client, order["id"])
