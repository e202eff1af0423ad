"""Operations on the shop floor: progress, labour hours and labour in the cost."""

import httpx

from tests.helpers import create_item, ok, problem, receive, totals, unique
from tests.order_helpers import act, assert_cost_balances, create_order


async def work_center(client: httpx.AsyncClient, rate: str, per_day: str = "480") -> dict:
    body = {
        "code": unique("WC"),
        "name": "Bench",
        "cost_per_hour": rate,
        "minutes_per_day": per_day,
    }
    return ok(await client.post("/v1/work-centers", json=body), 201)  # type: ignore[no-any-return]


async def test_labour_is_in_the_cost_of_finished_goods(client: httpx.AsyncClient) -> None:
    part = await create_item(client, name="Part")
    product = await create_item(client, name="Product")
    await receive(client, part["id"], 10, unit_cost="3")
    bench = await work_center(client, "45")  # 0.75 per minute
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "output_quantity": 2,
                "lines": [{"component_item_id": part["id"], "quantity": 2}],
                "operations": [
                    {
                        "sequence": 10,
                        "name": "Cut",
                        "work_center_id": bench["id"],
                        "setup_minutes": "10",
                        "run_minutes": "7.5",
                    },
                    {"sequence": 20, "name": "Check", "instructions": "Visual check"},
                ],
            },
        ),
        201,
    )
    order = await create_order(client, product["id"], 3)
    # planned = setup + run × quantity ÷ output quantity = 10 + 7.5 × 3 / 2
    assert [op["planned_minutes"] for op in order["operations"]] == ["21.25", "0"]
    order = ok(await act(client, order, "release"))
    order = ok(await act(client, order, "operations/10/start"))
    assert order["status"] == "in_progress"  # starting an operation started the order
    assert order["operations"][0]["status"] == "in_progress"
    order = ok(await act(client, order, "operations/10/time", {"minutes": "12.5", "quantity": 1}))
    order = ok(await act(client, order, "operations/10/time", {"minutes": "0.1"}))
    assert order["operations"][0]["actual_minutes"] == "12.6"
    assert order["operations"][0]["completed_quantity"] == "1"
    assert order["labour_cost"] == "9.45"  # 12.6 min × 45/h
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    # material for 1 unit backflushed (1 × 3) + a third of the labour (9.45 / 3)
    assert order["output_value"] == "6.15"
    order = ok(await act(client, order, "operations/10/complete"))
    problem(
        await act(client, order, "operations/10/time", {"minutes": 1}), 409, "invalid_transition"
    )
    problem(await act(client, order, "operations/99/start"), 404, "not_found")
    order = ok(await act(client, order, "complete"))
    assert order["material_cost"] == "9"
    assert order["labour_cost"] == "9.45"
    assert order["output_value"] == "18.45"
    assert order["unit_cost"] == "6.15"
    assert (await totals(client, product["id"]))["average_cost"] == "6.15"
    await assert_cost_balances(client, order["id"])


async def test_work_order_documents(client: httpx.AsyncClient) -> None:
    part = await create_item(client, name="Spoke")
    product = await create_item(client, name="Wheel")
    await receive(client, part["id"], 100, unit_cost="0.2")
    bench = await work_center(client, "30")
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "lines": [{"component_item_id": part["id"], "quantity": 36}],
                "operations": [
                    {
                        "sequence": 10,
                        "name": "Lace",
                        "work_center_id": bench["id"],
                        "run_minutes": 20,
                        "instructions": "Cross three pattern",
                    }
                ],
            },
        ),
        201,
    )
    order = await create_order(client, product["id"], 2)
    order = ok(await act(client, order, "release"))
    html = await client.get(f"/v1/production-orders/{order['id']}/work-order.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert order["number"] in html.text and "Cross three pattern" in html.text
    assert part["sku"] in html.text and bench["code"] in html.text
    pdf = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    import io

    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert order["number"] in text
    assert "Cross three pattern" in text
    assert part["sku"] in text
