"""Lots and serial numbers: what a receipt needs, what an issue takes, what moves.

Lot-tracked stock is issued FEFO (earliest expiry, then the oldest receipt) unless a
lot is named; serial-tracked stock is one distinct serial per unit. Every refused
request leaves stock, ledger, lots and serials exactly as they were.
"""

import uuid
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from prodorder_api.stock.models import Lot, SerialNumber
from tests.helpers import (
    adjust,
    assert_ledger_matches_balances,
    balances,
    create_item,
    create_location,
    main_location,
    movements,
    ok,
    problem,
    receive,
    totals,
)


async def transfer(
    client: httpx.AsyncClient, item_id: str, quantity: Any, source: str, target: str, **fields: Any
) -> httpx.Response:
    body = {
        "item_id": item_id,
        "quantity": quantity,
        "from_location_id": source,
        "to_location_id": target,
        **fields,
    }
    return await client.post("/v1/stock/transfers", json=body)


def invalid(response: httpx.Response, *loc: str) -> dict[str, Any]:
    body = problem(response, 422, "validation_error")
    assert list(loc) in [e["loc"] for e in body["errors"]], body
    return body


async def serials(app: FastAPI, item_id: str) -> dict[str, str | None]:
    """Every serial the item ever had, and where it is now (None: out of stock)."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(SerialNumber.serial, SerialNumber.location_id).where(
                SerialNumber.item_id == uuid.UUID(item_id)
            )
        )
        return {serial: str(location) if location else None for serial, location in rows}


async def in_stock(app: FastAPI, item_id: str) -> dict[str, str]:
    return {s: loc for s, loc in (await serials(app, item_id)).items() if loc is not None}


async def lots(app: FastAPI, item_id: str) -> list[tuple[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(Lot.code, Lot.expiry_date)
            .where(Lot.item_id == uuid.UUID(item_id))
            .order_by(Lot.code)
        )
        return [tuple(row) for row in rows]


async def snapshot(app: FastAPI, client: httpx.AsyncClient, item_id: str) -> Any:
    """Everything a refused request must leave alone."""
    return (
        await movements(client, item_id=item_id),
        sorted(
            (await balances(client, item_id=item_id)),
            key=lambda b: (b["location_id"], b["lot_code"] or ""),
        ),
        await totals(client, item_id),
        ok(await client.get(f"/v1/items/{item_id}")),
        await serials(app, item_id),
        await lots(app, item_id),
    )


async def by_lot(client: httpx.AsyncClient, item_id: str, location_id: str) -> dict[str, str]:
    rows = await balances(client, item_id=item_id, location_id=location_id)
    return {b["lot_code"]: b["on_hand"] for b in rows}


def taken(operation: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(m["type"], m["lot_code"], m["quantity"]) for m in operation["movements"]]


# --- lots -----------------------------------------------------------------------


async def receive_three_lots(client: httpx.AsyncClient, item_id: str, location_id: str) -> None:
    """A expires later, B earlier, C never; received in the order A, B, C."""
    await receive(
        client, item_id, 5, location_id=location_id, lot_code="A", expiry_date="2031-06-30"
    )
    await receive(
        client, item_id, 5, location_id=location_id, lot_code="B", expiry_date="2030-01-31"
    )
    await receive(client, item_id, 5, location_id=location_id, lot_code="C")


async def test_lot_tracked_receipt_without_a_lot_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="lot")
    await receive(client, item["id"], 2, lot_code="A")
    before = await snapshot(app, client, item["id"])
    response = await client.post("/v1/stock/receipts", json={"item_id": item["id"], "quantity": 3})
    invalid(response, "body", "lot_code")
    invalid(await adjust(client, item["id"], 1), "body", "lot_code")  # a gain needs a lot too
    assert await snapshot(app, client, item["id"]) == before


async def test_untracked_item_refuses_a_lot_code(app: FastAPI, client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    main = await main_location(client)
    store = await create_location(client)
    await receive(client, item["id"], 5)
    before = await snapshot(app, client, item["id"])

    response = await client.post(
        "/v1/stock/receipts", json={"item_id": item["id"], "quantity": 1, "lot_code": "X"}
    )
    invalid(response, "body", "lot_code")
    invalid(await adjust(client, item["id"], -1, lot_code="X"), "body", "lot_code")
    invalid(await adjust(client, item["id"], 1, lot_code="X"), "body", "lot_code")
    response = await transfer(client, item["id"], 1, main["id"], store["id"], lot_code="X")
    invalid(response, "body", "lot_code")
    assert await snapshot(app, client, item["id"]) == before


async def test_issue_without_a_lot_takes_earliest_expiry_first(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="lot")
    main = await main_location(client)
    await receive_three_lots(client, item["id"], main["id"])
    assert await lots(app, item["id"]) == [
        ("A", date(2031, 6, 30)),
        ("B", date(2030, 1, 31)),
        ("C", None),
    ]

    first = ok(await adjust(client, item["id"], -7), 201)
    assert taken(first) == [("adjustment", "B", "-5"), ("adjustment", "A", "-2")]
    assert await by_lot(client, item["id"], main["id"]) == {"A": "3", "B": "0", "C": "5"}

    second = ok(await adjust(client, item["id"], -4), 201)
    assert taken(second) == [("adjustment", "A", "-3"), ("adjustment", "C", "-1")]
    assert await by_lot(client, item["id"], main["id"]) == {"A": "0", "B": "0", "C": "4"}

    before = await snapshot(app, client, item["id"])
    problem(await adjust(client, item["id"], -5), 409, "insufficient_stock")
    assert await snapshot(app, client, item["id"]) == before

    assert (await totals(client, item["id"]))["on_hand"] == "4"
    await assert_ledger_matches_balances(client, item["id"])


async def test_lots_without_expiry_go_oldest_receipt_first(client: httpx.AsyncClient) -> None:
    item = await create_item(client, tracking="lot")
    await receive(client, item["id"], 2, lot_code="Z-OLD")
    await receive(client, item["id"], 2, lot_code="A-NEW")  # sorts first by name, not by age
    await receive(client, item["id"], 2, lot_code="Z-OLD")  # more of the old lot: still old
    made = ok(await adjust(client, item["id"], -5), 201)
    assert taken(made) == [("adjustment", "Z-OLD", "-4"), ("adjustment", "A-NEW", "-1")]
    await assert_ledger_matches_balances(client, item["id"])


async def test_issue_naming_a_lot_takes_only_from_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="lot")
    main = await main_location(client)
    await receive_three_lots(client, item["id"], main["id"])

    made = ok(await adjust(client, item["id"], -2, lot_code="C"), 201)
    assert taken(made) == [("adjustment", "C", "-2")]
    assert await by_lot(client, item["id"], main["id"]) == {"A": "5", "B": "5", "C": "3"}

    before = await snapshot(app, client, item["id"])
    body = problem(await adjust(client, item["id"], -4, lot_code="C"), 409, "insufficient_stock")
    assert body["shortages"][0]["lot_code"] == "C"
    assert body["shortages"][0]["available"] == "3"
    assert await snapshot(app, client, item["id"]) == before  # nothing taken from A or B

    made = ok(await adjust(client, item["id"], "-0.5", lot_code="A"), 201)
    assert taken(made) == [("adjustment", "A", "-0.5")]
    assert await by_lot(client, item["id"], main["id"]) == {"A": "4.5", "B": "5", "C": "3"}
    await assert_ledger_matches_balances(client, item["id"])


async def test_transfer_without_a_lot_picks_fefo_and_keeps_the_lots(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="lot")
    main = await main_location(client)
    store = await create_location(client)
    await receive_three_lots(client, item["id"], main["id"])
    value = (await totals(client, item["id"]))["value"]

    moved = ok(await transfer(client, item["id"], 6, main["id"], store["id"]), 201)
    assert [
        (m["type"], m["lot_code"], m["quantity"], m["location_id"]) for m in moved["movements"]
    ] == [
        ("transfer_out", "B", "-5", main["id"]),
        ("transfer_in", "B", "5", store["id"]),
        ("transfer_out", "A", "-1", main["id"]),
        ("transfer_in", "A", "1", store["id"]),
    ]
    assert await by_lot(client, item["id"], main["id"]) == {"A": "4", "B": "0", "C": "5"}
    assert await by_lot(client, item["id"], store["id"]) == {"A": "1", "B": "5"}

    named = ok(await transfer(client, item["id"], 2, main["id"], store["id"], lot_code="C"), 201)
    assert taken(named) == [("transfer_out", "C", "-2"), ("transfer_in", "C", "2")]
    assert await by_lot(client, item["id"], store["id"]) == {"A": "1", "B": "5", "C": "2"}

    before = await snapshot(app, client, item["id"])
    response = await transfer(client, item["id"], 8, main["id"], store["id"])
    problem(response, 409, "insufficient_stock")  # only 7 left at MAIN
    assert await snapshot(app, client, item["id"]) == before

    assert (await totals(client, item["id"]))["value"] == value
    await assert_ledger_matches_balances(client, item["id"])


# --- serials --------------------------------------------------------------------


async def test_serial_receipt_needs_one_distinct_serial_per_unit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="serial")
    await receive(client, item["id"], 1, serials=["S0"])
    before = await snapshot(app, client, item["id"])

    async def refused(quantity: Any, numbers: list[str] | None, field: str) -> None:
        body: dict[str, Any] = {"item_id": item["id"], "quantity": quantity}
        if numbers is not None:
            body["serials"] = numbers
        invalid(await client.post("/v1/stock/receipts", json=body), "body", field)
        assert await snapshot(app, client, item["id"]) == before

    await refused(3, None, "serials")
    await refused(3, ["S1", "S2"], "serials")
    await refused(2, ["S1", "S2", "S3"], "serials")
    await refused(3, ["S1", "S1", "S2"], "serials")
    await refused("1.5", ["S1", "S2"], "quantity")
    await refused("0.5", ["S1"], "quantity")

    made = await receive(client, item["id"], 3, serials=["S1", "S2", "S3"])
    assert taken(made) == [("receipt", None, "3")]
    main = await main_location(client)
    assert await in_stock(app, item["id"]) == {s: main["id"] for s in ("S0", "S1", "S2", "S3")}
    await assert_ledger_matches_balances(client, item["id"])


async def test_receiving_a_serial_already_in_stock_conflicts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="serial")
    store = await create_location(client)
    await receive(client, item["id"], 2, serials=["S1", "S2"])
    before = await snapshot(app, client, item["id"])

    for body in (
        {"quantity": 1, "serials": ["S2"]},
        {"quantity": 2, "serials": ["S9", "S1"]},  # S9 must not be created either
        {"quantity": 1, "serials": ["S1"], "location_id": store["id"]},  # in stock elsewhere
    ):
        response = await client.post("/v1/stock/receipts", json={"item_id": item["id"], **body})
        problem(response, 409, "conflict")
        assert await snapshot(app, client, item["id"]) == before

    other = await create_item(client, tracking="serial")  # serials are unique per item
    await receive(client, other["id"], 1, serials=["S1"])


async def test_issue_naming_serials_removes_exactly_those(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client, tracking="serial")
    main = await main_location(client)
    store = await create_location(client)
    await receive(client, item["id"], 4, serials=["S1", "S2", "S3", "S4"])
    await receive(client, item["id"], 1, serials=["S5"], location_id=store["id"])

    ok(await adjust(client, item["id"], -2, serials=["S3", "S1"]), 201)
    assert await in_stock(app, item["id"]) == {
        "S2": main["id"],
        "S4": main["id"],
        "S5": store["id"],
    }
    assert (await totals(client, item["id"]))["on_hand"] == "3"

    before = await snapshot(app, client, item["id"])
    for delta, numbers in (
        (-1, ["S1"]),  # already issued
        (-1, ["S404"]),  # never existed
        (-1, ["S5"]),  # in stock, but at another location
        (-2, ["S2", "S1"]),  # one of two gone
        (-2, ["S2"]),  # too few serials for the quantity
        (-1, ["S2", "S4"]),  # too many
    ):
        invalid(await adjust(client, item["id"], delta, serials=numbers), "body", "serials")
        assert await snapshot(app, client, item["id"]) == before
    invalid(await adjust(client, item["id"], "-0.5"), "body", "quantity")
    assert await snapshot(app, client, item["id"]) == before

    # A serial that left stock may come back (a return).
    await receive(client, item["id"], 1, serials=["S1"])
    assert (await in_stock(app, item["id"]))["S1"] == main["id"]
    await assert_ledger_matches_balances(client, item["id"])


async def test_transfer_moves_the_named_serials(app: FastAPI, client: httpx.AsyncClient) -> None:
    item = await create_item(client, tracking="serial")
    main = await main_location(client)
    store = await create_location(client)
    await receive(client, item["id"], 3, serials=["T1", "T2", "T3"], unit_cost="10")

    moved = ok(
        await transfer(client, item["id"], 2, main["id"], store["id"], serials=["T1", "T2"]), 201
    )
    assert taken(moved) == [("transfer_out", None, "-2"), ("transfer_in", None, "2")]
    assert await in_stock(app, item["id"]) == {
        "T1": store["id"],
        "T2": store["id"],
        "T3": main["id"],
    }
    on_hand = {b["location_id"]: b["on_hand"] for b in await balances(client, item_id=item["id"])}
    assert on_hand == {main["id"]: "1", store["id"]: "2"}

    before = await snapshot(app, client, item["id"])
    again = await transfer(client, item["id"], 2, main["id"], store["id"], serials=["T1", "T2"])
    assert again.status_code in (409, 422), again.text  # 1 at MAIN, and not these serials
    assert await snapshot(app, client, item["id"]) == before
    response = await transfer(client, item["id"], 1, main["id"], store["id"], serials=["T1"])
    invalid(response, "body", "serials")
    assert await snapshot(app, client, item["id"]) == before

    back = await transfer(client, item["id"], 1, store["id"], main["id"], serials=["T2"])
    ok(back, 201)
    assert await in_stock(app, item["id"]) == {
        "T1": store["id"],
        "T2": main["id"],
        "T3": main["id"],
    }
    assert (await totals(client, item["id"]))["value"] == "30"
    await assert_ledger_matches_balances(client, item["id"])
