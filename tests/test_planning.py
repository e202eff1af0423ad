"""Production plans and MRP (SPEC §6): gross to net over every BOM level, pegging,
firming into planned orders, and running again without proposing anything twice."""

import itertools
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from prodorder_api.ids import id_sequence
from prodorder_api.planning import mrp
from prodorder_api.planning.schemas import PlanOut
from tests.helpers import create_item, ok, problem, receive, unique, walk
from tests.order_helpers import act, create_order


async def bom(
    client: httpx.AsyncClient, product: dict[str, Any], *lines: tuple[dict[str, Any], Any, Any]
) -> dict[str, Any]:
    """A default BOM: (component, quantity per unit, scrap factor) lines."""
    body = {
        "item_id": product["id"],
        "lines": [
            {"component_item_id": c["id"], "quantity": q, "scrap_factor": s} for c, q, s in lines
        ],
    }
    return ok(await client.post("/v1/boms", json=body), 201)  # type: ignore[no-any-return]


async def create_plan(
    client: httpx.AsyncClient, *lines: tuple[dict[str, Any], Any, str], **fields: Any
) -> dict[str, Any]:
    body = {
        "lines": [{"item_id": i["id"], "quantity": q, "due_date": d} for i, q, d in lines],
        **fields,
    }
    return plan_out(await client.post("/v1/production-plans", json=body), 201)


