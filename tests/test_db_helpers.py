"""The set-based helpers of ``db.py``, on both databases."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from prodorder_api import db
from prodorder_api.items.models import Item
from tests.helpers import create_item


async def test_update_by_id_writes_every_row_in_chunks(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows past one statement's share go in the next statement; rows not named stay."""
    items = [await create_item(client) for _ in range(5)]
    monkeypatch.setattr(db, "UPDATE_CHUNK", 2)
    ids = [uuid.UUID(item["id"]) for item in items]
    rows = [{"id": item_id, "name": f"renamed {n}"} for n, item_id in enumerate(ids[:4])]
    async with app.state.sessionmaker() as session, session.begin():
        await db.update_by_id(session, db.table_of(Item), rows, lead_time_days=7)
    async with app.state.sessionmaker() as session:
        found = {
            i.id: (i.name, i.lead_time_days)
            for i in await session.scalars(select(Item).where(Item.id.in_(ids)))
        }
    assert [found[i] for i in ids[:4]] == [(f"renamed {n}", 7) for n in range(4)]
    assert found[ids[4]] == (items[4]["name"], items[4]["lead_time_days"])
