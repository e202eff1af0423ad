"""What the outbox costs in SQL (issue #9): a request writes all its events with one
INSERT, and the sequencer positions a batch with one UPDATE.

Statements are counted as the benchmark counts them: each row of an executemany is
one statement, since the server runs each of them."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.ext.asyncio import AsyncEngine

from prodorder_api.events import service as events
from prodorder_api.events.models import Event
from prodorder_api.ids import new_id
from prodorder_api.stock import service as stock
from prodorder_api.stock.schemas import ReceiptCreate
from tests.helpers import create_item, ok, receive
from tests.order_helpers import act, create_bom, create_order
from tests.test_events import events_after, feed_end


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL ``engine`` sends meanwhile, one entry per statement the server runs."""
    sent: list[str] = []

    def on_execute(
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> None:
        many = context is not None and context.execute_style is ExecuteStyle.EXECUTEMANY
        sent.extend([" ".join(statement.split())] * (len(parameters) if many else 1))

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


def starting(sent: list[str], prefix: str) -> list[str]:
    """The statements among ``sent`` that start with ``prefix``."""
    return [s for s in sent if s.upper().startswith(prefix)]


async def test_a_release_inserts_its_events_with_one_statement(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    components = [await create_item(client) for _ in range(5)]
    for component in components:
        await receive(client, component["id"], 10, unit_cost="1")
    product = await create_item(client)
    await create_bom(client, product["id"], [(c["id"], 1) for c in components])
    order = await create_order(client, product["id"], 2)
    start = await feed_end(client)

    with statements(app.state.engine) as sent:
        ok(await act(client, order, "release"))

    written = await events_after(client, start)
    # released, and one stock.changed per reserved component
    assert sorted(e["type"] for e in written) == [
        "production_order.released",
        *["stock.changed"] * 5,
    ]
    inserting = [s for s in sent if "INSERT INTO EVENTS " in s.upper()]
    assert len(inserting) == 1, inserting


async def test_a_commit_outside_requests_inserts_its_events_with_one_statement(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A script's commit writes its events from ``before_commit``: one INSERT too."""
    items = [await create_item(client) for _ in range(3)]
    start = await feed_end(client)
    with statements(app.state.engine) as sent:
        await receive_in_a_script(app, items)

    written = await events_after(client, start)
    assert [e["data"]["item_id"] for e in written] == [item["id"] for item in items]
    assert len(starting(sent, "INSERT INTO EVENTS")) == 1, starting(sent, "INSERT INTO EVENTS")


async def test_many_events_are_inserted_in_chunks(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [await create_item(client) for _ in range(5)]
    start = await feed_end(client)
    monkeypatch.setattr(events, "INSERT_CHUNK", 2)
    with statements(app.state.engine) as sent:
        await receive_in_a_script(app, items)

    written = await events_after(client, start)
    assert [e["data"]["item_id"] for e in written] == [item["id"] for item in items]
    assert len(starting(sent, "INSERT INTO EVENTS")) == 3


async def receive_in_a_script(app: FastAPI, items: list[dict[str, Any]]) -> None:
    """One receipt of each item, and so one event each, committed outside a request."""
    async with app.state.sessionmaker() as session, session.begin():
        for item in items:
            receipt = ReceiptCreate(item_id=uuid.UUID(item["id"]), quantity="1")
            await stock.receive(session, receipt)


async def test_the_sequencer_positions_a_batch_in_id_order_after_the_last(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events committed in the reverse of their id order still get the next positions
    in id order, gap-free, a batch at a time, with one UPDATE a batch."""
    item = await create_item(client)
    await feed_end(client)  # positions everything committed so far
    ids = sorted(new_id() for _ in range(7))
    handed_out = iter(reversed(ids))
    monkeypatch.setattr(events, "new_id", lambda: next(handed_out))
    for _ in ids:
        await receive(client, item["id"], 1)
    monkeypatch.undo()

    with statements(app.state.engine) as sent:
        async with app.state.sessionmaker() as session, session.begin():
            top = await events.last_position(session)
            first = await events.sequence(session, batch=4)
        async with app.state.sessionmaker() as session, session.begin():
            rest = await events.sequence(session)

    assert (first, rest) == (4, 3)
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(Event.id, Event.position).where(Event.id.in_(ids)))
        position = {id_: position for id_, position in rows}
        assert await events.last_position(session) == top + len(ids)
    assert [position[i] for i in ids] == list(range(top + 1, top + len(ids) + 1))
    assert len(starting(sent, "UPDATE EVENTS")) == 2, starting(sent, "UPDATE")
