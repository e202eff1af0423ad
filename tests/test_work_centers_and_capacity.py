"""Work centers, operation states, labour in the cost, the capacity report and the
shop-floor work order (SPEC §4, §5, §5.1, §6)."""

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from pypdf import PdfReader

from prodorder_api.orders.operations import OPERATION_ALLOWED
from prodorder_api.orders.states import ALLOWED
from tests.helpers import create_item, ok, problem, receive, totals, unique, walk
from tests.order_helpers import act, assert_cost_balances, create_order

ACTIONS = ("start", "time", "complete")
TIME = {"minutes": "1"}


async def work_center(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"code": unique("WC"), "name": "Bench", **fields}
    return ok(await client.post("/v1/work-centers", json=body), 201)  # type: ignore[no-any-return]


async def product_with_operations(
    client: httpx.AsyncClient,
    operations: list[dict[str, Any]],
    *,
    output_quantity: Any = 1,
    stock: Any = 1000,
) -> dict[str, Any]:
    """A product made from one plentiful backflushed part, with the given operations."""
    part = await create_item(client, name="Part")
    await receive(client, part["id"], stock, unit_cost="1")
    product = await create_item(client, name="Product")
    bom = ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "output_quantity": output_quantity,
                "lines": [{"component_item_id": part["id"], "quantity": 1}],
                "operations": operations,
            },
        ),
        201,
    )
    return {"part": part, "product": product, "bom": bom}


async def op_action(
    client: httpx.AsyncClient, order: dict[str, Any], sequence: int, action: str
) -> httpx.Response:
    return await act(
        client, order, f"operations/{sequence}/{action}", TIME if action == "time" else None
    )


def operation(order: dict[str, Any], sequence: int) -> dict[str, Any]:
    return next(op for op in order["operations"] if op["sequence"] == sequence)


# --- work centers -------------------------------------------------------------------


async def test_work_center_create_defaults_get_and_duplicate_code(
    client: httpx.AsyncClient,
) -> None:
    code = unique("WC")
    center = ok(await client.post("/v1/work-centers", json={"code": code, "name": "Lathe"}), 201)
    assert center["code"] == code and center["name"] == "Lathe"
    assert center["cost_per_hour"] == "0"
    assert center["minutes_per_day"] == "480"
    assert center["version"] == 1
    uuid.UUID(center["id"])
    assert ok(await client.get(f"/v1/work-centers/{center['id']}")) == center

    duplicate = await client.post("/v1/work-centers", json={"code": code, "name": "Other"})
    problem(duplicate, 409, "conflict")

    exact = await work_center(client, cost_per_hour="37.123456", minutes_per_day=450.5)
    assert exact["cost_per_hour"] == "37.123456" and exact["minutes_per_day"] == "450.5"

    for bad in (
        {"cost_per_hour": "-1"},
        {"cost_per_hour": "1.1234567"},
        {"minutes_per_day": 0},
        {"minutes_per_day": "-480"},
        {"colour": "red"},
    ):
        body = {"code": unique("WC"), "name": "Bad", **bad}
        problem(await client.post("/v1/work-centers", json=body), 422, "validation_error")
    problem(
        await client.post("/v1/work-centers", json={"name": "No code"}), 422, "validation_error"
    )


async def test_work_center_list_walks_every_row_once(client: httpx.AsyncClient) -> None:
    mine = [(await work_center(client))["id"] for _ in range(3)]
    page = ok(await client.get("/v1/work-centers", params={"limit": 1}))
    assert len(page["data"]) == 1 and page["next_cursor"]
    rows = await walk(client, "/v1/work-centers", limit=2)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert set(mine) <= set(ids)
    problem(
        await client.get("/v1/work-centers", params={"cursor": "not-a-cursor!"}),
        422,
        "validation_error",
    )


