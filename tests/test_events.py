"""The outbox and its feed (SPEC §7): every change writes an event in its own
transaction, `data` is the resource as GET showed it then, and the feed, in commit
order, never skips an event however late it commits."""

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from prodorder_api.events import service as events
from prodorder_api.events.models import Event
from prodorder_api.stock import service as stock
from prodorder_api.stock.schemas import ReceiptCreate
from tests.helpers import (
    adjust,
    balances,
    create_item,
    create_location,
    ok,
    problem,
    receive,
    walk,
)
from tests.order_helpers import act, bicycle, create_order
from tests.test_integration_basics import new_key

ORDER_EVENT = "production_order."


async def feed_end(client: httpx.AsyncClient) -> str | None:
    """The cursor after the last event so far (None: the feed is empty)."""
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"after": cursor} if cursor else {})}
        page = ok(await client.get("/v1/events", params=params))
        if not page["data"]:
            return cursor
        cursor = page["next_cursor"]


async def events_after(
    client: httpx.AsyncClient, cursor: str | None, **params: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        query = {"limit": 500, **params, **({"after": cursor} if cursor else {})}
        page = ok(await client.get("/v1/events", params=query))
        if not page["data"]:
            assert page["next_cursor"] is None
            return rows
        rows.extend(page["data"])
        cursor = page["next_cursor"]


def of_order(rows: list[dict[str, Any]], order_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e["type"], e["data"])
        for e in rows
        if e["type"].startswith(ORDER_EVENT) and e["data"]["id"] == order_id
    ]


def of_item(rows: list[dict[str, Any]], item_id: str) -> list[dict[str, Any]]:
    return [
        e["data"] for e in rows if e["type"] == "stock.changed" and e["data"]["item_id"] == item_id
    ]


async def get_order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/production-orders/{order_id}"))  # type: ignore[no-any-return]


async def test_an_orders_lifecycle_is_in_the_feed_in_order_as_get_showed_it(
    client: httpx.AsyncClient,
) -> None:
    b = await bicycle(client)
    start = await feed_end(client)
    order = await create_order(client, b["bike"]["id"], 3, reference="SHOP-EVENTS")
    expected = [("production_order.created", await get_order(client, order["id"]))]
    for action, body, types in [
        ("release", None, ["released"]),
        ("start", None, ["started"]),
        ("outputs", {"quantity": 1}, ["output_recorded"]),
        ("operations/10/complete", None, ["operation_completed"]),
        ("complete", None, ["output_recorded", "completed"]),
    ]:
        ok(await act(client, order, action, body))
        now = await get_order(client, order["id"])
        expected += [(ORDER_EVENT + t, now) for t in types]

    rows = await events_after(client, start)
    assert of_order(rows, order["id"]) == expected
    assert expected[-1][1]["status"] == "completed"
    for event in rows:
        assert set(event) == {"id", "type", "created_at", "data"}
    assert len({e["id"] for e in rows}) == len(rows)
    # Stock moved too: the reservations on release, the backflush and the receipts.
    assert of_item(rows, b["frame"]["id"]) and of_item(rows, b["bike"]["id"])


async def test_actions_without_a_type_of_their_own_emit_updated(
    client: httpx.AsyncClient,
) -> None:
    b = await bicycle(client)
    start = await feed_end(client)
    order = await create_order(client, b["bike"]["id"], 1)
    ok(await client.patch(f"/v1/production-orders/{order['id']}", json={"notes": "rush"}))
    for action, body in [
        ("release", None),
        ("unrelease", None),
        ("release", None),
        ("operations/10/start", None),  # starts the order: `started` only
        ("operations/10/time", {"minutes": 5}),
        ("cancel", {"reason": "customer withdrew"}),
    ]:
        ok(await act(client, order, action, body))
    types = [
        t.removeprefix(ORDER_EVENT)
        for t, _ in of_order(await events_after(client, start), order["id"])
    ]
    assert types == [
        "created",
        "updated",
        "released",
        "updated",
        "released",
        "started",
        "updated",
        "cancelled",
    ]


