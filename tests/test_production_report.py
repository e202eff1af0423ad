"""The production report: KPIs of completed orders and the orders late now."""

from datetime import date, timedelta

import httpx

from tests.helpers import create_item, ok, problem, receive, unique
from tests.order_helpers import act, create_order


async def test_production_kpis_and_late_orders(client: httpx.AsyncClient) -> None:
    part = await create_item(client, name="Part")
    product = await create_item(client, name="Product")
    await receive(client, part["id"], 100, unit_cost="1")
    bench = ok(await client.post("/v1/work-centers", json={"code": unique("WC"), "name": "B"}), 201)
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "lines": [{"component_item_id": part["id"], "quantity": 1}],
                "operations": [
                    {
                        "sequence": 10,
                        "name": "Make",
                        "work_center_id": bench["id"],
                        "run_minutes": 10,
                    }
                ],
            },
        ),
        201,
    )
    today = date.today()
    on_time = await create_order(client, product["id"], 4, due_date=str(today + timedelta(5)))
    late = await create_order(client, product["id"], 2, due_date=str(today - timedelta(1)))
    no_due = await create_order(client, product["id"], 1)
    still_open = await create_order(client, product["id"], 1, due_date=str(today - timedelta(3)))
    for order in (on_time, late, no_due):
        ok(await act(client, order, "release"))
        ok(await act(client, order, "operations/10/start"))
    ok(await act(client, on_time, "operations/10/time", {"minutes": 35}))
    ok(await act(client, on_time, "scrap", {"quantity": 1, "reason": "dropped"}))
    for order in (on_time, late, no_due):
        ok(await act(client, order, "complete"))

    report = ok(
        await client.get(
            "/v1/reports/production",
            params={"item_id": product["id"], "from": str(today), "to": str(today)},
        )
    )
    assert report["orders_completed"] == 3
    assert report["output_quantity"] == "6"  # 3 + 2 + 1
    assert report["scrapped_quantity"] == "1"
    assert report["scrap_rate"] == "0.1429"  # 1 / 7
    assert report["on_time_rate"] == "0.5"  # of the two with a due date, one was late
    assert float(report["average_lead_time_hours"]) >= 0
    assert report["minutes_by_work_center"] == [
        {"work_center_id": bench["id"], "planned_minutes": "70", "actual_minutes": "35"}
    ]
    assert [o["id"] for o in report["late_orders"]] == [still_open["id"]]

    yesterday = ok(
        await client.get(
            "/v1/reports/production",
            params={"item_id": product["id"], "to": str(today - timedelta(1))},
        )
    )
    assert yesterday["orders_completed"] == 0 and yesterday["scrap_rate"] is None
    problem(
        await client.get("/v1/reports/production", params={"from": "yesterday"}),
        422,
        "validation_error",
    )
