"""Concurrent stock requests: no oversell, no deadlock, no 500, ledger == balances.

Requests are fired together with ``asyncio.gather`` through the ASGI client; each
holds its own pooled connection (the test app's pool has 20 + 20 overflow), so on
PostgreSQL these are separate transactions racing for the same rows, and on SQLite
separate connections queueing for the write lock (``BEGIN IMMEDIATE``). A pool
listener counts the connections checked out at once, which proves the requests
really overlapped; nothing is mocked.
"""

import asyncio
import random
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    adjust,
    assert_ledger_matches_balances,
    balances,
    create_item,
    create_location,
    main_location,
    movements,
    problem,
    receive,
    totals,
)


class Overlap:
    """The most connections checked out of the pool at the same time."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    def checkout(self, *_: Any) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)

    def checkin(self, *_: Any) -> None:
        self.current -= 1


@contextmanager
def measured_overlap(engine: AsyncEngine) -> Iterator[Overlap]:
    overlap = Overlap()
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", overlap.checkout)
    event.listen(pool, "checkin", overlap.checkin)
    try:
        yield overlap
    finally:
        event.remove(pool, "checkout", overlap.checkout)
        event.remove(pool, "checkin", overlap.checkin)


def refused_for_stock(response: httpx.Response) -> bool:
    if response.status_code != 409:
        return False
    problem(response, 409, "insufficient_stock")
    return True


async def test_forty_racing_issues_of_one_unit_take_exactly_the_ten_there_are(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    item = await create_item(client)
    await receive(client, item["id"], 10, unit_cost="1.5")

    with measured_overlap(app.state.engine) as overlap:
        responses = await asyncio.gather(*(adjust(client, item["id"], -1) for _ in range(40)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 30, [r.text for r in responses if r.status_code >= 500]
    for response in responses:
        if response.status_code == 409:
            body = problem(response, 409, "insufficient_stock")
            assert body["shortages"][0]["available"] == "0"
    assert overlap.peak > 1, "the requests never overlapped: this was no race"

    stock = await totals(client, item["id"])
    assert (stock["on_hand"], stock["available"], stock["value"]) == ("0", "0", "0")
    assert all(Decimal(b["on_hand"]) >= 0 for b in await balances(client, item_id=item["id"]))
    issued = await movements(client, item_id=item["id"], type="adjustment")
    assert [m["quantity"] for m in issued] == ["-1"] * 10
    # Issuing never moves the average: each of the ten units leaves at 1.5.
    assert [(m["unit_cost"], m["value"]) for m in issued] == [("1.5", "-1.5")] * 10
    await assert_ledger_matches_balances(client, item["id"])


async def test_racing_fefo_issues_take_each_lot_unit_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """FEFO reads the lots, decides, then writes: racing issues must still take every
    unit once, earliest expiry first, and refuse the rest."""
    item = await create_item(client, tracking="lot")
    for code, expiry in (("LATE", "2031-01-01"), ("EARLY", "2030-01-01"), ("NEVER", None)):
        await receive(client, item["id"], 4, lot_code=code, expiry_date=expiry, unit_cost="2")

    with measured_overlap(app.state.engine) as overlap:
        responses = await asyncio.gather(*(adjust(client, item["id"], -1) for _ in range(30)))
    assert overlap.peak > 1
    assert sorted(r.status_code for r in responses) == [201] * 12 + [409] * 18, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    for response in responses:
        if response.status_code == 409:
            problem(response, 409, "insufficient_stock")
    issued = await movements(client, item_id=item["id"], type="adjustment")
    # Committed in lock order, so the ledger shows the lots emptied in FEFO order.
    assert [(m["lot_code"], m["quantity"]) for m in issued] == (
        [("EARLY", "-1")] * 4 + [("LATE", "-1")] * 4 + [("NEVER", "-1")] * 4
    )
    stock = await totals(client, item["id"])
    assert (stock["on_hand"], stock["value"]) == ("0", "0")
    await assert_ledger_matches_balances(client, item["id"])


@pytest.mark.postgres_only
async def test_racing_issues_wait_on_each_other_in_postgresql(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """While the race runs, PostgreSQL itself shows several of our sessions open at once."""
    item = await create_item(client)
    await receive(client, item["id"], 10)
    sessions: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        engine: AsyncEngine = app.state.engine
        # Its own connection, outside the app's pool, sees every backend of this database.
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(url)
        try:
            while not done.is_set():
                sessions.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND state <> 'idle'"
                    )
                )
                await asyncio.sleep(0)
        finally:
            await conn.close()

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    try:
        responses = await asyncio.gather(*(adjust(client, item["id"], -1) for _ in range(40)))
    finally:
        done.set()
        await watcher
    assert sorted(r.status_code for r in responses) == [201] * 10 + [409] * 30
    assert max(sessions) > 1, sessions
    assert (await totals(client, item["id"]))["on_hand"] == "0"
    await assert_ledger_matches_balances(client, item["id"])


async def test_random_concurrent_mix_never_deadlocks_or_oversells(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Receipts, issues, gains and transfers in both directions between three sites,
    on two items, all at once. Transfers A→B racing B→A are the classic deadlock.

    Every operation that succeeded changed fixed balances by fixed amounts, so whatever
    order the database chose, the final balances are the start plus the sum of the
    operations that returned 201.
    """
    main = await main_location(client)
    sites = [
        main["id"],
        (await create_location(client))["id"],
        (await create_location(client))["id"],
    ]
    items = [(await create_item(client))["id"] for _ in range(2)]
    expected: dict[tuple[str, str], Decimal] = {}
    for item_id in items:
        for site in sites:
            await receive(client, item_id, 6, location_id=site, unit_cost="2.5")
            expected[(item_id, site)] = Decimal(6)

    rng = random.Random(20240611)
    for _round in range(4):
        planned: list[tuple[dict[tuple[str, str], Decimal], Awaitable[httpx.Response]]] = []
        for _ in range(40):
            item_id = rng.choice(items)
            a, b = rng.sample(sites, 2)
            quantity = Decimal(rng.randint(1, 4000)) / 1000
            kind = rng.choice(["receipt", "gain", "issue", "transfer", "transfer", "transfer"])
            if kind == "receipt":
                cost = str(Decimal(rng.randint(0, 9999)) / 100)
                request = client.post(
                    "/v1/stock/receipts",
                    json={
                        "item_id": item_id,
                        "quantity": str(quantity),
                        "location_id": a,
                        "unit_cost": cost,
                    },
                )
                effect = {(item_id, a): quantity}
            elif kind in ("gain", "issue"):
                delta = quantity if kind == "gain" else -quantity
                request = adjust(client, item_id, str(delta), location_id=a)
                effect = {(item_id, a): delta}
            else:
                request = client.post(
                    "/v1/stock/transfers",
                    json={
                        "item_id": item_id,
                        "quantity": str(quantity),
                        "from_location_id": a,
                        "to_location_id": b,
                    },
                )
                effect = {(item_id, a): -quantity, (item_id, b): quantity}
            planned.append((effect, request))

        with measured_overlap(app.state.engine) as overlap:
            responses = await asyncio.gather(*(request for _, request in planned))
        assert overlap.peak > 1

        failures = [r.text for r in responses if r.status_code not in (201, 409)]
        assert not failures, failures
        for (effect, _), response in zip(planned, responses, strict=True):
            if response.status_code == 201:
                for key, delta in effect.items():
                    expected[key] += delta
            else:
                assert refused_for_stock(response), response.text
        assert any(r.status_code == 201 for r in responses)

        for item_id in items:
            kept = {
                (item_id, b["location_id"]): Decimal(b["on_hand"])
                for b in await balances(client, item_id=item_id)
            }
            assert all(v >= 0 for v in kept.values())
            assert {k: v for k, v in kept.items() if v} == {
                k: v for k, v in expected.items() if k[0] == item_id and v
            }
            await assert_ledger_matches_balances(client, item_id)
            stock = await totals(client, item_id)
            assert Decimal(stock["value"]) >= 0
            on_hand = sum(v for k, v in expected.items() if k[0] == item_id)
            assert Decimal(stock["on_hand"]) == on_hand
    if app.state.engine.dialect.name == "postgresql":
        assert await _deadlock_count(app.state.engine) == 0