async def test_stock_changed_shows_the_balances_and_movements_as_get_does(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    elsewhere = await create_location(client)
    start = await feed_end(client)
    received = await receive(client, item["id"], "10.5", unit_cost="2")
    first = await balances(client, item_id=item["id"])
    moved = ok(
        await client.post(
            "/v1/stock/transfers",
            json={
                "item_id": item["id"],
                "quantity": "4",
                "from_location_id": first[0]["location_id"],
                "to_location_id": elsewhere["id"],
            },
        ),
        201,
    )
    after = await balances(client, item_id=item["id"])

    changes = of_item(await events_after(client, start, types="stock.changed"), item["id"])
    assert len(changes) == 2
    assert changes[0] == {
        "item_id": item["id"],
        "balances": first,
        "movements": received["movements"],
    }
    assert changes[1]["movements"] == moved["movements"]
    key = lambda b: (b["location_id"], b["lot_code"])  # noqa: E731
    assert sorted(changes[1]["balances"], key=key) == sorted(after, key=key)


async def test_a_refused_or_rolled_back_request_leaves_no_event(
    client: httpx.AsyncClient,
) -> None:
    component = await create_item(client)
    product = await create_item(client, tracking="serial")
    ok(
        await client.post(
            "/v1/boms",
            json={
                "item_id": product["id"],
                "lines": [{"component_item_id": component["id"], "quantity": 1}],
            },
        ),
        201,
    )
    order = await create_order(client, product["id"], 2)
    start = await feed_end(client)

    problem(await adjust(client, component["id"], -1), 409, "insufficient_stock")
    problem(await act(client, order, "release"), 409, "insufficient_stock")
    assert await events_after(client, start) == []

    await receive(client, component["id"], 5)
    ok(await act(client, order, "release"))
    ok(await act(client, order, "start"))
    start = await feed_end(client)
    # The backflush succeeds (and registers its stock.changed) before the output is
    # refused for too few serials: the whole request rolls back, its events with it.
    response = await act(client, order, "complete", {"serials": ["SN-1"]})
    problem(response, 422, "validation_error")
    assert await events_after(client, start) == []
    assert (await get_order(client, order["id"]))["status"] == "in_progress"


async def test_an_idempotent_replay_writes_no_second_event(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    start = await feed_end(client)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"item_id": item["id"], "quantity": 3}
    first = ok(await client.post("/v1/stock/receipts", json=body, headers=headers), 201)
    again = await client.post("/v1/stock/receipts", json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first
    assert len(of_item(await events_after(client, start), item["id"])) == 1


async def test_the_feed_pages_with_after_oldest_first_each_event_once(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    start = await feed_end(client)
    for quantity in range(1, 8):
        await receive(client, item["id"], quantity)
    everything = await events_after(client, start)
    received = [d["movements"][0]["quantity"] for d in of_item(everything, item["id"])]
    assert received == [str(q) for q in range(1, 8)]

    paged: list[dict[str, Any]] = []
    cursor = start
    while True:
        page = ok(
            await client.get(
                "/v1/events", params={"limit": 2, **({"after": cursor} if cursor else {})}
            )
        )
        if not page["data"]:
            break
        assert len(page["data"]) <= 2 and isinstance(page["next_cursor"], str)
        paged += page["data"]
        cursor = page["next_cursor"]
    assert paged == everything
    # `cursor` works like `after`, as on every list; walking it ends with null.
    assert (await walk(client, "/v1/events", limit=3, cursor=start))[
        : len(everything)
    ] == everything
    # Caught up: empty data, null next_cursor; the last cursor stays valid for later.
    assert ok(await client.get("/v1/events", params={"after": cursor})) == {
        "data": [],
        "next_cursor": None,
    }
    await receive(client, item["id"], 8)
    later = ok(await client.get("/v1/events", params={"after": cursor}))["data"]
    assert [e["data"]["movements"][0]["quantity"] for e in later] == ["8"]


async def test_the_feed_filters_by_type_and_refuses_bad_input(client: httpx.AsyncClient) -> None:
    b = await bicycle(client)
    start = await feed_end(client)
    order = await create_order(client, b["bike"]["id"], 1)
    ok(await act(client, order, "release"))
    wanted = ["production_order.created", "production_order.released"]
    rows = await events_after(client, start, types=wanted)
    assert [e["type"] for e in rows] == wanted

    problem(
        await client.get("/v1/events", params={"types": "order.shipped"}), 422, "validation_error"
    )
    for bad in ("abc", "-1", "1.5", "9" * 40):
        problem(await client.get("/v1/events", params={"after": bad}), 422, "validation_error")
    problem(await client.get("/v1/events", params={"limit": 501}), 422, "validation_error")


async def test_the_feed_needs_a_key_and_read_is_enough(
    app: FastAPI, anon_client: httpx.AsyncClient
) -> None:
    problem(await anon_client.get("/v1/events"), 401, "unauthorized")
    read = await new_key(app, "read")
    ok(await anon_client.get("/v1/events", params={"limit": 1}, headers=read))


async def test_events_follow_their_transaction_outside_requests_too(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A script's commit writes its events without ``write_pending``; a rollback drops
    them."""
    item = await create_item(client)
    start = await feed_end(client)
    receipt = ReceiptCreate(item_id=uuid.UUID(item["id"]), quantity="2")
    async with app.state.sessionmaker() as session:
        await session.begin()
        await stock.receive(session, receipt)
        assert [t for t, _ in events.pending(session)] == ["stock.changed"]
        await session.rollback()
        assert events.pending(session) == []
    async with app.state.sessionmaker() as session, session.begin():
        [movement] = await stock.receive(session, receipt)
    [change] = of_item(await events_after(client, start), item["id"])
    assert [m["id"] for m in change["movements"]] == [str(movement.id)]


@pytest.mark.postgres_only
async def test_an_event_that_commits_late_is_not_skipped(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Transaction A writes its event first and commits last; a reader that already
    paged past B's later-id event still gets A's."""
    early, late = await create_item(client), await create_item(client)
    start = await feed_end(client)
    async with app.state.sessionmaker() as slow:
        await slow.begin()
        await stock.receive(slow, ReceiptCreate(item_id=uuid.UUID(early["id"]), quantity="1"))
        await events.write_pending(slow)  # its event id is older than B's ...

        await receive(client, late["id"], 1)  # ... B commits first
        seen = await events_after(client, start)
        assert [d["item_id"] for d in of_item(seen, late["id"])] == [late["id"]]
        assert not of_item(seen, early["id"])
        cursor = await feed_end(client)
        await slow.commit()

    after = await events_after(client, cursor)
    assert [d["item_id"] for d in of_item(after, early["id"])] == [early["id"]]
    # In the feed A comes after B, though its id is smaller: commit order, not id order.
    ordered = [e for e in await events_after(client, start) if e["type"] == "stock.changed"]
    assert [e["data"]["item_id"] for e in ordered] == [late["id"], early["id"]]
    assert ordered[1]["id"] < ordered[0]["id"]


async def test_positions_have_no_gaps(app: FastAPI, client: httpx.AsyncClient) -> None:
    await feed_end(client)  # sequences everything committed so far
    async with app.state.sessionmaker() as session:
        top = await events.last_position(session)
        count = await session.scalar(select(func.count(Event.position)))
    assert top == count
