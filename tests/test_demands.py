"""Demand links, `GET /v1/demands/{external_order_id}` and make-to-order (SPEC §10),
on both databases."""

from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import adjust, create_item, ok, problem, receive, totals, unique, walk
from tests.order_helpers import act, bicycle, create_bom, create_order

D = Decimal


def demand(external_order_id: str, **fields: Any) -> dict[str, Any]:
    return {"source": "shop", "external_order_id": external_order_id, **fields}


async def rollup(client: httpx.AsyncClient, external_order_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/demands/{external_order_id}"))  # type: ignore[no-any-return]


async def test_an_order_keeps_its_demand_and_lists_filter_by_it(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    shop_order = unique("SO")
    link = demand(shop_order, external_line_id="2", customer_ref="C-9")
    order = await create_order(client, kit["bike"]["id"], 1, demand=link)
    assert order["demand"] == link
    await create_order(client, kit["bike"]["id"], 1, demand=demand(unique("SO")))
    await create_order(client, kit["bike"]["id"], 1)
    listed = await walk(client, "/v1/production-orders", external_order_id=shop_order)
    assert [(o["id"], o["demand"]) for o in listed] == [(order["id"], link)]
    # PATCH replaces the link; null removes it.
    other = demand(shop_order, external_line_id="3")
    patched = ok(await client.patch(f"/v1/production-orders/{order['id']}", json={"demand": other}))
    assert patched["demand"] == {**other, "customer_ref": None}
    cleared = ok(await client.patch(f"/v1/production-orders/{order['id']}", json={"demand": None}))
    assert cleared["demand"] is None
    assert await walk(client, "/v1/production-orders", external_order_id=shop_order) == []
    problem(
        await client.post(
            "/v1/production-orders",
            json={"item_id": kit["bike"]["id"], "quantity": 1, "demand": {"source": "shop"}},
        ),
        422,
        "validation_error",
    )


async def test_a_demand_rolls_up_through_every_status(client: httpx.AsyncClient) -> None:
    kit = await bicycle(client)
    shop_order = unique("SO")
    link = {"demand": demand(shop_order)}
    first = await create_order(client, kit["bike"]["id"], 2, due_date="2027-03-01", **link)
    second = await create_order(client, kit["bike"]["id"], 1, due_date="2027-03-05", **link)
    third = await create_order(client, kit["bike"]["id"], 1, due_date="2027-03-03", **link)
    seen = await rollup(client, shop_order)
    assert seen["status"] == "planned"
    assert (seen["quantity"], seen["produced_quantity"]) == ("4", "0")
    assert seen["expected_completion"] == "2027-03-05"
    assert [o["id"] for o in seen["orders"]] == [first["id"], second["id"], third["id"]]

    ok(await act(client, first, "release"))
    assert (await rollup(client, shop_order))["status"] == "planned"  # released: not started
    ok(await act(client, first, "start"))
    assert (await rollup(client, shop_order))["status"] == "in_production"
    ok(await act(client, first, "outputs", {"quantity": 2}))
    ok(await act(client, first, "complete"))
    seen = await rollup(client, shop_order)
    assert seen["status"] == "partially_completed"
    assert (seen["quantity"], seen["produced_quantity"]) == ("4", "2")
    assert seen["expected_completion"] == "2027-03-05"

    # A cancelled order no longer counts: the rest decide the status.
    ok(await act(client, second, "cancel"))
    seen = await rollup(client, shop_order)
    assert seen["status"] == "partially_completed"
    assert (seen["quantity"], seen["expected_completion"]) == ("3", "2027-03-03")
    assert [o["status"] for o in seen["orders"]] == ["completed", "cancelled", "planned"]
    for action, body in (("release", None), ("start", None), ("outputs", {"quantity": 1})):
        ok(await act(client, third, action, body))
    ok(await act(client, third, "complete"))
    seen = await rollup(client, shop_order)
    assert seen["status"] == "completed"
    assert (seen["quantity"], seen["produced_quantity"]) == ("3", "3")
    last = ok(await client.get(f"/v1/production-orders/{third['id']}"))
    assert seen["expected_completion"] == last["completed_at"][:10]


async def test_a_demand_whose_orders_are_all_cancelled_is_cancelled(
    client: httpx.AsyncClient,
) -> None:
    kit = await bicycle(client)
    shop_order = unique("SO")
    for _ in range(2):
        order = await create_order(client, kit["bike"]["id"], 1, demand=demand(shop_order))
        ok(await act(client, order, "cancel"))
    seen = await rollup(client, shop_order)
    assert (seen["status"], seen["quantity"], seen["expected_completion"]) == (
        "cancelled",
        "0",
        None,
    )
    assert len(seen["orders"]) == 2


async def test_an_unknown_demand_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"/v1/demands/{unique('SO')}"), 404, "not_found")


