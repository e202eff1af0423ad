"""Orders that bend without breaking the books (SPEC §9): hold and resume, split,
returns and backorders, on both databases. Every test ends with the suite's
whole-database invariants (tests/invariants.py) as well."""

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.helpers import create_item, ok, problem, receive, totals, walk
from tests.order_helpers import (
    act,
    assert_cost_balances,
    bicycle,
    create_bom,
    create_order,
    requirement,
)

D = Decimal
STOCK_ACTIONS: list[tuple[str, Any]] = [
    ("reserve", None),
    ("unrelease", None),
    ("start", None),
    ("cancel", None),
    ("release", None),
    (
        "consumptions",
        {"lines": [{"item_id": "00000000-0000-0000-0000-000000000000", "quantity": 1}]},
    ),
    ("outputs", {"quantity": 1}),
    ("scrap", {"quantity": 1, "reason": "dropped"}),
    ("complete", None),
    ("returns", {"lines": [{"item_id": "00000000-0000-0000-0000-000000000000", "quantity": 1}]}),
    ("split", {"quantity": 1}),
    ("hold", {"reason": "again"}),
    ("operations/10/start", None),
    ("operations/10/time", {"minutes": 5}),
    ("operations/10/complete", None),
]


def _reservations(order: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return sorted(
        (r["component_item_id"], res["location_id"], res["lot_code"], res["quantity"])
        for r in order["requirements"]
        for res in r["reservations"]
    )


async def _released_bicycle(client: httpx.AsyncClient, quantity: int = 4) -> tuple[dict, dict]:
    kit = await bicycle(client)
    order = await create_order(client, kit["bike"]["id"], quantity)
    return kit, ok(await act(client, order, "release"))


@pytest.mark.parametrize("held_from", ["released", "in_progress"])
async def test_a_held_order_refuses_every_stock_output_and_operation_action(
    client: httpx.AsyncClient, held_from: str
) -> None:
    kit, order = await _released_bicycle(client)
    if held_from == "in_progress":
        order = ok(await act(client, order, "start"))
    before = _reservations(order)
    stock_before = await totals(client, kit["frame"]["id"])
    held = ok(await act(client, order, "hold", {"reason": "press 2 is down"}))
    assert held["status"] == "on_hold" and held["held_from"] == held_from
    assert held["allowed_actions"] == ["update", "availability", "resume"]
    assert held["history"][-1]["action"] == "hold"
    assert held["history"][-1]["details"] == {"reason": "press 2 is down"}
    assert _reservations(held) == before
    for action, body in STOCK_ACTIONS:
        refused = problem(await act(client, held, action, body), 409, "invalid_transition")
        assert refused["current_status"] == "on_hold", action
        assert refused["allowed_actions"] == ["update", "availability", "resume"], action
    assert await totals(client, kit["frame"]["id"]) == stock_before
    resumed = ok(await act(client, held, "resume"))
    assert resumed["status"] == held_from and resumed["held_from"] is None
    assert _reservations(resumed) == before
    assert resumed["released_at"] == order["released_at"]  # back, not entered anew
    assert resumed["started_at"] == order["started_at"]
    assert resumed["version"] == order["version"] + 2


async def test_hold_needs_a_reason_and_an_order_that_runs(client: httpx.AsyncClient) -> None:
    kit = await bicycle(client)
    planned = await create_order(client, kit["bike"]["id"], 1)
    problem(await act(client, planned, "hold", {"reason": "x"}), 409, "invalid_transition")
    problem(await act(client, planned, "resume"), 409, "invalid_transition")
    released = ok(await act(client, planned, "release"))
    problem(await act(client, released, "hold", {}), 422, "validation_error")
    problem(await act(client, released, "hold", {"reason": ""}), 422, "validation_error")


async def test_hold_and_resume_honour_if_match_and_emit_events(client: httpx.AsyncClient) -> None:
    _, order = await _released_bicycle(client, 1)
    path = f"/v1/production-orders/{order['id']}"
    stale = {"If-Match": f'"{order["version"] - 1}"'}
    problem(
        await client.post(f"{path}/hold", json={"reason": "x"}, headers=stale),
        412,
        "precondition_failed",
    )
    current = {"If-Match": f'"{order["version"]}"'}
    held = ok(await client.post(f"{path}/hold", json={"reason": "x"}, headers=current))
    ok(await client.post(f"{path}/resume", headers={"If-Match": f'"{held["version"]}"'}))
    kinds = ["production_order.held", "production_order.resumed"]
    events = await walk(client, "/v1/events", types=kinds)
    mine = [e for e in events if e["data"]["id"] == order["id"]]
    assert [e["type"] for e in mine] == kinds
    assert mine[0]["data"]["status"] == "on_hold" and mine[1]["data"]["status"] == "released"


async def test_a_held_order_is_listed_and_still_counted_as_supply(
    client: httpx.AsyncClient,
) -> None:
    kit, order = await _released_bicycle(client, 3)
    ok(await act(client, order, "hold", {"reason": "x"}))
    listed = ok(
        await client.get(
            "/v1/production-orders", params={"status": "on_hold", "item_id": kit["bike"]["id"]}
        )
    )["data"]
    assert [o["id"] for o in listed] == [order["id"]]
    assert D((await totals(client, kit["bike"]["id"]))["incoming"]) == 3


async def test_split_of_a_released_order_divides_requirements_and_reservations(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    frames_before = await totals(client, kit["frame"]["id"])
    order = await create_order(client, kit["bike"]["id"], 12, reference="WEB-77", priority=5)
    # 10 frames for 12 bicycles: a partial reservation.
    order = ok(await act(client, order, "release", {"allow_shortage": True}))
    assert D(requirement(order, kit["frame"]["id"])["reserved_quantity"]) == 10
    reserved_before = {
        r["component_item_id"]: D(r["reserved_quantity"]) for r in order["requirements"]
    }
    result = ok(await act(client, order, "split", {"quantity": "5"}))
    original, new = result["original"], result["new"]
    assert D(original["quantity"]) == 7 and D(new["quantity"]) == 5
    assert new["status"] == "released" and new["split_from"] == original["id"]
    assert new["released_at"] == original["released_at"]
    assert (new["reference"], new["priority"], new["bom_id"]) == ("WEB-77", 5, order["bom_id"])
    # Requirements recomputed: 1 frame, 2 wheels, 8 bolts + 5 % a bicycle.
    assert D(requirement(original, kit["frame"]["id"])["required_quantity"]) == 7
    assert D(requirement(new, kit["frame"]["id"])["required_quantity"]) == 5
    assert D(requirement(original, kit["bolt"]["id"])["required_quantity"]) == D("58.8")
    assert D(requirement(new, kit["bolt"]["id"])["required_quantity"]) == 42
    # The new order is served first; the rest stays; Σ reserved unchanged.
    assert D(requirement(new, kit["frame"]["id"])["reserved_quantity"]) == 5
    assert D(requirement(original, kit["frame"]["id"])["reserved_quantity"]) == 5
    for item_id, before in reserved_before.items():
        both = D(requirement(original, item_id)["reserved_quantity"]) + D(
            requirement(new, item_id)["reserved_quantity"]
        )
        assert both == before
    assert await totals(client, kit["frame"]["id"]) == {
        **frames_before,
        "reserved": "10",
        "available": "0",
    }
    assert original["history"][-1]["action"] == "split"
    assert [h["action"] for h in new["history"]] == ["create", "split"]
    got = ok(await client.get(f"/v1/production-orders/{new['id']}"))
    assert got == new


async def test_split_of_a_planned_order_and_bad_quantities(client: httpx.AsyncClient) -> None:
    kit = await bicycle(client)
    order = await create_order(client, kit["bike"]["id"], 4)
    for quantity in ("0", "4", "4.5", "-1"):
        problem(await act(client, order, "split", {"quantity": quantity}), 422, "validation_error")
    result = ok(await act(client, order, "split", {"quantity": "1.5"}))
    assert result["new"]["status"] == "planned"
    assert D(result["original"]["quantity"]) + D(result["new"]["quantity"]) == 4
    started = ok(await act(client, ok(await act(client, result["new"], "release")), "start"))
    problem(await act(client, started, "split", {"quantity": "1"}), 409, "invalid_transition")


async def test_returns_leave_the_books_balanced_to_the_cent(client: httpx.AsyncClient) -> None:
    product = await create_item(client, name="Cake")
    flour = await create_item(client, name="Flour", tracking="lot")
    sugar = await create_item(client, name="Sugar")
    # Two lots at different costs, and sugar at a price that does not divide by 3.
    await receive(client, flour["id"], 10, lot_code="F-1", unit_cost="1.00")
    await receive(client, flour["id"], 10, lot_code="F-2", unit_cost="2.00")
    await receive(client, sugar["id"], 3, unit_cost="3.333333")
    await receive(client, sugar["id"], 3, unit_cost="1")
    bom = await create_bom(
        client, product["id"], [(flour["id"], 1), (sugar["id"], 1)], output_quantity=1
    )
    for line in bom["lines"]:
        assert line["consumption"] in ("backflush", "manual")
    order = await create_order(client, product["id"], 2)
    order = ok(await act(client, ok(await act(client, order, "release")), "start"))
    issue = {
        "lines": [
            {"item_id": flour["id"], "quantity": "6", "lot_code": "F-1"},
            {"item_id": flour["id"], "quantity": "6", "lot_code": "F-2"},
            {"item_id": sugar["id"], "quantity": "5"},
        ]
    }
    order = ok(await act(client, order, "consumptions", issue))
    paid = D(order["material_cost"])
    # Back: 4 of F-1, 1 of F-2, and 4 of the 5 sugar, in two calls.
    order = ok(
        await act(
            client,
            order,
            "returns",
            {
                "lines": [
                    {"item_id": flour["id"], "quantity": "4", "lot_code": "F-1"},
                    {"item_id": flour["id"], "quantity": "1", "lot_code": "F-2"},
                    {"item_id": sugar["id"], "quantity": "1"},
                ]
            },
        )
    )
    order = ok(
        await act(client, order, "returns", {"lines": [{"item_id": sugar["id"], "quantity": 3}]})
    )
    assert D(requirement(order, sugar["id"])["consumed_quantity"]) == 1
    assert D(requirement(order, flour["id"])["consumed_quantity"]) == 7
    moves = ok(
        await client.get(
            "/v1/stock/movements", params={"production_order_id": order["id"], "limit": 500}
        )
    )["data"]
    returned = [m for m in moves if m["type"] == "return"]
    assert len(returned) == 4
    back = sum(D(m["value"]) for m in returned)
    assert D(order["material_cost"]) == paid - back
    # Returning more than is left of a lot, or of an item, is refused and changes nothing.
    for lines in (
        [{"item_id": flour["id"], "quantity": "2.000001", "lot_code": "F-1"}],
        [{"item_id": sugar["id"], "quantity": "1.5"}],
        [{"item_id": product["id"], "quantity": "1"}],
    ):
        problem(await act(client, order, "returns", {"lines": lines}), 409, "conflict")
    problem(
        await act(client, order, "returns", {"lines": [{"item_id": flour["id"], "quantity": 1}]}),
        422,
        "validation_error",
    )
    completed = ok(await act(client, order, "complete"))
    assert completed["status"] == "completed"
    settled = await assert_cost_balances(client, order["id"])
    assert D(settled["material_cost"]) == D(settled["output_value"]) + D(settled["scrap_value"])
    # Each item's value is still exactly the sum of its movements' values.
    for item in (flour, sugar, product):
        stock = await totals(client, item["id"])
        item_moves = ok(
            await client.get("/v1/stock/movements", params={"item_id": item["id"], "limit": 500})
        )["data"]
        assert D(stock["value"]) == sum(D(m["value"]) for m in item_moves)


async def test_complete_with_a_backorder_makes_a_planned_order_for_the_rest(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    order = await create_order(client, kit["bike"]["id"], 10, reference="WEB-9")
    order = ok(await act(client, ok(await act(client, order, "release")), "start"))
    done = ok(await act(client, order, "complete", {"output_quantity": "6", "backorder": True}))
    assert done["status"] == "completed" and done["backorder_id"] is not None
    rest = ok(await client.get(f"/v1/production-orders/{done['backorder_id']}"))
    assert rest["status"] == "planned" and D(rest["quantity"]) == 4
    assert rest["backorder_of"] == done["id"] and rest["reference"] == "WEB-9"
    assert done["history"][-1]["details"]["backorder_id"] == rest["id"]
    # Without it, none; nor when nothing is left to make.
    other = await create_order(client, kit["bike"]["id"], 2)
    other = ok(await act(client, ok(await act(client, other, "release")), "start"))
    plain = ok(await act(client, other, "complete", {"output_quantity": "1"}))
    assert plain["backorder_id"] is None
    full = await create_order(client, kit["bike"]["id"], 1)
    full = ok(await act(client, ok(await act(client, full, "release")), "start"))
    assert ok(await act(client, full, "complete", {"backorder": True}))["backorder_id"] is None