async def test_work_center_patch(client: httpx.AsyncClient) -> None:
    center = await work_center(client, cost_per_hour="60")
    path = f"/v1/work-centers/{center['id']}"
    changed = ok(await client.patch(path, json={"cost_per_hour": "90.5", "name": "Big bench"}))
    assert changed["cost_per_hour"] == "90.5" and changed["name"] == "Big bench"
    assert changed["minutes_per_day"] == "480" and changed["code"] == center["code"]
    assert changed["version"] == center["version"] + 1
    changed = ok(await client.patch(path, json={"minutes_per_day": "960"}))
    assert changed["minutes_per_day"] == "960" and changed["version"] == center["version"] + 2
    assert ok(await client.get(path)) == changed

    for field in ("code", "name", "cost_per_hour", "minutes_per_day"):
        body = problem(await client.patch(path, json={field: None}), 422, "validation_error")
        assert any(e["loc"][-1] == field for e in body["errors"]), body
    problem(await client.patch(path, json={"minutes_per_day": 0}), 422, "validation_error")
    problem(await client.patch(path, json={"unknown": 1}), 422, "validation_error")
    other = await work_center(client)
    problem(await client.patch(path, json={"code": other["code"]}), 409, "conflict")
    # nothing of the refused changes stuck
    assert ok(await client.get(path)) == changed


async def test_unknown_work_center_is_404(client: httpx.AsyncClient) -> None:
    for wc_id in (str(uuid.uuid4()), "not-a-uuid"):
        path = f"/v1/work-centers/{wc_id}"
        problem(await client.get(path), 404, "not_found")
        problem(await client.patch(path, json={"name": "X"}), 404, "not_found")
        problem(await client.delete(path), 404, "not_found")


async def test_work_center_delete_only_when_unused(client: httpx.AsyncClient) -> None:
    unused = await work_center(client)
    response = await client.delete(f"/v1/work-centers/{unused['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    problem(await client.get(f"/v1/work-centers/{unused['id']}"), 404, "not_found")
    problem(await client.delete(f"/v1/work-centers/{unused['id']}"), 404, "not_found")

    center = await work_center(client)
    made = await product_with_operations(
        client, [{"sequence": 10, "name": "Weld", "work_center_id": center["id"]}]
    )
    problem(await client.delete(f"/v1/work-centers/{center['id']}"), 409, "conflict")
    order = await create_order(client, made["product"]["id"], 1)
    assert operation(order, 10)["work_center_id"] == center["id"]
    problem(await client.delete(f"/v1/work-centers/{center['id']}"), 409, "conflict")
    assert ok(await client.get(f"/v1/work-centers/{center['id']}"))["id"] == center["id"]

    # a BOM that drops the operation before any order used it frees the work center
    freed = await work_center(client)
    later = await product_with_operations(
        client, [{"sequence": 10, "name": "Paint", "work_center_id": freed["id"]}]
    )
    problem(await client.delete(f"/v1/work-centers/{freed['id']}"), 409, "conflict")
    ok(await client.patch(f"/v1/boms/{later['bom']['id']}", json={"operations": []}))
    response = await client.delete(f"/v1/work-centers/{freed['id']}")
    assert response.status_code == 204, response.text


async def test_bom_with_unknown_work_center_is_422(client: httpx.AsyncClient) -> None:
    center = await work_center(client)
    part = await create_item(client)
    product = await create_item(client)
    missing = str(uuid.uuid4())
    response = await client.post(
        "/v1/boms",
        json={
            "item_id": product["id"],
            "lines": [{"component_item_id": part["id"], "quantity": 1}],
            "operations": [
                {"sequence": 10, "name": "Cut", "work_center_id": center["id"]},
                {"sequence": 20, "name": "Drill"},
                {"sequence": 30, "name": "Bend", "work_center_id": missing},
            ],
        },
    )
    body = problem(response, 422, "validation_error")
    assert [e["loc"] for e in body["errors"]] == [["body", "operations", 2, "work_center_id"]]
    assert ok(await client.get("/v1/boms", params={"item_id": product["id"]}))["data"] == []

    for bad in ({"setup_minutes": "-1"}, {"run_minutes": "-0.5"}, {"run_minutes": "1.0000001"}):
        op = {"sequence": 10, "name": "Cut", **bad}
        response = await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "lines": [{"component_item_id": part["id"], "quantity": 1}],
                "operations": [op],
            },
        )
        problem(response, 422, "validation_error")


# --- planned minutes ----------------------------------------------------------------