async def _three_levels(client: httpx.AsyncClient) -> dict[str, Any]:
    """A bike (lead 2 days) of a wheel (made, lead 3 days; 2 per bike) of a rim (made,
    lead 1 day; 1 per wheel) and spokes (bought). No wheels in stock, rims plenty."""
    spoke = await create_item(client, name="Spoke")
    rim = await create_item(client, name="Rim", lead_time_days=1)
    wheel = await create_item(client, name="Wheel", lead_time_days=3)
    bike = await create_item(client, name="Bike", lead_time_days=2)
    await create_bom(client, rim["id"], [(spoke["id"], 4)])
    await create_bom(client, wheel["id"], [(rim["id"], 1), (spoke["id"], 32)])
    await create_bom(client, bike["id"], [(wheel["id"], 2)])
    await receive(client, rim["id"], 50, unit_cost="8")
    return {"spoke": spoke, "rim": rim, "wheel": wheel, "bike": bike}


async def test_make_to_order_makes_the_order_and_only_the_short_sub_assembly(
    client: httpx.AsyncClient,
) -> None:
    kit = await _three_levels(client)
    shop_order = unique("SO")
    body = {
        "item_id": kit["bike"]["id"],
        "quantity": 3,
        "due_date": "2027-06-20",
        "demand": demand(shop_order, customer_ref="C-1"),
        "metadata": {"channel": "web"},
    }
    key = {"Idempotency-Key": unique("mto")}
    response = await client.post("/v1/production-orders/make-to-order", json=body, headers=key)
    made = ok(response, 201)["data"]
    got = [(o["item_id"], o["quantity"], o["due_date"], o["planned_start"]) for o in made]
    assert got == [
        (kit["bike"]["id"], "3", "2027-06-20", "2027-06-18"),
        (kit["wheel"]["id"], "6", "2027-06-18", "2027-06-15"),
    ]
    assert all(o["status"] == "planned" for o in made)
    assert all(o["demand"]["external_order_id"] == shop_order for o in made)
    assert all(o["metadata"] == {"channel": "web"} for o in made)

    again = await client.post("/v1/production-orders/make-to-order", json=body, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [o["id"] for o in ok(again, 201)["data"]] == [o["id"] for o in made]
    listed = await walk(client, "/v1/production-orders", external_order_id=shop_order)
    assert [o["id"] for o in listed] == [o["id"] for o in made]
    seen = await rollup(client, shop_order)
    assert (seen["status"], seen["quantity"], seen["expected_completion"]) == (
        "planned",
        "3",
        "2027-06-20",
    )


async def test_make_to_order_counts_stock_and_open_orders_once_and_goes_deep(
    client: httpx.AsyncClient,
) -> None:
    kit = await _three_levels(client)
    await receive(client, kit["wheel"]["id"], 1, unit_cost="30")
    await create_order(client, kit["wheel"]["id"], 2)  # open supply: 2 wheels coming
    await adjust(client, kit["rim"]["id"], -10)  # 40 rims left

    body = {
        "item_id": kit["bike"]["id"],
        "quantity": 25,
        "due_date": "2027-06-20",
        "demand": demand(unique("SO")),
    }
    made = ok(await client.post("/v1/production-orders/make-to-order", json=body), 201)["data"]
    # 50 wheels: 1 in stock + 2 coming → 47 to make; 47 rims: 40 free → 7 to make.
    got = [(o["item_id"], o["quantity"], o["due_date"]) for o in made]
    assert got == [
        (kit["bike"]["id"], "25", "2027-06-20"),
        (kit["wheel"]["id"], "47", "2027-06-18"),
        (kit["rim"]["id"], "7", "2027-06-15"),
    ]
    assert (await totals(client, kit["rim"]["id"]))["reserved"] == "0"  # planned: nothing held


async def test_make_to_order_without_sub_assemblies_makes_one_order(
    client: httpx.AsyncClient,
) -> None:
    kit = await _three_levels(client)
    body = {
        "item_id": kit["bike"]["id"],
        "quantity": 1,
        "due_date": "2027-06-20",
        "demand": demand(unique("SO")),
        "sub_assemblies": False,
    }
    made = ok(await client.post("/v1/production-orders/make-to-order", json=body), 201)["data"]
    assert [o["item_id"] for o in made] == [kit["bike"]["id"]]


async def test_make_to_order_refuses_what_it_cannot_make(client: httpx.AsyncClient) -> None:
    bought = await create_item(client)
    base = {"quantity": 1, "due_date": "2027-06-20", "demand": demand(unique("SO"))}
    for body in (
        {**base, "item_id": bought["id"]},  # no BOM
        {**base, "item_id": "00000000-0000-0000-0000-000000000000"},
        {**base, "item_id": bought["id"], "demand": None},
        {k: v for k, v in {**base, "item_id": bought["id"]}.items() if k != "due_date"},
    ):
        problem(
            await client.post("/v1/production-orders/make-to-order", json=body),
            422,
            "validation_error",
        )
    assert await walk(client, "/v1/production-orders", item_id=bought["id"]) == []
    assert D(0) == D((await totals(client, bought["id"]))["incoming"])
