"""The order state table, changes to an order, the order list and availability.

The state table is ``prodorder_api.orders.states.ALLOWED``: every action outside a
status's row must be refused with 409 ``invalid_transition`` and change nothing;
every action inside it must get past the state check.
"""

import re
import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest

from prodorder_api.orders.states import ALLOWED, TARGET, Action, Status
from tests.helpers import create_item, create_location, movements, ok, problem, receive, totals
from tests.order_helpers import act, create_bom, create_order, requirement

ACTIONS: tuple[Action, ...] = (
    "update",
    "availability",
    "release",
    "reserve",
    "unrelease",
    "start",
    "consume",
    "output",
    "scrap",
    "complete",
    "cancel",
    "operation",
    "hold",
    "resume",
    "split",
    "return",
)
ORDERS = "/v1/production-orders"


async def world(client: httpx.AsyncClient) -> dict[str, str]:
    """A product made from two of one component, with stock for many orders."""
    component = await create_item(client, name="Component")
    product = await create_item(client, name="Product")
    await receive(client, component["id"], 100, unit_cost="2")
    await create_bom(
        client,
        product["id"],
        [(component["id"], 2)],
        operations=[{"sequence": 10, "name": "Assemble"}],
    )
    return {"product": product["id"], "component": component["id"]}


async def order_in(client: httpx.AsyncClient, w: dict[str, str], status: str) -> dict[str, Any]:
    """A fresh order of 2 units in ``status``."""
    order = await create_order(client, w["product"], 2)
    steps = {
        "planned": [],
        "released": ["release"],
        "in_progress": ["release", "start"],
        "completed": ["release", "start", "complete"],
        "cancelled": ["cancel"],
        "on_hold": ["release", "hold"],
    }[status]
    for step in steps:
        order = ok(await act(client, order, step, {"reason": "x"} if step == "hold" else None))
    assert order["status"] == status
    return order


async def perform(
    client: httpx.AsyncClient, order: dict[str, Any], action: str, component_id: str
) -> httpx.Response:
    """The one request that performs ``action`` on ``order``."""
    path = f"{ORDERS}/{order['id']}"
    if action == "update":
        return await client.patch(path, json={"priority": 1})
    if action == "availability":
        return await client.get(f"{path}/availability")
    bodies: dict[str, tuple[str, dict[str, Any] | None]] = {
        "consume": ("consumptions", {"lines": [{"item_id": component_id, "quantity": 1}]}),
        "output": ("outputs", {"quantity": 1}),
        "scrap": ("scrap", {"quantity": 1, "reason": "x"}),
        "operation": ("operations/10/complete", None),
        "hold": ("hold", {"reason": "x"}),
        "split": ("split", {"quantity": 1}),
        "return": ("returns", {"lines": [{"item_id": component_id, "quantity": 1}]}),
    }
    endpoint, body = bodies.get(action, (action, None))
    if body is None:
        return await client.post(f"{path}/{endpoint}")
    return await client.post(f"{path}/{endpoint}", json=body)


async def snapshot(client: httpx.AsyncClient, order: dict[str, Any], w: dict[str, str]) -> Any:
    """What a refused action must leave alone: the order, stock totals, the ledger."""
    return (
        ok(await client.get(f"{ORDERS}/{order['id']}")),
        await totals(client, w["product"]),
        await totals(client, w["component"]),
        len(await movements(client, production_order_id=order["id"])),
    )


@pytest.mark.parametrize("status", list(ALLOWED))
async def test_state_table_refuses_every_action_outside_it(
    client: httpx.AsyncClient, status: Status
) -> None:
    assert set(ALLOWED[status]) <= set(ACTIONS)
    w = await world(client)
    order = await order_in(client, w, status)
    assert order["allowed_actions"] == list(ALLOWED[status])
    before = await snapshot(client, order, w)
    assert before[0]["version"] == order["version"]

    for action in ACTIONS:
        if action in ALLOWED[status]:
            continue
        response = await perform(client, order, action, w["component"])
        body = problem(response, 409, "invalid_transition")
        assert body["current_status"] == status, (action, body)
        assert body["allowed_actions"] == list(ALLOWED[status]), (action, body)
        again = ok(await client.get(f"{ORDERS}/{order['id']}"))
        assert again == before[0], f"{action} changed a {status} order"
    assert await snapshot(client, order, w) == before  # stock and ledger untouched too


