"""Locations: where stock is kept. ``MAIN`` exists from the first migration."""

import uuid
import weakref
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import attach, flush_unique, table_of
from prodorder_api.errors import NotFound, ValidationFailed
from prodorder_api.ids import parse_id
from prodorder_api.locations.models import DEFAULT_LOCATION_CODE, Location
from prodorder_api.locations.schemas import LocationCreate
from prodorder_api.pagination import PageParams, paginate


async def get(session: AsyncSession, location_id: str) -> Location:
    parsed = parse_id(location_id)
    location = await session.get(Location, parsed) if parsed else None
    if location is None:
        raise NotFound(f"no location with id {location_id}")
    return location


async def resolve(session: AsyncSession, location_id: uuid.UUID | None, field: str) -> Location:
    """The location a request body names (unknown → 422), or ``MAIN`` when it names none."""
    if location_id is None:
        return await _main(session, field)
    location = await session.get(Location, location_id)
    if location is None:
        raise ValidationFailed(["body", field], f"no location with id {location_id}")
    return location


# MAIN's row, by engine, once read. Locations are never changed or deleted (the API
# has no route for either: a location's code and id are what stock and orders refer
# to), so the row stays true; every request that names no location (creating an
# order, a receipt) is spared a statement. A route that changes locations must
# clear this.
_MAIN: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


async def _main(session: AsyncSession, field: str) -> Location:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    row = _MAIN.get(engine)
    if row is not None:
        location: Location = attach(session, Location, [row])[0]
        return location
    found = await session.scalar(select(Location).where(Location.code == DEFAULT_LOCATION_CODE))
    if found is None:
        raise ValidationFailed(["body", field], "no location given and MAIN does not exist")
    _MAIN[engine] = {c.key: getattr(found, c.key) for c in table_of(Location).columns}
    return found


async def create(session: AsyncSession, data: LocationCreate) -> Location:
    location = Location(**data.model_dump())
    session.add(location)
    await flush_unique(session, f"a location with code {data.code!r} exists already")
    return location


async def list_locations(
    session: AsyncSession, params: PageParams, code: str | None
) -> tuple[list[Location], str | None]:
    stmt = select(Location)
    if code is not None:
        stmt = stmt.where(Location.code == code)
    return await paginate(session, stmt, Location.id, params)
