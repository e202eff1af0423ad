"""Locations: where stock is kept. ``MAIN`` exists from the first migration."""

import uuid
import weakref

from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import flush_unique
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


async def resolve(session: AsyncSession, location_id: uuid.UUID | None, field: str) -> uuid.UUID:
    """The id of the location a request body names (unknown → 422), or ``MAIN``'s when
    it names none."""
    if location_id is None:
        return await _main(session, field)
    location = await session.get(Location, location_id)
    if location is None:
        raise ValidationFailed(["body", field], f"no location with id {location_id}")
    return location.id


# MAIN's id, by engine, once read. Locations are never changed or deleted (the API has
# no route for either: a location's code and id are what stock and orders refer to),
# so it stays true; every request that names no location (creating an order, a
# receipt) is spared a statement. A route that changes locations must clear this.
_MAIN: weakref.WeakKeyDictionary[Engine, uuid.UUID] = weakref.WeakKeyDictionary()


async def _main(session: AsyncSession, field: str) -> uuid.UUID:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    known = _MAIN.get(engine)
    if known is not None:
        return known
    found = await session.scalar(select(Location.id).where(Location.code == DEFAULT_LOCATION_CODE))
    if found is None:
        raise ValidationFailed(["body", field], "no location given and MAIN does not exist")
    _MAIN[engine] = found
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