@pytest.mark.parametrize("status", [s for s, actions in ALLOWED.items() if actions])
async def test_state_table_lets_every_allowed_action_through(
    client: httpx.AsyncClient, status: Status
) -> None:
    w = await world(client)
    shared = await order_in(client, w, status)  # for the actions that keep the status
    for action in ALLOWED[status]:
        moves = action in TARGET or action == "resume"
        order = await order_in(client, w, status) if moves else shared
        if action == "return":  # something to give back first
            issue = {"lines": [{"item_id": w["component"], "quantity": 1}]}
            order = ok(await act(client, order, "consumptions", issue))
        response = await perform(client, order, action, w["component"])
        if response.status_code >= 400:
            assert response.json().get("code") != "invalid_transition", (action, response.text)
        body = ok(response)  # with this much stock every allowed action succeeds
        if action == "availability":
            assert body["order_id"] == order["id"]
            continue
        if action == "split":
            assert body["new"]["status"] == status
            body = body["original"]
        expected = order["held_from"] if action == "resume" else TARGET.get(action, status)
        assert body["status"] == expected, action
        assert body["version"] > order["version"], action
        assert body["allowed_actions"] == list(ALLOWED[body["status"]]), action
        if order is shared:
            shared = body


async def test_in_progress_order_can_be_cancelled_only_while_untouched(
    client: httpx.AsyncClient,
) -> None:
    w = await world(client)
    consumed = await order_in(client, w, "in_progress")
    consumed = ok(
        await act(
            client,
            consumed,
            "consumptions",
            {"lines": [{"item_id": w["component"], "quantity": 1}]},
        )
    )
    before = await snapshot(client, consumed, w)
    problem(await act(client, consumed, "cancel", {"reason": "no"}), 409, "conflict")
    assert await snapshot(client, consumed, w) == before

    produced = await order_in(client, w, "in_progress")
    produced = ok(await act(client, produced, "outputs", {"quantity": 1}))
    problem(await act(client, produced, "cancel"), 409, "conflict")

    untouched = await order_in(client, w, "in_progress")
    reserved = (await totals(client, w["component"]))["reserved"]
    assert requirement(untouched, w["component"])["reserved_quantity"] == "4"
    cancelled = ok(await act(client, untouched, "cancel", {"reason": "customer cancelled"}))
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert requirement(cancelled, w["component"])["reserved_quantity"] == "0"
    assert int((await totals(client, w["component"]))["reserved"]) == int(reserved) - 4
    assert cancelled["history"][-1]["action"] == "cancel"
    assert cancelled["history"][-1]["from_status"] == "in_progress"


