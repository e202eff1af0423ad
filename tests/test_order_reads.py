"""The two order reads (``GET /v1/production-orders/{id}`` and the list).

A GET answers from the document the process keeps for the order's version; these
tests hold what it sends to the bytes pydantic renders from the ORM
(``presenter.present``, then FastAPI's serialisation), for orders in every status and
with every kind of content, after every change.
"""

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter
from sqlalchemy import text

from prodorder_api.auth import service as keys
from prodorder_api.orders import repository, service
from prodorder_api.orders.models import OrderEvent
from prodorder_api.orders.presenter import present, summary
from prodorder_api.orders.schemas import OrderOut, OrderSummary
from prodorder_api.pagination import Page, PageParams
from tests.helpers import create_item, ok, problem, receive, unique
from tests.order_helpers import act, create_order
from tests.test_events import events_after, feed_end, of_order

ORDERS = "/v1/production-orders"
# Text that JSON must escape, and text that it must not.
AWKWARD = 'say "hi" \\ back\\slash\nnew line\ttab \x01\x1f\x7f é 日本 😀 \u2028'


async def orm_rendering(app: FastAPI, order_id: str) -> bytes:
    """What the route sent before it rendered in SQL: the ORM order, ``present``, and
    FastAPI's serialisation of the response model."""
    async with app.state.sessionmaker() as session:
        order = await service.get(session, order_id)
        return TypeAdapter(OrderOut).dump_json(present(order))


def first_difference(got: bytes, expected: bytes) -> str:
    pairs = enumerate(zip(got, expected, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(got), len(expected)))
    start = max(0, at - 120)
    return f"at byte {at}:\n got {got[start : at + 80]!r}\n not {expected[start : at + 80]!r}"


async def assert_read_is_pydantics(app: FastAPI, client: httpx.AsyncClient, order_id: str) -> None:
    response = await client.get(f"{ORDERS}/{order_id}")
    assert response.status_code == 200, response.text
    expected = await orm_rendering(app, order_id)
    assert response.content == expected, first_difference(response.content, expected)
    assert response.headers["etag"] == f'"{response.json()["version"]}"'


async def shop(client: httpx.AsyncClient) -> dict[str, Any]:
    """A product from a lot-tracked resin (two lots), a frame, manually issued bolts and
    a by-product; two operations, one at a work center that costs labour."""
    resin = await create_item(client, name="Resin", tracking="lot")
    frame = await create_item(client, name="Frame")
    bolt = await create_item(client, name="Bolt")
    offcut = await create_item(client, name="Offcut")
    glue = await create_item(client, name="Glue")
    product = await create_item(client, name="Chair")
    await receive(client, resin["id"], 3, unit_cost="2", lot_code="LOT-B", expiry_date="2030-01-01")
    await receive(
        client, resin["id"], 50, unit_cost="3", lot_code="LOT-A", expiry_date="2031-01-01"
    )
    await receive(client, frame["id"], 4, unit_cost="7.25")
    await receive(client, bolt["id"], 1000, unit_cost="0.01")
    await receive(client, glue["id"], 10, unit_cost="1.5")
    center = ok(
        await client.post(
            "/v1/work-centers",
            json={"code": unique("WC"), "name": "Bench", "cost_per_hour": "37.5"},
        ),
        201,
    )
    bom = ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "output_quantity": "2",
                "lines": [
                    {"component_item_id": resin["id"], "quantity": "1.5"},
                    {"component_item_id": frame["id"], "quantity": "2"},
                    {
                        "component_item_id": bolt["id"],
                        "quantity": "8",
                        "scrap_factor": "0.05",
                        "consumption": "manual",
                    },
                ],
                "operations": [
                    {
                        "sequence": 10,
                        "name": "Cut",
                        "instructions": AWKWARD,
                        "work_center_id": center["id"],
                        "setup_minutes": "5",
                        "run_minutes": "2.5",
                    },
                    {"sequence": 20, "name": "Assemble", "run_minutes": "30"},
                ],
                "by_products": [{"item_id": offcut["id"], "quantity": "0.25"}],
            },
        ),
        201,
    )
    return {
        "resin": resin,
        "frame": frame,
        "bolt": bolt,
        "glue": glue,
        "product": product,
        "bom": bom,
    }


async def product_with_bom(client: httpx.AsyncClient) -> dict[str, Any]:
    product = await create_item(client)
    part = await create_item(client)
    bom = {"item_id": product["id"], "lines": [{"component_item_id": part["id"], "quantity": 1}]}
    ok(await client.post("/v1/boms", json=bom), 201)
    return product