async def test_planned_minutes_are_exact_and_follow_the_quantity(
    client: httpx.AsyncClient,
) -> None:
    center = await work_center(client)
    made = await product_with_operations(
        client,
        [
            {
                "sequence": 10,
                "name": "Mill",
                "work_center_id": center["id"],
                "setup_minutes": "7.5",
                "run_minutes": "3.333333",
            },
            {"sequence": 20, "name": "Inspect", "run_minutes": "1"},
            {"sequence": 30, "name": "Pack", "setup_minutes": "2"},
        ],
        output_quantity=3,
    )
    order = await create_order(client, made["product"]["id"], 10)
    # 7.5 + 3.333333 × 10 ÷ 3 = 18.61111; 1 × 10 ÷ 3 = 3.333333 (six places)
    assert Decimal("7.5") + Decimal("3.333333") * 10 / 3 == Decimal("18.61111")
    assert [op["planned_minutes"] for op in order["operations"]] == ["18.61111", "3.333333", "2"]
    first = operation(order, 10)
    assert first["work_center_id"] == center["id"]
    assert first["name"] == "Mill" and first["instructions"] is None
    assert first["status"] == "pending"
    assert first["actual_minutes"] == "0" and first["completed_quantity"] == "0"
    assert first["started_at"] is None and first["completed_at"] is None

    path = f"/v1/production-orders/{order['id']}"
    order = ok(await client.patch(path, json={"quantity": "11"}))
    # 7.5 + 3.333333 × 11 ÷ 3 = 19.722221; 11 ÷ 3 = 3.666667
    assert [op["planned_minutes"] for op in order["operations"]] == ["19.722221", "3.666667", "2"]
    order = ok(await client.patch(path, json={"quantity": "0.3"}))
    # 7.5 + 0.333333 = 7.833333; 0.1
    assert [op["planned_minutes"] for op in order["operations"]] == ["7.833333", "0.1", "2"]
    assert ok(await client.get(path))["operations"] == order["operations"]

    order = ok(await act(client, order, "release"))
    problem(await client.patch(path, json={"quantity": "5"}), 409, "conflict")
    assert [op["planned_minutes"] for op in ok(await client.get(path))["operations"]] == [
        "7.833333",
        "0.1",
        "2",
    ]


# --- the operation state table ------------------------------------------------------


async def test_every_disallowed_operation_action_is_refused(client: httpx.AsyncClient) -> None:
    made = await product_with_operations(
        client,
        [
            {"sequence": 10, "name": "Pending"},
            {"sequence": 20, "name": "Running"},
            {"sequence": 30, "name": "Done"},
        ],
    )
    order = await create_order(client, made["product"]["id"], 1)
    order = ok(await act(client, order, "release"))
    order = ok(await act(client, order, "start"))
    order = ok(await op_action(client, order, 20, "start"))
    order = ok(await op_action(client, order, 30, "start"))
    order = ok(await op_action(client, order, 30, "complete"))
    by_status = {"pending": 10, "in_progress": 20, "done": 30}
    assert {op["sequence"]: op["status"] for op in order["operations"]} == {
        10: "pending",
        20: "in_progress",
        30: "done",
    }
    assert set(OPERATION_ALLOWED) == set(by_status)

    refused = 0
    for status, sequence in by_status.items():
        for action in ACTIONS:
            if action in OPERATION_ALLOWED[status]:  # type: ignore[index]
                continue
            response = await op_action(client, order, sequence, action)
            body = problem(response, 409, "invalid_transition")
            assert body["current_status"] == status, (status, action, body)
            assert body["allowed_actions"] == list(OPERATION_ALLOWED[status]), body  # type: ignore[index]
            refused += 1
    assert refused == sum(len(ACTIONS) - len(allowed) for allowed in OPERATION_ALLOWED.values())
    after = ok(await client.get(f"/v1/production-orders/{order['id']}"))
    assert after["version"] == order["version"]  # refusals change nothing
    assert after["operations"] == order["operations"]
    assert after["history"] == order["history"]
    assert after["labour_cost"] == "0"


