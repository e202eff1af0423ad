"""The ledger's item lock must not block rows that merely refer to the item.

Found by `make soak` (two instances under load): creating a production order while
another order of the same product completed deadlocked now and then, and one of
the two requests failed with a 500 (`deadlock detected`).

PostgreSQL checks a foreign key by taking ``FOR KEY SHARE`` on the referenced row.
``ledger.lock_items`` locked items ``FOR UPDATE``, which conflicts with ``FOR KEY
SHARE``. Creating an order inserts ``production_orders`` (a key-share lock on the
product) and then ``order_requirements`` (one on each component, in BOM order), so
it queued behind any stock change of a component while holding the product; a
completion holds the components and then locks the product for its output. Each
waited for the other. The ledger changes only non-key columns of an item, so it
now locks ``FOR NO KEY UPDATE``: ledger callers still queue on each other, and
inserts that refer to the item no longer wait at all.
"""

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from prodorder_api.orders import service as orders
from prodorder_api.orders.schemas import OrderCreate
from prodorder_api.stock import ledger
from tests.order_helpers import bicycle

pytestmark = pytest.mark.postgres_only


async def test_creating_an_order_does_not_wait_for_component_locks_so_cannot_deadlock(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    bike = await bicycle(client)
    frame_id = uuid.UUID(bike["frame"]["id"])
    bike_id = uuid.UUID(bike["bike"]["id"])
    async with app.state.sessionmaker() as completing, app.state.sessionmaker() as creating:
        try:
            # A completion of another bicycle order: its components are locked first.
            await ledger.lock_items(completing, [frame_id])
            # Meanwhile a new bicycle order is created; without the fix its INSERT of
            # the frame requirement waits here (and gives up after the lock timeout).
            await creating.execute(text("SET LOCAL lock_timeout = '3s'"))
            order = await asyncio.wait_for(
                orders.create(creating, OrderCreate(item_id=bike_id, quantity=1)), timeout=10
            )
            assert order.requirements
            # The completion goes on to lock the product for its output. Before the fix
            # this was the other half of the deadlock: the new order held the product.
            await completing.execute(text("SET LOCAL lock_timeout = '3s'"))
            locked = await asyncio.wait_for(ledger.lock_items(completing, [bike_id]), timeout=10)
            assert set(locked) == {bike_id}
        finally:
            await creating.rollback()
            await completing.rollback()


async def test_ledger_callers_still_queue_on_the_item_lock(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The weaker lock still serialises the ledger: a second locker of the item waits."""
    bike = await bicycle(client)
    frame_id = uuid.UUID(bike["frame"]["id"])
    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        try:
            await ledger.lock_items(first, [frame_id])
            await second.execute(text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(Exception, match="lock timeout"):
                await ledger.lock_items(second, [frame_id])
        finally:
            await second.rollback()
            await first.rollback()