async def test_patch_recomputes_while_planned_and_keeps_quantity_once_released(
    client: httpx.AsyncClient,
) -> None:
    steel = await create_item(client, name="Steel")
    glue = await create_item(client, name="Glue")
    shelf = await create_item(client, name="Shelf")
    await receive(client, steel["id"], 100, unit_cost="1")
    await receive(client, glue["id"], 100, unit_cost="1")
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": shelf["id"],
                "output_quantity": 2,
                "lines": [
                    {"component_item_id": steel["id"], "quantity": 3, "scrap_factor": "0.1"},
                    {"component_item_id": glue["id"], "quantity": 1},
                ],
                "operations": [
                    {"sequence": 10, "name": "Cut", "setup_minutes": 15, "run_minutes": 30},
                    {"sequence": 20, "name": "Glue", "run_minutes": "0.5"},
                ],
            },
        ),
        201,
    )
    order = await create_order(client, shelf["id"], 5)
    assert [r["required_quantity"] for r in order["requirements"]] == ["8.25", "2.5"]
    assert [o["planned_minutes"] for o in order["operations"]] == ["90", "1.25"]
    versions = [order["version"]]

    def changed(new: dict[str, Any]) -> dict[str, Any]:
        assert new["version"] > versions[-1], (new["version"], versions)
        versions.append(new["version"])
        return new

    path = f"{ORDERS}/{order['id']}"
    order = changed(ok(await client.patch(path, json={"quantity": 7})))
    assert order["quantity"] == "7"
    assert [r["required_quantity"] for r in order["requirements"]] == ["11.55", "3.5"]
    assert [o["planned_minutes"] for o in order["operations"]] == ["120", "1.75"]
    problem(await client.patch(path, json={"quantiti": 3}), 422, "validation_error")

    order = changed(ok(await act(client, order, "release")))
    assert [r["reserved_quantity"] for r in order["requirements"]] == ["11.55", "3.5"]
    response = await client.patch(path, json={"quantity": 8})
    assert response.status_code == 409, response.text
    assert response.json()["code"] in ("conflict", "invalid_transition")
    unchanged = ok(await client.get(path))
    assert (unchanged["quantity"], unchanged["version"]) == ("7", versions[-1])
    assert [r["required_quantity"] for r in unchanged["requirements"]] == ["11.55", "3.5"]
    assert (await totals(client, steel["id"]))["reserved"] == "11.55"

    order = changed(ok(await client.patch(path, json={"priority": 7})))
    order = changed(ok(await client.patch(path, json={"notes": "rush"})))
    order = changed(ok(await client.patch(path, json={"reference": "SHOP-77"})))
    order = changed(ok(await client.patch(path, json={"due_date": "2031-02-03"})))
    assert (order["priority"], order["notes"], order["reference"], order["due_date"]) == (
        7,
        "rush",
        "SHOP-77",
        "2031-02-03",
    )
    assert order["status"] == "released"
    order = changed(ok(await act(client, order, "start")))
    order = changed(ok(await client.patch(path, json={"priority": -1, "notes": "late"})))
    order = changed(ok(await act(client, order, "outputs", {"quantity": 1})))
    order = changed(ok(await act(client, order, "complete")))
    assert order["quantity"] == "7" and order["produced_quantity"] == "7"

    history = order["history"]
    assert [h["action"] for h in history] == [
        "create",
        "update",
        "release",
        "update",
        "update",
        "update",
        "update",
        "start",
        "update",
        "output",
        "complete",
    ]
    assert len(history) == len(versions)
    assert history[0]["from_status"] is None
    for previous, entry in pairwise(history):
        assert entry["from_status"] == previous["to_status"], entry
        assert datetime.fromisoformat(entry["at"]) >= datetime.fromisoformat(previous["at"])
    assert [h["to_status"] for h in history if h["from_status"] != h["to_status"]] == [
        "planned",
        "released",
        "in_progress",
        "completed",
    ]


async def test_list_filters_and_numbers_increase_in_creation_order(
    client: httpx.AsyncClient,
) -> None:
    w = await world(client)
    ref = f"SHOP-{uuid.uuid4().hex[:8]}"
    planned = await create_order(client, w["product"], 1, due_date="2030-03-01", reference=ref)
    released = await create_order(client, w["product"], 1, due_date="2030-03-10")
    started = await create_order(client, w["product"], 1, due_date="2030-03-20")
    undated = await create_order(client, w["product"], 1)
    done = await create_order(client, w["product"], 1, due_date="2030-03-15")
    released = ok(await act(client, released, "release"))
    started = ok(await act(client, ok(await act(client, started, "release")), "start"))
    ok(await act(client, undated, "cancel"))
    for step in ("release", "start", "complete"):
        done = ok(await act(client, done, step))
    other = await world(client)
    elsewhere = await create_order(client, other["product"], 1, due_date="2030-03-10")
    ok(await act(client, elsewhere, "release"))

    async def ids(*params: tuple[str, str]) -> set[str]:
        page = ok(await client.get(ORDERS, params=[*params, ("limit", "500")]))
        assert page["next_cursor"] is None
        return {row["id"] for row in page["data"]}

    mine = ("item_id", w["product"])
    assert await ids(mine) == {o["id"] for o in (planned, released, started, undated, done)}
    assert await ids(mine, ("status", "released"), ("status", "in_progress")) == {
        released["id"],
        started["id"],
    }
    assert await ids(mine, ("status", "planned")) == {planned["id"]}
    assert await ids(mine, ("status", "cancelled")) == {undated["id"]}
    assert await ids(("reference", ref)) == {planned["id"]}
    assert await ids(mine, ("due_before", "2030-03-12")) == {planned["id"], released["id"]}
    assert await ids(mine, ("due_after", "2030-03-05")) == {
        released["id"],
        started["id"],
        done["id"],
    }
    assert await ids(mine, ("due_after", "2030-03-05"), ("due_before", "2030-03-12")) == {
        released["id"]
    }
    assert await ids(("status", "released"), ("due_before", "2030-03-12"), mine) == {released["id"]}
    created = [planned, released, started, undated, done]
    numbers = [o["number"] for o in created]
    assert all(re.fullmatch(r"MO-\d{6,}", n) for n in numbers), numbers
    values = [int(n[3:]) for n in numbers]
    assert values == sorted(set(values)), numbers  # unique, increasing in creation order
    page = ok(await client.get(ORDERS, params={"item_id": w["product"], "limit": 500}))
    assert sorted(r["number"] for r in page["data"]) == numbers
    row = ok(await client.get(ORDERS, params={"reference": ref}))["data"][0]
    assert (row["number"], row["status"], row["quantity"]) == (planned["number"], "planned", "1")
    problem(await client.get(ORDERS, params={"status": "shipped"}), 422, "validation_error")