async def test_allowed_operation_actions_move_bump_version_and_record_history(
    client: httpx.AsyncClient,
) -> None:
    center = await work_center(client, cost_per_hour="12")
    made = await product_with_operations(
        client,
        [
            {"sequence": 10, "name": "Cut", "work_center_id": center["id"], "run_minutes": 5},
            {"sequence": 20, "name": "Skip me"},
        ],
    )
    order = await create_order(client, made["product"]["id"], 2)
    order = ok(await act(client, order, "release"))
    order = ok(await act(client, order, "start"))

    steps: list[tuple[int, str, Any, str, str]] = [
        (10, "start", None, "operation_start", "in_progress"),
        (10, "time", {"minutes": "2.5", "quantity": 1, "note": "first"}, "operation_time", ""),
        (10, "time", {"minutes": "0.25"}, "operation_time", ""),
        (10, "complete", None, "operation_complete", "done"),
        (20, "complete", None, "operation_complete", "done"),  # pending → done directly
    ]
    for sequence, action, body, entry, status in steps:
        before = order
        order = ok(await act(client, order, f"operations/{sequence}/{action}", body))
        assert order["version"] == before["version"] + 1, (sequence, action)
        assert len(order["history"]) == len(before["history"]) + 1
        last = order["history"][-1]
        assert last["action"] == entry
        assert last["from_status"] == last["to_status"] == "in_progress"
        assert last["details"]["sequence"] == sequence
        assert order["status"] == "in_progress"
        if status:
            assert operation(order, sequence)["status"] == status
    cut = operation(order, 10)
    assert cut["actual_minutes"] == "2.75" and cut["completed_quantity"] == "1"
    assert cut["started_at"] is not None and cut["completed_at"] is not None
    assert cut["started_at"] <= cut["completed_at"]
    skipped = operation(order, 20)
    assert skipped["completed_at"] is not None and skipped["actual_minutes"] == "0"
    assert order["labour_cost"] == "0.55"  # 2.75 min × 12/h
    assert ok(await client.get(f"/v1/production-orders/{order['id']}")) == order

    for sequence in (10, 20):
        for action in ACTIONS:
            body = problem(
                await op_action(client, order, sequence, action), 409, "invalid_transition"
            )
            assert body["current_status"] == "done" and body["allowed_actions"] == []

    for path in ("operations/99/start", "operations/99/time", "operations/99/complete"):
        problem(await act(client, order, path, TIME if "time" in path else None), 404, "not_found")
    missing = {"id": str(uuid.uuid4())}
    problem(await op_action(client, missing, 10, "start"), 404, "not_found")
    problem(await act(client, order, "operations/0/start"), 422, "validation_error")
    problem(await act(client, order, "operations/abc/start"), 422, "validation_error")
    for bad in ({"minutes": 0}, {"minutes": "-1"}, {"minutes": "1", "quantity": "-1"}, {}):
        problem(await act(client, order, "operations/10/time", bad), 422, "validation_error")


async def test_operation_actions_depend_on_the_order_status(client: httpx.AsyncClient) -> None:
    made = await product_with_operations(
        client, [{"sequence": 10, "name": "Saw"}, {"sequence": 20, "name": "Sand"}]
    )
    order = await create_order(client, made["product"]["id"], 1)
    for action in ACTIONS:
        body = problem(await op_action(client, order, 10, action), 409, "invalid_transition")
        assert body["current_status"] == "planned"
        assert body["allowed_actions"] == list(ALLOWED["planned"])
    order = ok(await act(client, order, "release"))
    for action in ("time", "complete"):  # only start may start a released order
        body = problem(await op_action(client, order, 10, action), 409, "invalid_transition")
        assert body["current_status"] == "released"
        assert body["allowed_actions"] == list(ALLOWED["released"])
    unchanged = ok(await client.get(f"/v1/production-orders/{order['id']}"))
    assert unchanged["status"] == "released" and unchanged["version"] == order["version"]

    started = ok(await op_action(client, order, 10, "start"))
    assert started["status"] == "in_progress" and started["started_at"] is not None
    assert started["version"] > order["version"]
    new = started["history"][len(order["history"]) :]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in new] == [
        ("start", "released", "in_progress"),
        ("operation_start", "in_progress", "in_progress"),
    ]
    assert operation(started, 10)["status"] == "in_progress"
    assert operation(started, 20)["status"] == "pending"

    completed = ok(await act(client, started, "complete"))
    assert completed["status"] == "completed"
    # completing the order leaves unfinished operations as they are and lists them
    assert operation(completed, 10)["status"] == "in_progress"
    assert operation(completed, 20)["status"] == "pending"
    assert completed["history"][-1]["details"]["unfinished_operations"] == [10, 20]
    for action in ACTIONS:
        body = problem(await op_action(client, completed, 20, action), 409, "invalid_transition")
        assert body["current_status"] == "completed" and body["allowed_actions"] == []

    cancelled = await create_order(client, made["product"]["id"], 1)
    cancelled = ok(await act(client, cancelled, "cancel"))
    for action in ACTIONS:
        body = problem(await op_action(client, cancelled, 10, action), 409, "invalid_transition")
        assert body["current_status"] == "cancelled" and body["allowed_actions"] == []
    # an unknown sequence is 404 whatever the order's status
    problem(await op_action(client, cancelled, 77, "start"), 404, "not_found")