@pytest.mark.postgres_only
async def test_opposite_transfers_all_at_once_never_deadlock(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Many A→B and B→A transfers of the same item at once, every one of them possible
    whatever the order: all must succeed, none may die as a deadlock victim."""
    item = await create_item(client)
    main = await main_location(client)
    other = await create_location(client)
    await receive(client, item["id"], 100, location_id=main["id"], unit_cost="1")
    await receive(client, item["id"], 100, location_id=other["id"], unit_cost="3")

    def move(source: str, target: str) -> Awaitable[httpx.Response]:
        return client.post(
            "/v1/stock/transfers",
            json={
                "item_id": item["id"],
                "quantity": "1",
                "from_location_id": source,
                "to_location_id": target,
            },
        )

    requests = [move(main["id"], other["id"]) for _ in range(18)]
    requests += [move(other["id"], main["id"]) for _ in range(18)]
    random.Random(7).shuffle(requests)
    with measured_overlap(app.state.engine) as overlap:
        responses = await asyncio.gather(*requests)
    assert overlap.peak > 1
    assert [r.status_code for r in responses] == [201] * 36, [
        r.text for r in responses if r.status_code != 201
    ]
    by_site = {b["location_id"]: b["on_hand"] for b in await balances(client, item_id=item["id"])}
    assert by_site == {main["id"]: "100", other["id"]: "100"}
    stock = await totals(client, item["id"])
    assert (stock["on_hand"], stock["value"]) == ("200", "400")
    await assert_ledger_matches_balances(client, item["id"])
    assert await _deadlock_count(app.state.engine) == 0


async def _deadlock_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(result.scalar_one())