def plan_out(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The body is ``PlanOut`` exactly (the presenter renders proposals by hand), with
    the plan's version as ``ETag``."""
    body = ok(response, status)
    assert PlanOut.model_validate_json(response.content).model_dump_json() == response.text
    assert response.headers["ETag"] == f'"{body["version"]}"'
    return body  # type: ignore[no-any-return]


async def run(client: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    return plan_out(await client.post(f"/v1/production-plans/{plan['id']}/run"))


async def firm(client: httpx.AsyncClient, plan: dict[str, Any]) -> dict[str, Any]:
    return plan_out(await client.post(f"/v1/production-plans/{plan['id']}/firm"))


def proposals_of(result: dict[str, Any], item: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in result["proposals"] if p["item_id"] == item["id"]]


def shape(proposal: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (
        proposal["kind"],
        proposal["quantity"],
        proposal["start_date"],
        proposal["due_date"],
        proposal["level"],
    )


def pegs(proposal: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(p["type"], p["id"], p["quantity"]) for p in proposal["pegged_to"]]


async def bicycles(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Three levels: a bicycle (2 days) from a bought frame (10 days) and two wheels made
    here (3 days), each from a bought rim (5 days) and 36 spokes (7 days, 5 % lost).
    Six wheels are in stock: the middle level."""
    frame = await create_item(client, name="Frame", lead_time_days=10)
    rim = await create_item(client, name="Rim", lead_time_days=5)
    spoke = await create_item(client, name="Spoke", lead_time_days=7)
    wheel = await create_item(client, name="Wheel", lead_time_days=3)
    bike = await create_item(client, name="Bicycle", lead_time_days=2)
    await bom(client, wheel, (rim, 1, 0), (spoke, 36, "0.05"))
    await bom(client, bike, (frame, 1, 0), (wheel, 2, 0))
    await receive(client, wheel["id"], 6, unit_cost="20")
    return {"frame": frame, "rim": rim, "spoke": spoke, "wheel": wheel, "bike": bike}


async def test_mrp_nets_each_level_offsets_lead_times_and_pegs_every_proposal(
    client: httpx.AsyncClient,
) -> None:
    parts = await bicycles(client)
    bike, frame, wheel, rim, spoke = (parts[k] for k in ("bike", "frame", "wheel", "rim", "spoke"))
    plan = await create_plan(
        client, (bike, 5, "2030-03-20"), (bike, "3", "2030-03-27"), name="March bicycles"
    )
    assert plan["status"] == "new" and plan["proposals"] == [] and plan["run_at"] is None
    first, second = plan["lines"]

    result = await run(client, plan)
    assert result["status"] == "proposed" and result["run_at"] is not None
    assert result["version"] == plan["version"] + 1
    by_id = {p["id"]: p for p in result["proposals"]}

    b1, b2 = proposals_of(result, bike)
    assert shape(b1) == ("production", "5", "2030-03-18", "2030-03-20", 0)
    assert shape(b2) == ("production", "3", "2030-03-25", "2030-03-27", 0)
    assert pegs(b1) == [("plan_line", first["id"], "5")]
    assert pegs(b2) == [("plan_line", second["id"], "3")]

    # Frames are bought: needed when each batch of bicycles starts, ordered 10 days before.
    f1, f2 = proposals_of(result, frame)
    assert shape(f1) == ("purchase", "5", "2030-03-08", "2030-03-18", 1)
    assert shape(f2) == ("purchase", "3", "2030-03-15", "2030-03-25", 1)
    assert pegs(f1) == [("proposal", b1["id"], "5")]
    assert pegs(f2) == [("proposal", b2["id"], "3")]

    # 10 wheels on the 18th: the 6 in stock cover 6, 4 are made; all 6 on the 25th are made.
    w1, w2 = proposals_of(result, wheel)
    assert shape(w1) == ("production", "4", "2030-03-15", "2030-03-18", 1)
    assert shape(w2) == ("production", "6", "2030-03-22", "2030-03-25", 1)
    assert pegs(w1) == [("proposal", b1["id"], "4")]
    assert pegs(w2) == [("proposal", b2["id"], "6")]

    r1, r2 = proposals_of(result, rim)
    assert shape(r1) == ("purchase", "4", "2030-03-10", "2030-03-15", 2)
    assert shape(r2) == ("purchase", "6", "2030-03-17", "2030-03-22", 2)
    assert pegs(r1) == [("proposal", w1["id"], "4")]
    assert pegs(r2) == [("proposal", w2["id"], "6")]

    # 36 spokes a wheel, 5 % lost: 37.8 a wheel, exactly.
    s1, s2 = proposals_of(result, spoke)
    assert shape(s1) == ("purchase", "151.2", "2030-03-08", "2030-03-15", 2)
    assert shape(s2) == ("purchase", "226.8", "2030-03-15", "2030-03-22", 2)
    assert pegs(s1) == [("proposal", w1["id"], "151.2")]
    assert pegs(s2) == [("proposal", w2["id"], "226.8")]

    assert len(result["proposals"]) == 10
    levels = [p["level"] for p in result["proposals"]]
    assert levels == sorted(levels), "parents come before their components"
    for proposal in result["proposals"]:
        assert proposal["production_order_id"] is None
        assert sum(Decimal(q) for _, _, q in pegs(proposal)) == Decimal(proposal["quantity"])
        for peg in proposal["pegged_to"]:
            if peg["type"] == "proposal":
                assert by_id[peg["id"]]["kind"] == "production"

    # The run is stored: GET shows it as the run returned it.
    stored = plan_out(await client.get(f"/v1/production-plans/{plan['id']}"))
    assert stored == result


async def test_an_item_used_at_two_levels_is_netted_once_per_day_at_its_low_level_code(
    client: httpx.AsyncClient,
) -> None:
    bolt = await create_item(client, name="Bolt")
    wheel = await create_item(client, name="Wheel")
    bike = await create_item(client, name="Bicycle")
    await bom(client, wheel, (bolt, 2, 0))
    await bom(client, bike, (wheel, 2, 0), (bolt, 4, 0))
    await receive(client, bolt["id"], 5)
    plan = await create_plan(client, (bike, 3, "2030-05-04"), (bike, 1, "2030-05-04"))
    first, second = plan["lines"]

    result = await run(client, plan)
    [b] = proposals_of(result, bike)
    assert shape(b) == ("production", "4", "2030-05-04", "2030-05-04", 0)
    assert pegs(b) == [("plan_line", first["id"], "3"), ("plan_line", second["id"], "1")]
    [w] = proposals_of(result, wheel)
    assert shape(w) == ("production", "8", "2030-05-04", "2030-05-04", 1)
    # 16 bolts for the bicycles, 16 for the wheels, one bucket: 5 in stock, 27 bought.
    [bolts] = proposals_of(result, bolt)
    assert shape(bolts) == ("purchase", "27", "2030-05-04", "2030-05-04", 2)
    assert pegs(bolts) == [("proposal", b["id"], "11"), ("proposal", w["id"], "16")]


async def test_mrp_nets_open_orders_output_and_other_orders_demand(
    client: httpx.AsyncClient,
) -> None:
    chain = await create_item(client, name="Chain")
    gear = await create_item(client, name="Gear set")  # made here, in the middle
    bike = await create_item(client, name="Bicycle", lead_time_days=1)
    trike = await create_item(client, name="Tricycle")
    await bom(client, gear, (chain, 1, 0))
    await bom(client, bike, (gear, 2, 0))
    await bom(client, trike, (chain, 6, 0))
    await receive(client, chain["id"], 10)
    # An open order brings 3 gear sets before they are needed...
    gears = await create_order(client, gear["id"], 3, due_date="2030-06-01")
    # ... and another order, for a tricycle, needs 6 chains (none reserved yet).
    other = await create_order(client, trike["id"], 1, planned_start="2030-06-01")
    plan = await create_plan(client, (bike, 5, "2030-06-10"))

    result = await run(client, plan)
    [b] = proposals_of(result, bike)
    assert shape(b) == ("production", "5", "2030-06-09", "2030-06-10", 0)
    # 10 gear sets, 3 of them coming: 7 made.
    [g] = proposals_of(result, gear)
    assert shape(g) == ("production", "7", "2030-06-09", "2030-06-09", 1)
    # 10 chains in stock go first to the open orders, which start earlier: 3 for the
    # gear order, 6 for the tricycle. 1 is left of the 7 the proposed gear sets need.
    [c] = proposals_of(result, chain)
    assert shape(c) == ("purchase", "6", "2030-06-09", "2030-06-09", 2)
    assert pegs(c) == [("proposal", g["id"], "6")]

    # Reserving the tricycle's chains changes nothing: reserved is neither free nor open.
    ok(await act(client, other, "release"))
    again = await run(client, plan)
    assert [shape(p) for p in again["proposals"]] == [shape(p) for p in result["proposals"]]

    # Progress on the gear order counts once: 2 gear sets are stock now, 1 still coming;
    # its chains are consumed or reserved, neither free stock nor open demand.
    await receive(client, chain["id"], 3)
    ok(await act(client, gears, "release"))
    ok(await act(client, gears, "start"))
    ok(await act(client, gears, "outputs", {"quantity": 2}))
    after = await run(client, plan)
    [g] = proposals_of(after, gear)
    assert g["quantity"] == "7"
    [c] = proposals_of(after, chain)
    assert c["quantity"] == "3"  # 3 more chains in stock: 3 fewer to buy


async def test_what_an_open_order_is_short_of_is_proposed_pegged_to_the_order(
    client: httpx.AsyncClient,
) -> None:
    part = await create_item(client, name="Part", lead_time_days=4)
    product = await create_item(client, name="Product")
    await bom(client, product, (part, 2, 0))
    await receive(client, part["id"], 5)
    plan = await create_plan(client, (product, 2, "2030-07-01"))
    # An order that starts after the plan's need and finishes later still.
    order = await create_order(
        client, product["id"], 3, planned_start="2030-07-15", due_date="2030-07-20"
    )

    result = await run(client, plan)
    [mine] = proposals_of(result, product)
    assert shape(mine) == ("production", "2", "2030-07-01", "2030-07-01", 0)
    # 5 in stock: 4 for the plan on 1 July, 1 of the order's 6 on 15 July.
    [parts] = proposals_of(result, part)
    assert shape(parts) == ("purchase", "5", "2030-07-11", "2030-07-15", 1)
    assert pegs(parts) == [("production_order", order["id"], "5")]


async def test_firm_creates_the_planned_orders_and_running_again_proposes_nothing_twice(
    client: httpx.AsyncClient,
) -> None:
    parts = await bicycles(client)
    name = unique("Firm plan")
    plan = await create_plan(
        client, (parts["bike"], 5, "2030-03-20"), (parts["bike"], 3, "2030-03-27"), name=name
    )
    result = await run(client, plan)
    production = [p for p in result["proposals"] if p["kind"] == "production"]
    purchases = [p for p in result["proposals"] if p["kind"] == "purchase"]
    assert len(production) == 4 and len(purchases) == 6

    firmed = await firm(client, plan)
    assert firmed["status"] == "firmed" and firmed["firmed_at"] is not None
    order_of = {p["id"]: p["production_order_id"] for p in firmed["proposals"]}
    assert all(order_of[p["id"]] for p in production)
    assert not any(order_of[p["id"]] for p in purchases)
    assert plan_out(await client.get(f"/v1/production-plans/{plan['id']}")) == firmed

    orders = await walk(client, "/v1/production-orders", production_plan_id=plan["id"])
    assert sorted(o["id"] for o in orders) == sorted(order_of[p["id"]] for p in production)
    for proposal in production:
        order = ok(await client.get(f"/v1/production-orders/{order_of[proposal['id']]}"))
        [default] = [
            b
            for b in ok(await client.get("/v1/boms", params={"item_id": proposal["item_id"]}))[
                "data"
            ]
            if b["default"]
        ]
        assert order["status"] == "planned"
        assert order["item_id"] == proposal["item_id"]
        assert order["quantity"] == proposal["quantity"]
        assert order["due_date"] == proposal["due_date"]
        assert order["planned_start"] == proposal["start_date"]
        assert order["reference"] == name
        assert order["production_plan_id"] == plan["id"]
        assert order["bom_id"] == default["id"]
        assert default["used"]

    # A second firm has nothing left to firm.
    problem(await client.post(f"/v1/production-plans/{plan['id']}/firm"), 409, "conflict")

    # Running again: the orders' output covers the plan, their requirements are the
    # demand; only the purchases remain, the same ones, now pegged to the orders.
    again = await run(client, plan)
    assert [p["kind"] for p in again["proposals"]] == ["purchase"] * 6
    assert sorted(shape(p) for p in again["proposals"]) == sorted(shape(p) for p in purchases)
    ordered = {order_of[p["id"]] for p in production}
    for proposal in again["proposals"]:
        assert {peg["type"] for peg in proposal["pegged_to"]} == {"production_order"}
        assert {peg["id"] for peg in proposal["pegged_to"]} <= ordered
    problem(await client.post(f"/v1/production-plans/{plan['id']}/firm"), 409, "conflict")
    assert len(await walk(client, "/v1/production-orders", production_plan_id=plan["id"])) == 4


async def test_firm_before_any_run_is_a_conflict_and_stale_versions_are_refused(
    client: httpx.AsyncClient,
) -> None:
    product = await create_item(client, name="Product")
    plan = await create_plan(client, (product, 1, "2030-01-01"))
    problem(await client.post(f"/v1/production-plans/{plan['id']}/firm"), 409, "conflict")
    stale = {"If-Match": '"999"'}
    path = f"/v1/production-plans/{plan['id']}/run"
    problem(await client.post(path, headers=stale), 412, "precondition_failed")
    response = await client.post(path, headers={"If-Match": f'"{plan["version"]}"'})
    assert ok(response)["version"] == plan["version"] + 1
    assert response.headers["ETag"] == f'"{plan["version"] + 1}"'
    # A bought item only: a purchase, nothing to firm.
    assert [p["kind"] for p in ok(response)["proposals"]] == ["purchase"]
    problem(await client.post(f"/v1/production-plans/{plan['id']}/firm"), 409, "conflict")


async def test_plans_are_listed_and_fetched(client: httpx.AsyncClient) -> None:
    product = await create_item(client, name="Product")
    plan = await create_plan(client, (product, "1.5", "2030-01-01"))
    assert plan["lines"][0]["quantity"] == "1.5"
    assert plan["name"] is None
    listed = await walk(client, "/v1/production-plans", limit=500)
    [row] = [p for p in listed if p["id"] == plan["id"]]
    assert "lines" not in row and row["status"] == "new"
    assert plan_out(await client.get(f"/v1/production-plans/{plan['id']}")) == plan


async def test_plan_input_is_validated(client: httpx.AsyncClient) -> None:
    product = await create_item(client, name="Product")
    line = {"item_id": product["id"], "quantity": 1, "due_date": "2030-01-01"}
    unknown = {**line, "item_id": "01a2108a-0000-7000-8000-000000000000"}
    body = problem(
        await client.post("/v1/production-plans", json={"lines": [line, unknown]}),
        422,
        "validation_error",
    )
    assert body["errors"][0]["loc"] == ["body", "lines", 1, "item_id"]
    problem(await client.post("/v1/production-plans", json={"lines": []}), 422, "validation_error")
    problem(await client.post("/v1/production-plans", json={}), 422, "validation_error")
    for quantity in (0, "-1", "0.0000001"):
        body = problem(
            await client.post(
                "/v1/production-plans", json={"lines": [{**line, "quantity": quantity}]}
            ),
            422,
            "validation_error",
        )
        assert body["errors"][0]["loc"] == ["body", "lines", 0, "quantity"]
    for bad in (
        {**line, "due_date": "soon"},
        {**line, "colour": "red"},
        {"item_id": product["id"]},
    ):
        problem(
            await client.post("/v1/production-plans", json={"lines": [bad]}),
            422,
            "validation_error",
        )


async def test_unknown_plans_are_404(client: httpx.AsyncClient) -> None:
    for plan_id in ("01a2108a-0000-7000-8000-000000000000", "not-an-id"):
        problem(await client.get(f"/v1/production-plans/{plan_id}"), 404, "not_found")
        for action in ("run", "firm"):
            problem(await client.post(f"/v1/production-plans/{plan_id}/{action}"), 404, "not_found")


# --- the in-memory algorithm, without a database --------------------------------


def test_low_level_codes_are_the_deepest_level_an_item_occurs_at() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    one = Decimal(1)
    recipes = {
        a: mrp.Recipe(one, ((b, one), (d, one))),  # d directly under a ...
        b: mrp.Recipe(one, ((c, one),)),
        c: mrp.Recipe(one, ((d, one),)),  # ... and three levels down
    }
    assert mrp.low_level_codes([a, b, c, d], recipes) == {a: 0, b: 1, c: 2, d: 3}


def test_a_cycle_below_the_plan_is_refused() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    one = Decimal(1)
    recipes = {a: mrp.Recipe(one, ((b, one),)), b: mrp.Recipe(one, ((a, one),))}
    with pytest.raises(mrp.CycleError):
        mrp.low_level_codes([a, b], recipes)


def test_stock_covers_the_earliest_demand_and_receipts_count_from_their_date() -> None:
    item, line, order = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    inputs = mrp.Inputs(
        lead_times={item: 3},
        recipes={},
        available={item: Decimal(4)},
        receipts=[mrp.Receipt(item, date(2030, 1, 10), Decimal(5))],
        demands=[
            mrp.Demand(item, date(2030, 1, 8), Decimal(6), "production_order", order),
            mrp.Demand(item, date(2030, 1, 12), Decimal(5), "plan_line", line),
        ],
    )
    [proposal] = mrp.plan(inputs)  # the 5 arriving on the 10th cover the 12th
    assert (proposal.quantity, proposal.start_date, proposal.due_date) == (
        Decimal(2),
        date(2030, 1, 5),
        date(2030, 1, 8),
    )
    assert proposal.pegged_to == [mrp.Peg("production_order", order, Decimal(2))]
    assert proposal.kind == "purchase" and proposal.level == 0


def test_id_sequences_are_increasing_unique_uuid7s() -> None:
    ids = list(itertools.islice(id_sequence(), 5000))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}