# --- labour in the cost -------------------------------------------------------------


async def test_time_is_valued_at_the_rate_of_the_moment(client: httpx.AsyncClient) -> None:
    center = await work_center(client, cost_per_hour="60")
    made = await product_with_operations(
        client, [{"sequence": 10, "name": "Turn", "work_center_id": center["id"]}]
    )
    order = await create_order(client, made["product"]["id"], 1)
    order = ok(await act(client, order, "release"))
    order = ok(await op_action(client, order, 10, "start"))
    order = ok(await act(client, order, "operations/10/time", {"minutes": 30}))
    assert order["labour_cost"] == "30"
    ok(await client.patch(f"/v1/work-centers/{center['id']}", json={"cost_per_hour": "90"}))
    order = ok(await act(client, order, "operations/10/time", {"minutes": "30"}))
    assert order["labour_cost"] == "75"  # 30 min × 60/h + 30 min × 90/h
    assert operation(order, 10)["actual_minutes"] == "60"
    # a later rate change does not revalue what was booked
    ok(await client.patch(f"/v1/work-centers/{center['id']}", json={"cost_per_hour": "0"}))
    order = ok(await act(client, order, "operations/10/time", {"minutes": "1"}))
    assert order["labour_cost"] == "75"
    # minutes × rate ÷ 60 to six places: 0.000001 min at 90/h is 0.0000015 → banker's 0.000002
    ok(await client.patch(f"/v1/work-centers/{center['id']}", json={"cost_per_hour": "90"}))
    order = ok(await act(client, order, "operations/10/time", {"minutes": "0.000001"}))
    assert order["labour_cost"] == "75.000002"
    order = ok(await act(client, order, "complete"))
    assert order["labour_cost"] == "75.000002"
    assert order["material_cost"] == "1"
    assert order["output_value"] == "76.000002" and order["unit_cost"] == "76.000002"
    await assert_cost_balances(client, order["id"])


async def test_outputs_relieve_labour_in_proportion(client: httpx.AsyncClient) -> None:
    center = await work_center(client, cost_per_hour="60")
    flushed = await create_item(client, name="Flushed part")
    issued = await create_item(client, name="Issued part")
    product = await create_item(client, name="Labour product")
    await receive(client, flushed["id"], 10, unit_cost="2")
    await receive(client, issued["id"], 10, unit_cost="5")
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "lines": [
                    {"component_item_id": flushed["id"], "quantity": 1},
                    {"component_item_id": issued["id"], "quantity": 1, "consumption": "manual"},
                ],
                "operations": [{"sequence": 10, "name": "Fit", "work_center_id": center["id"]}],
            },
        ),
        201,
    )
    assert (await totals(client, product["id"]))["on_hand"] == "0"
    order = await create_order(client, product["id"], 4)
    order = ok(await act(client, order, "release"))
    order = ok(await op_action(client, order, 10, "start"))
    order = ok(await act(client, order, "operations/10/time", {"minutes": 60}))
    assert order["labour_cost"] == "60"
    order = ok(
        await act(
            client, order, "consumptions", {"lines": [{"item_id": issued["id"], "quantity": 4}]}
        )
    )
    assert order["material_cost"] == "20"

    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    # backflush 1 × 2, plus a quarter of the unrelieved 20 material + 60 labour: 2 + 5 + 15
    assert order["output_value"] == "22"
    assert order["material_cost"] == "22" and order["labour_cost"] == "60"
    outputs = [
        m
        for m in ok(
            await client.get(
                "/v1/stock/movements",
                params={"production_order_id": order["id"], "type": "output"},
            )
        )["data"]
        if m["item_id"] == product["id"]
    ]
    assert [m["value"] for m in outputs] == ["22"]
    assert outputs[0]["unit_cost"] == "22"

    order = ok(await act(client, order, "operations/10/time", {"minutes": 30}))
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    # 2 backflushed + a third of (15 material + 45 labour + 30 labour) = 2 + 30
    assert order["output_value"] == "54"
    order = ok(await act(client, order, "complete"))
    assert order["status"] == "completed"
    assert order["material_cost"] == "28" and order["labour_cost"] == "90"
    assert order["output_value"] == "118" and order["scrap_value"] == "0"
    assert Decimal(order["material_cost"]) + Decimal(order["labour_cost"]) == Decimal(
        order["output_value"]
    ) + Decimal(order["scrap_value"])
    assert order["unit_cost"] == "29.5"  # (28 material + 90 labour) ÷ 4
    await assert_cost_balances(client, order["id"])
    stock = await totals(client, product["id"])
    assert stock["on_hand"] == "4"
    assert stock["average_cost"] == "29.5"
    assert ok(await client.get(f"/v1/items/{product['id']}"))["average_cost"] == "29.5"


