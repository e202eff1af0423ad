"""Locations: where stock is kept. ``MAIN`` exists from the first migration."""

import uuid

from sqlalchemy import select
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


async def resolve(session: AsyncSession, location_id: uuid.UUID | None, field: str) -> Location:
    """The location a request body names (unknown → 422), or ``MAIN`` when it names none."""
    if location_id is None:
        location = await session.scalar(
            select(Location).where(Location.code == DEFAULT_LOCATION_CODE)
        )
        if location is None:
            raise ValidationFailed(["body", field], "no location given and MAIN does not exist")
        return location
    location = await session.get(Location, location_id)
    if location is None:
        raise ValidationFailed(["body", field], f"no location with id {location_id}")
    return location


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