async def orders_in_every_status(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    s = await shop(client)
    product = s["product"]["id"]
    orders: dict[str, dict[str, Any]] = {}
    orders["planned, nothing optional"] = await create_order(client, product, 1)
    planned = await create_order(
        client,
        product,
        "2.5",
        due_date="0001-01-01",
        planned_start="9999-12-31",
        priority=-7,
        reference=unique("ref-é"),
        notes=AWKWARD,
    )
    patch = {"quantity": "3", "notes": AWKWARD + " (changed)", "priority": 1000}
    orders["planned, changed"] = ok(await client.patch(f"{ORDERS}/{planned['id']}", json=patch))

    # Six need 4.5 resin (all 3 of the early lot, then the late one) and 6 of the 4 frames.
    short = await create_order(client, product, 6)
    orders["released short"] = ok(await act(client, short, "release", {"allow_shortage": True}))
    await receive(client, s["frame"]["id"], 20, unit_cost="7.5")

    busy = await create_order(client, product, 2, reference="busy")
    await act(client, busy, "release")
    ok(await act(client, busy, "operations/10/start"))
    note = {"minutes": "12.5", "quantity": "1", "note": AWKWARD}
    ok(await act(client, busy, "operations/10/time", note))
    consume = {"lines": [{"item_id": s["bolt"]["id"], "quantity": "3"}]}
    ok(await act(client, busy, "consumptions", consume))
    outside = {"lines": [{"item_id": s["glue"]["id"], "quantity": "0.5"}]}
    ok(await act(client, busy, "consumptions", outside))  # not in the BOM
    ok(await act(client, busy, "outputs", {"quantity": "1"}))
    orders["in progress"] = ok(await act(client, busy, "scrap", {"quantity": "0.5", "reason": "é"}))

    done = await create_order(client, product, "3")
    await act(client, done, "release")
    await act(client, done, "start")
    ok(await act(client, done, "operations/10/start"))
    ok(await act(client, done, "operations/10/time", {"minutes": "30"}))
    ok(await act(client, done, "operations/20/start"))
    ok(await act(client, done, "operations/20/complete"))
    orders["completed"] = ok(await act(client, done, "complete", {"output_quantity": "3"}))

    dropped = await create_order(client, product, 1)
    await act(client, dropped, "release")
    orders["cancelled"] = ok(await act(client, dropped, "cancel", {"reason": AWKWARD}))
    return orders


async def test_an_order_reads_as_pydantic_renders_it_in_every_status(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    orders = await orders_in_every_status(client)
    statuses = {order["status"] for order in orders.values()}
    assert statuses == {"planned", "released", "in_progress", "completed", "cancelled"}
    lots = orders["released short"]["requirements"][0]["reservations"]
    assert {r["lot_code"] for r in lots} == {"LOT-A", "LOT-B"}
    assert orders["in progress"]["unit_cost"] is not None
    assert any(not r["in_bom"] for r in orders["in progress"]["requirements"])
    assert orders["completed"]["labour_cost"] != "0"
    for name, order in orders.items():
        try:
            await assert_read_is_pydantics(app, client, order["id"])
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


@pytest.mark.postgres_only  # the edges are written with PostgreSQL's SQL
async def test_values_at_the_edges_read_as_pydantic_renders_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Values the API does not make on its own, written straight into the database: whole
    seconds, infinite timestamps, a seven-digit number, extreme decimals, details of every
    JSON kind."""
    s = await shop(client)
    order = await create_order(client, s["product"]["id"], "999999999.999999")
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE production_orders "
                "SET number = 9000000 + nextval('production_order_number_seq'), "
                "created_at = '2026-01-02T03:04:05Z', released_at = '2026-01-02T03:04:05.1Z', "
                "started_at = '0001-01-01T00:00:00.000001Z', "
                "completed_at = '9999-12-31T23:59:59.999999Z', "
                "cancelled_at = '-infinity', "
                "scrapped_quantity = 0.000001, material_cost = 123456789012.5 WHERE id = :id"
            ),
            {"id": uuid.UUID(order["id"])},
        )
        await session.execute(
            text(
                "UPDATE order_operations SET started_at = 'infinity', "
                "completed_at = '2026-01-02T03:04:05.000010Z' WHERE order_id = :id"
            ),
            {"id": uuid.UUID(order["id"])},
        )
        session.add(
            OrderEvent(
                order_id=uuid.UUID(order["id"]),
                action="update",  # history records only the actions of HistoryAction
                from_status="planned",
                to_status="planned",
                details={
                    "float": 1.5,
                    "huge": 1e16,
                    "tiny": 1e-7,
                    "int": 10**20,
                    "nested": {"list": [1, {"none": None}, [True, False]], "empty": {}},
                    "text": AWKWARD,
                },
            )
        )
        session.add(
            OrderEvent(
                order_id=uuid.UUID(order["id"]),
                action="update",  # history records only the actions of HistoryAction
                from_status="planned",
                to_status="planned",
                details={},
            )
        )
    await assert_read_is_pydantics(app, client, order["id"])


@pytest.mark.postgres_only  # the figures are written with PostgreSQL's SQL
async def test_unit_cost_rounds_half_to_even_as_money_div_does(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    s = await shop(client)
    order = await create_order(client, s["product"]["id"], 1)
    cases = [
        ("0.000001", "2"),  # exactly half: to the even 0
        ("0.000003", "2"),  # exactly half: to the even 0.000002
        ("0.000005", "2"),
        ("1", "3"),
        ("2", "3"),
        ("10", "0.000007"),
        ("999999999.999999", "0.000001"),
        ("0", "5"),
        ("-0.000001", "2"),
        ("-0.000003", "2"),
        ("-2", "3"),
        ("5", "0"),
        ("5", "-1"),
    ]
    for value, produced in cases:
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                text(
                    # As every change must (the ETag and the GET's kept documents
                    # rely on it), this one bumps the version.
                    "UPDATE production_orders SET output_value = CAST(:v AS numeric), "
                    "produced_quantity = CAST(:p AS numeric), version = version + 1 "
                    "WHERE id = :id"
                ),
                {"v": value, "p": produced, "id": uuid.UUID(order["id"])},
            )
        try:
            await assert_read_is_pydantics(app, client, order["id"])
        except AssertionError as exc:
            raise AssertionError(f"{value} / {produced}: {exc}") from exc
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE production_orders SET output_value = 0, produced_quantity = 0 "
                "WHERE id = :id"
            ),
            {"id": uuid.UUID(order["id"])},
        )


async def orm_page(app: FastAPI, params: PageParams, **filters: Any) -> bytes:
    """The list page as the route rendered it before: ORM rows, ``summary``, ``Page``."""
    async with app.state.sessionmaker() as session:
        rows, cursor = await repository.list_orders(
            session,
            params,
            filters.get("statuses") or (),
            filters.get("item_id"),
            filters.get("reference"),
            filters.get("due_before"),
            filters.get("due_after"),
            filters.get("updated_after"),
            filters.get("production_plan_id"),
        )
    page = {"data": [summary(row) for row in rows], "next_cursor": cursor}
    adapter = TypeAdapter(Page[OrderSummary])
    return adapter.dump_json(adapter.validate_python(page))


async def test_list_pages_read_as_pydantic_renders_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    orders = await orders_in_every_status(client)
    item_id = uuid.UUID(orders["completed"]["item_id"])
    walks = [
        ({"item_id": str(item_id)}, {"item_id": item_id}),
        (
            {"item_id": str(item_id), "status": ["planned", "in_progress"]},
            {"item_id": item_id, "statuses": ["planned", "in_progress"]},
        ),
        ({"reference": "busy", "item_id": str(item_id)}, {"reference": "busy", "item_id": item_id}),
    ]
    for query, filters in walks:
        cursor = None
        while True:
            params = {"limit": 2, **query, **({"cursor": cursor} if cursor else {})}
            response = await client.get(ORDERS, params=params)
            assert response.status_code == 200, response.text
            assert "etag" not in response.headers
            expected = await orm_page(app, PageParams(limit=2, cursor=cursor), **filters)
            assert response.content == expected, query
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break


async def test_the_read_answers_with_its_etag_and_headers_in_order(
    client: httpx.AsyncClient,
) -> None:
    product = await create_item(client)
    components = await create_item(client)
    bom = {
        "item_id": product["id"],
        "lines": [{"component_item_id": components["id"], "quantity": 1}],
    }
    ok(await client.post("/v1/boms", json=bom), 201)
    order = await create_order(client, product["id"], 2)
    response = await client.get(f"{ORDERS}/{order['id']}")
    assert response.json() == order
    names = [name for name, _ in response.headers.items() if name != "x-request-id"]
    assert names == ["content-length", "content-type", "etag"]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"1"'


async def test_a_read_on_a_key_just_looked_up_runs_on_the_requests_connection(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A key not in the cache is looked up through the request's session, which then holds
    a connection: the read runs on that one rather than taking a second from the pool."""
    order = await create_order(client, (await product_with_bom(client))["id"], 3)
    async with app.state.sessionmaker() as session, session.begin():
        _, token = await keys.create(session, unique("reader"), "read")
    fresh = {"Authorization": f"Bearer {token}"}
    response = await client.get(f"{ORDERS}/{order['id']}", headers=fresh)
    assert response.status_code == 200
    assert response.content == await orm_rendering(app, order["id"])
    listed = await client.get(ORDERS, params={"item_id": order["item_id"]}, headers=fresh)
    assert [row["id"] for row in listed.json()["data"]] == [order["id"]]


async def test_reading_an_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    for order_id in (str(uuid.uuid4()), "not-an-id", "x" * 65):
        body = problem(await client.get(f"{ORDERS}/{order_id}"), 404, "not_found")
        assert body["detail"] == f"no production order with id {order_id}"


async def test_a_list_page_has_no_etag(client: httpx.AsyncClient) -> None:
    response = await client.get(ORDERS, params={"limit": 1})
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert response.headers["content-type"] == "application/json"


async def test_a_get_naming_the_current_version_is_304_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    order = await create_order(client, (await product_with_bom(client))["id"], 3)
    url = f"{ORDERS}/{order['id']}"
    for tag in ('"1"', 'W/"1"', '"7", "1"', "*"):
        response = await client.get(url, headers={"If-None-Match": tag})
        assert response.status_code == 304, tag
        assert response.content == b""
        assert response.headers["etag"] == '"1"'
    for tag in ('"2"', "not a tag"):
        response = await client.get(url, headers={"If-None-Match": tag})
        assert response.status_code == 200, tag
        assert response.json() == order
    ok(await act(client, order, "release", {"allow_shortage": True}))
    moved = await client.get(url, headers={"If-None-Match": '"1"'})
    assert moved.status_code == 200
    assert moved.json()["status"] == "released"
    assert moved.headers["etag"] == '"2"'


async def test_a_get_needs_a_key_like_every_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The kept document is behind the route's own authentication: no key, a wrong one
    and a revoked one are refused even for an order read a moment ago."""
    order = await create_order(client, (await product_with_bom(client))["id"], 3)
    url = f"{ORDERS}/{order['id']}"
    assert (await client.get(url)).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        key, token = await keys.create(session, unique("reader"), "read")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(url, headers=headers)).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        await keys.revoke(session, str(key.id))  # revoked in this process: at once
    problem(await client.get(url, headers=headers), 401, "unauthorized")
    wrong = {"Authorization": "Bearer po_wrong"}
    problem(await client.get(url, headers=wrong), 401, "unauthorized")
    problem(await client.get(url, headers={"Authorization": ""}), 401, "unauthorized")
    problem(await client.get(url, headers={"Authorization": "Basic x"}), 401, "unauthorized")


async def test_each_action_answers_and_announces_the_order_as_get_then_shows_it(
    client: httpx.AsyncClient,
) -> None:
    """An action renders its answer after writing its changes (on PostgreSQL partly past
    the unit of work, then in SQL with only the collections it used loaded; a new order
    from memory) and its event reuses that document: both must be what a GET right
    after shows, byte for byte, with every kind of content."""
    s = await shop(client)
    start = await feed_end(client)
    order: dict[str, Any] = {}

    async def create() -> httpx.Response:
        return await client.post(ORDERS, json={"item_id": s["product"]["id"], "quantity": "3"})

    bolts = {"lines": [{"item_id": s["bolt"]["id"], "quantity": "2"}]}
    steps = [
        ("create", create),
        ("release", lambda: act(client, order, "release")),
        ("start", lambda: act(client, order, "start")),
        ("operation start", lambda: act(client, order, "operations/10/start")),
        ("time", lambda: act(client, order, "operations/10/time", {"minutes": "7.5"})),
        ("consume", lambda: act(client, order, "consumptions", bolts)),
        ("output", lambda: act(client, order, "outputs", {"quantity": "1"})),
        ("complete", lambda: act(client, order, "complete")),
    ]
    answers = []
    for name, step in steps:
        response = await step()
        assert response.status_code in (200, 201), f"{name}: {response.text}"
        order = response.json()
        shown = await client.get(f"{ORDERS}/{order['id']}")
        assert response.content == shown.content, f"{name}: " + first_difference(
            response.content, shown.content
        )
        assert response.headers["etag"] == shown.headers["etag"] == f'"{order["version"]}"'
        answers.append((name, order))
    assert order["status"] == "completed"
    assert len(order["history"]) == len(steps)
    assert [op["status"] for op in order["operations"]] == ["in_progress", "pending"]
    announced = of_order(await events_after(client, start), order["id"])
    by_version = {data["version"]: data for _, data in announced}
    for name, answer in answers:
        # Each answer is the order as it was then: the event of the same version.
        assert by_version[answer["version"]] == answer, name
    assert announced[-1] == ("production_order.completed", order)