async def test_labour_in_thirds_scrap_and_write_off_balance_exactly(
    client: httpx.AsyncClient,
) -> None:
    center = await work_center(client, cost_per_hour="60")
    made = await product_with_operations(
        client, [{"sequence": 10, "name": "Form", "work_center_id": center["id"]}]
    )
    order = await create_order(client, made["product"]["id"], 3)
    order = ok(await act(client, order, "release"))
    order = ok(await op_action(client, order, 10, "start"))
    order = ok(await act(client, order, "operations/10/time", {"minutes": 10}))
    order = ok(await act(client, order, "outputs", {"quantity": 1}))
    assert order["output_value"] == "4.333333"  # 1 backflushed + 10 ÷ 3 labour
    order = ok(await act(client, order, "scrap", {"quantity": 1, "reason": "cracked"}))
    # 1 backflushed + half of the 6.666667 left
    assert order["scrap_value"] == "4.333334"
    order = ok(await act(client, order, "complete"))
    assert Decimal(order["material_cost"]) + Decimal(order["labour_cost"]) == Decimal(
        order["output_value"]
    ) + Decimal(order["scrap_value"])
    assert order["material_cost"] == "3" and order["labour_cost"] == "10"
    assert order["output_value"] == "8.666666"
    assert order["unit_cost"] == "4.333333"
    await assert_cost_balances(client, order["id"])

    # time booked, nothing produced: the labour is written off at completion
    nothing = await create_order(client, made["product"]["id"], 2)
    nothing = ok(await act(client, nothing, "release"))
    nothing = ok(await op_action(client, nothing, 10, "start"))
    nothing = ok(await act(client, nothing, "operations/10/time", {"minutes": "7"}))
    nothing = ok(await act(client, nothing, "complete", {"output_quantity": 0}))
    assert nothing["labour_cost"] == "7" and nothing["material_cost"] == "0"
    assert nothing["output_value"] == "0" and nothing["scrap_value"] == "7"
    assert nothing["unit_cost"] is None
    await assert_cost_balances(client, nothing["id"])


# --- the capacity report ------------------------------------------------------------


async def capacity(client: httpx.AsyncClient, center: dict[str, Any], **params: Any) -> list:
    query = {"work_center_id": center["id"], **params}
    rows = ok(await client.get("/v1/reports/capacity", params=query))["data"]
    assert all(row["work_center_id"] == center["id"] for row in rows)
    return rows  # type: ignore[no-any-return]