async def test_unknown_order_is_404_and_a_wrong_bom_is_422(client: httpx.AsyncClient) -> None:
    for missing in (str(uuid.uuid4()), "not-an-id"):
        path = f"{ORDERS}/{missing}"
        problem(await client.get(path), 404, "not_found")
        problem(await client.patch(path, json={"priority": 1}), 404, "not_found")
        problem(await client.get(f"{path}/availability"), 404, "not_found")
        problem(await client.post(f"{path}/release"), 404, "not_found")
        problem(await client.post(f"{path}/outputs", json={"quantity": 1}), 404, "not_found")

    w = await world(client)
    other = await world(client)
    other_bom = ok(await client.get("/v1/boms", params={"item_id": other["product"]}))["data"][0]
    body = problem(
        await client.post(
            ORDERS, json={"item_id": w["product"], "quantity": 1, "bom_id": other_bom["id"]}
        ),
        422,
        "validation_error",
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "bom_id"]]
    body = problem(
        await client.post(
            ORDERS, json={"item_id": w["product"], "quantity": 1, "bom_id": str(uuid.uuid4())}
        ),
        422,
        "validation_error",
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "bom_id"]]

    bought = await create_item(client, name="Bought, never made")
    body = problem(
        await client.post(ORDERS, json={"item_id": bought["id"], "quantity": 1}),
        422,
        "validation_error",
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "bom_id"]]
    page = ok(await client.get(ORDERS, params={"item_id": bought["id"]}))
    assert page["data"] == []


async def test_availability_reports_required_available_and_shortage(
    client: httpx.AsyncClient,
) -> None:
    a = await create_item(client, name="A")
    b = await create_item(client, name="B")
    product = await create_item(client, name="Product")
    await create_bom(client, product["id"], [(a["id"], 2), (b["id"], 3)])
    order = await create_order(client, product["id"], 2)
    path = f"{ORDERS}/{order['id']}/availability"

    async def check() -> tuple[str, dict[str, tuple[str, str, str]]]:
        got = ok(await client.get(path))
        assert got["order_id"] == order["id"]
        assert [c["item_id"] for c in got["components"]] == [a["id"], b["id"]]
        rows = {
            c["item_id"]: (c["required"], c["available"], c["shortage"]) for c in got["components"]
        }
        return got["status"], rows

    assert await check() == (
        "unavailable",
        {a["id"]: ("4", "0", "4"), b["id"]: ("6", "0", "6")},
    )

    await receive(client, a["id"], 10, unit_cost="1")
    await receive(client, b["id"], "4.5", unit_cost="1")
    elsewhere = await create_location(client)
    await receive(client, b["id"], 100, unit_cost="1", location_id=elsewhere["id"])
    assert await check() == (
        "partial",
        {a["id"]: ("4", "10", "0"), b["id"]: ("6", "4.5", "1.5")},
    )

    rival = await create_order(client, product["id"], 1)  # A 2, B 3
    ok(await act(client, rival, "release", {"allow_shortage": True}))
    assert await check() == (
        "partial",
        {a["id"]: ("4", "8", "0"), b["id"]: ("6", "1.5", "4.5")},
    )

    await receive(client, b["id"], 5, unit_cost="1")
    assert await check() == (
        "available",
        {a["id"]: ("4", "8", "0"), b["id"]: ("6", "6.5", "0")},
    )
    still = ok(await client.get(f"{ORDERS}/{order['id']}"))
    assert still["version"] == order["version"]  # availability changes nothing
