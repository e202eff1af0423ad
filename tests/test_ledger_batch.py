"""``ledger.batch``: the ``apply`` calls inside write once, at the end.

A completion backflushes and then receives its output, valued by what the backflush
consumed; in a batch the two calls write their balances, items and movements with one
statement each. The figures must be exactly those of separate calls, also when the
second call reads what the first changed but has not written yet.
"""

import contextlib
import uuid
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from prodorder_api.items.models import Item
from prodorder_api.locations.models import Location
from prodorder_api.stock import ledger
from prodorder_api.stock.ledger import Move
from prodorder_api.stock.models import StockBalance, StockMovement
from tests.helpers import create_item, receive
from tests.invariants import broken_invariants
from tests.test_outbox_statements import starting, statements

D = Decimal


async def moves_on(client: httpx.AsyncClient, app: FastAPI) -> tuple[uuid.UUID, list[Move]]:
    """A fresh item with 10 at 2.00 and 5 at 3.50 in stock; then: take 4, receive 3 at a
    given value, take 11 (down to 3) and receive 2 at the average: every later move
    reads on-hand, value and average that the earlier ones changed."""
    item = await create_item(client)
    await receive(client, item["id"], 10, unit_cost="2")
    await receive(client, item["id"], 5, unit_cost="3.5")
    async with app.state.sessionmaker() as session:
        main = await session.scalar(select(Location.id).where(Location.code == "MAIN"))
    item_id = uuid.UUID(item["id"])
    assert main is not None
    at = {"item_id": item_id, "location_id": main}
    return item_id, [
        Move(**at, quantity=D(-4), type="consumption"),
        Move(**at, quantity=D(3), type="output", value=D("10.01"), unit_cost=D("3.336667")),
        Move(**at, quantity=D(-11), type="consumption"),
        Move(**at, quantity=D(2), type="receipt"),
    ]


async def state_of(app: FastAPI, item_id: uuid.UUID) -> dict[str, Any]:
    async with app.state.sessionmaker() as session:
        balance = await session.scalar(select(StockBalance).where(StockBalance.item_id == item_id))
        item = await session.get(Item, item_id)
        movements = await session.scalars(
            select(StockMovement)
            .where(StockMovement.item_id == item_id, StockMovement.type != "receipt")
            .order_by(StockMovement.id)
        )
        assert balance is not None and item is not None
        return {
            "balance": (balance.on_hand, balance.reserved),
            "item": (item.stock_value, item.average_cost),
            "movements": [(m.type, m.quantity, m.unit_cost, m.value) for m in movements],
        }


async def test_a_batch_writes_exactly_what_separate_calls_write(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    apart_id, apart_moves = await moves_on(client, app)
    together_id, together_moves = await moves_on(client, app)
    async with app.state.sessionmaker() as session, session.begin():
        for move in apart_moves:
            await ledger.apply(session, [move])
    with statements(app.state.engine) as sent:
        async with (
            app.state.sessionmaker() as session,
            session.begin(),
            ledger.batch(session),
        ):
            for move in together_moves:
                await ledger.apply(session, [move])

    apart, together = await state_of(app, apart_id), await state_of(app, together_id)
    assert together == apart
    assert apart["balance"] == (D(5), D(0))
    # Four calls, one write of each kind.
    assert len(starting(sent, "UPDATE STOCK_BALANCES")) == 1
    assert len(starting(sent, "UPDATE ITEMS")) == 1
    assert len(starting(sent, "INSERT INTO STOCK_MOVEMENTS")) == 1
    assert await broken_invariants(app.state.engine) == []


async def test_a_batch_that_raises_leaves_written_what_separate_calls_would(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The calls that returned are written, with the events they announced: a caller
    that catches the error and commits gets what separate calls would have left."""
    apart_id, apart_moves = await moves_on(client, app)
    together_id, together_moves = await moves_on(client, app)
    for moves, batched in ((apart_moves, False), (together_moves, True)):
        async with app.state.sessionmaker() as session:
            try:
                async with ledger.batch(session) if batched else contextlib.nullcontext():
                    await ledger.apply(session, moves[:2])
                    raise RuntimeError("the caller fails after its first call")
            except RuntimeError:
                pass
            await session.commit()
    assert await state_of(app, together_id) == await state_of(app, apart_id)
    assert await broken_invariants(app.state.engine) == []


async def test_a_balance_the_batch_expects_is_locked_with_the_first_call(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A completion locks its output's balance with the backflush's: the figures are
    those of separate calls (the output's value and the product's new average read its
    on-hand), with one balance lock for both calls on PostgreSQL."""
    runs = []
    for batched in (False, True):
        component, product = await create_item(client), await create_item(client)
        await receive(client, component["id"], 10, unit_cost="2")
        await receive(client, product["id"], 4, unit_cost="5")
        async with app.state.sessionmaker() as session:
            main = await session.scalar(select(Location.id).where(Location.code == "MAIN"))
        assert main is not None
        a, b = uuid.UUID(component["id"]), uuid.UUID(product["id"])
        backflush = [Move(item_id=a, location_id=main, quantity=D(-3), type="consumption")]
        output = Move(
            item_id=b, location_id=main, quantity=D(2), type="output", value=D("7"), unit_cost=None
        )
        with statements(app.state.engine) as sent:
            async with app.state.sessionmaker() as session, session.begin():
                await ledger.lock_items(session, [a, b])
                expect = [output.key] if batched else []
                async with ledger.batch(session, expect=expect):
                    await ledger.apply(session, backflush)
                    await ledger.apply(session, [output])
        runs.append((await state_of(app, a), await state_of(app, b), sent))

    (apart_a, apart_b, apart_sent), (together_a, together_b, together_sent) = runs
    assert (together_a, together_b) == (apart_a, apart_b)
    assert apart_b["balance"] == (D(6), D(0)) and apart_b["item"] == (D(27), D("4.5"))
    if app.state.engine.dialect.name == "postgresql":
        locks = [s for s in together_sent if "FROM stock_balances" in s and "FOR UPDATE" in s]
        assert len(locks) == 1, locks
        before = [s for s in apart_sent if "FROM stock_balances" in s and "FOR UPDATE" in s]
        assert len(before) == 2, before
    assert await broken_invariants(app.state.engine) == []