def load(planned: str, per_day: str) -> str:
    value = (Decimal(planned) * 100 / Decimal(per_day)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return format(value.normalize(), "f") if value != 0 else "0"


async def test_capacity_report(client: httpx.AsyncClient) -> None:
    today = datetime.now(UTC).date()
    future = today + timedelta(days=40)
    past = today - timedelta(days=9)
    center = await work_center(client, minutes_per_day="420")
    made = await product_with_operations(
        client,
        [
            {
                "sequence": 10,
                "name": "Press",
                "work_center_id": center["id"],
                "setup_minutes": 10,
                "run_minutes": 5,
            },
            {"sequence": 20, "name": "Elsewhere", "run_minutes": 100},
        ],
    )
    product = made["product"]["id"]
    first = await create_order(client, product, 2, planned_start=future.isoformat())  # 20
    await create_order(client, product, 3, planned_start=future.isoformat())  # 25
    undated = await create_order(client, product, 1)  # 15, today
    overdue = await create_order(client, product, "1.5", planned_start=past.isoformat())  # 17.5

    rows = await capacity(client, center)
    assert rows == [
        {
            "work_center_id": center["id"],
            "date": today.isoformat(),
            "planned_minutes": "32.5",
            "capacity_minutes": "420",
            "load_percent": "7.74",  # 32.5 ÷ 420 × 100 = 7.738…
            "orders": 2,
        },
        {
            "work_center_id": center["id"],
            "date": future.isoformat(),
            "planned_minutes": "45",
            "capacity_minutes": "420",
            "load_percent": "10.71",  # 45 ÷ 420 × 100 = 10.714…
            "orders": 2,
        },
    ]
    assert load("45", "420") == "10.71" and load("32.5", "420") == "7.74"

    # from / to pick days
    only_future = await capacity(client, center, **{"from": future.isoformat()})
    assert [r["date"] for r in only_future] == [future.isoformat()]
    only_today = await capacity(client, center, to=today.isoformat())
    assert [r["date"] for r in only_today] == [today.isoformat()]
    both = await capacity(client, center, **{"from": today.isoformat(), "to": future.isoformat()})
    assert [r["date"] for r in both] == [today.isoformat(), future.isoformat()]
    day_after = (future + timedelta(days=1)).isoformat()
    assert await capacity(client, center, **{"from": day_after}) == []
    between = await capacity(
        client,
        center,
        **{
            "from": (today + timedelta(days=1)).isoformat(),
            "to": (future - timedelta(1)).isoformat(),
        },
    )
    assert between == []
    # the past day the overdue order was planned for shows nothing: it loads today
    assert (
        await capacity(client, center, **{"from": past.isoformat(), "to": past.isoformat()}) == []
    )

    # booking time reduces what remains
    undated = ok(await act(client, undated, "release"))
    undated = ok(await op_action(client, undated, 10, "start"))
    undated = ok(await act(client, undated, "operations/10/time", {"minutes": "4.25"}))
    today_row = (await capacity(client, center, to=today.isoformat()))[0]
    assert today_row["planned_minutes"] == "28.25"  # 10.75 + 17.5
    assert today_row["load_percent"] == load("28.25", "420") == "6.73"
    assert today_row["orders"] == 2

    # a done operation no longer loads its work center
    overdue = ok(await act(client, overdue, "release"))
    overdue = ok(await op_action(client, overdue, 10, "start"))
    overdue = ok(await op_action(client, overdue, 10, "complete"))
    today_row = (await capacity(client, center, to=today.isoformat()))[0]
    assert today_row["planned_minutes"] == "10.75" and today_row["orders"] == 1
    assert today_row["load_percent"] == load("10.75", "420") == "2.56"

    # completed and cancelled orders do not load it
    undated = ok(await act(client, undated, "complete"))
    assert await capacity(client, center, to=today.isoformat()) == []
    ok(await act(client, first, "cancel"))
    rows = await capacity(client, center)
    assert rows == [
        {
            "work_center_id": center["id"],
            "date": future.isoformat(),
            "planned_minutes": "25",
            "capacity_minutes": "420",
            "load_percent": "5.95",
            "orders": 1,
        }
    ]
    # a new capacity counts from now on
    ok(await client.patch(f"/v1/work-centers/{center['id']}", json={"minutes_per_day": "20"}))
    row = (await capacity(client, center))[0]
    assert row["capacity_minutes"] == "20" and row["load_percent"] == "125"


async def test_capacity_rows_per_work_center_and_overbooking(client: httpx.AsyncClient) -> None:
    today = datetime.now(UTC).date()
    a = await work_center(client, minutes_per_day="300")
    b = await work_center(client, minutes_per_day="480")
    made = await product_with_operations(
        client,
        [
            {"sequence": 10, "name": "A", "work_center_id": a["id"], "run_minutes": 30},
            {"sequence": 20, "name": "B", "work_center_id": b["id"], "setup_minutes": 6},
        ],
    )
    order = await create_order(client, made["product"]["id"], 2)
    other = await create_order(client, made["product"]["id"], 1)
    [row_a] = await capacity(client, a)
    [row_b] = await capacity(client, b)
    assert (row_a["date"], row_a["planned_minutes"], row_a["orders"]) == (
        today.isoformat(),
        "90",
        2,
    )
    assert row_a["load_percent"] == "30"
    assert (row_b["planned_minutes"], row_b["orders"], row_b["load_percent"]) == ("12", 2, "2.5")
    every = ok(await client.get("/v1/reports/capacity"))["data"]
    mine = [r for r in every if r["work_center_id"] in (a["id"], b["id"])]
    assert sorted(mine, key=lambda r: r["work_center_id"]) == sorted(
        [row_a, row_b], key=lambda r: r["work_center_id"]
    )

    # more time booked than planned leaves nothing remaining, never a negative load
    order = ok(await act(client, order, "release"))
    order = ok(await op_action(client, order, 10, "start"))
    order = ok(await act(client, order, "operations/10/time", {"minutes": 100}))
    [row_a] = await capacity(client, a)
    assert row_a["planned_minutes"] == "30" and row_a["load_percent"] == "10"
    ok(await act(client, other, "cancel"))
    assert await capacity(client, a) == []  # nothing remains: no row at all
    # so the overbooked order no longer loads the work center, nor counts among its orders
    assert row_a["orders"] == 1


async def test_capacity_report_rejects_bad_parameters(client: httpx.AsyncClient) -> None:
    for params in (
        {"from": "2024-13-01"},
        {"to": "tomorrow"},
        {"from": "2024-02-30"},
        {"work_center_id": "not-a-uuid"},
    ):
        body = problem(
            await client.get("/v1/reports/capacity", params=params), 422, "validation_error"
        )
        assert body["errors"][0]["loc"][0] == "query"
    unknown = ok(
        await client.get("/v1/reports/capacity", params={"work_center_id": str(uuid.uuid4())})
    )
    assert unknown == {"data": []}


# --- the work order -----------------------------------------------------------------


async def test_work_order_html_and_pdf(client: httpx.AsyncClient) -> None:
    saw = await work_center(client, name="Band saw")
    weld = await work_center(client, name="Welding")
    tube = await create_item(client, name="Tube", uom="m")
    paint = await create_item(client, name="Paint", tracking="lot")
    frame = await create_item(client, name="Frame")
    lot = unique("LOT")
    await receive(client, tube["id"], 100, unit_cost="3")
    await receive(client, paint["id"], 5, unit_cost="8", lot_code=lot)
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": frame["id"],
                "lines": [
                    {"component_item_id": tube["id"], "quantity": "2.5"},
                    {"component_item_id": paint["id"], "quantity": "0.5", "consumption": "manual"},
                ],
                "operations": [
                    {
                        "sequence": 10,
                        "name": "Cut tubes",
                        "work_center_id": saw["id"],
                        "setup_minutes": 5,
                        "run_minutes": "2.5",
                        "instructions": "Mitre 45 degrees",
                    },
                    {
                        "sequence": 20,
                        "name": "Weld joints",
                        "work_center_id": weld["id"],
                        "run_minutes": 12,
                        "instructions": "Torque < 5 Nm & check",
                    },
                    {"sequence": 30, "name": "Inspect frame"},
                ],
            },
        ),
        201,
    )
    order = await create_order(
        client, frame["id"], 4, planned_start="2031-05-06", due_date="2031-05-09"
    )
    order = ok(await act(client, order, "release"))
    [held] = next(r for r in order["requirements"] if r["component_item_id"] == paint["id"])[
        "reservations"
    ]
    assert held["lot_code"] == lot and held["quantity"] == "2"

    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.html")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert order["number"] in html
    assert frame["sku"] in html and "2031-05-06" in html and "2031-05-09" in html
    for sku in (tube["sku"], paint["sku"]):
        assert sku in html
    assert "10 m" in html  # 4 × 2.5 of tube
    assert lot in html
    for name, code, planned in (
        ("Cut tubes", saw["code"], "15"),
        ("Weld joints", weld["code"], "48"),
        ("Inspect frame", None, "0"),
    ):
        row = next(r for r in html.split("<tr>") if name in r)
        if code:
            assert code in row
        assert f">{planned}<" in row, row
    assert "Mitre 45 degrees" in html
    assert "Torque &lt; 5 Nm &amp; check" in html  # escaped, not injected
    assert "Torque < 5 Nm" not in html

    response = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert order["number"] in text
    assert "Mitre 45 degrees" in text
    assert lot in text


async def test_work_order_of_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    for order_id in (str(uuid.uuid4()), "nope"):
        for kind in ("html", "pdf"):
            response = await client.get(f"/v1/production-orders/{order_id}/work-order.{kind}")
            problem(response, 404, "not_found")


async def test_work_order_without_dates_or_operations(client: httpx.AsyncClient) -> None:
    made = await product_with_operations(client, [])
    order = await create_order(client, made["product"]["id"], 1)
    html = await client.get(f"/v1/production-orders/{order['id']}/work-order.html")
    assert html.status_code == 200 and "No operations." in html.text
    pdf = await client.get(f"/v1/production-orders/{order['id']}/work-order.pdf")
    assert pdf.status_code == 200, pdf.text
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert order["number"] in text
