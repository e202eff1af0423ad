"""Work centers: where operations happen, at what rate, with what daily capacity."""

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import flush_unique, utcnow
from prodorder_api.errors import NotFound, ValidationFailed
from prodorder_api.ids import parse_id
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.workcenters.models import WorkCenter
from prodorder_api.workcenters.schemas import WorkCenterCreate, WorkCenterUpdate


async def get(session: AsyncSession, work_center_id: str) -> WorkCenter:
    parsed = parse_id(work_center_id)
    center = await session.get(WorkCenter, parsed) if parsed else None
    if center is None:
        raise NotFound(f"no work center with id {work_center_id}")
    return center


async def check_exist(session: AsyncSession, ids: dict[int, uuid.UUID], field: str) -> None:
    """Work centers named in a request body (position → id): unknown → 422 there."""
    known = set(await session.scalars(select(WorkCenter.id).where(WorkCenter.id.in_(ids.values()))))
    for position, work_center_id in ids.items():
        if work_center_id not in known:
            raise ValidationFailed(
                ["body", field, position, "work_center_id"],
                f"no work center with id {work_center_id}",
            )


async def create(session: AsyncSession, data: WorkCenterCreate) -> WorkCenter:
    center = WorkCenter(**data.model_dump())
    session.add(center)
    await flush_unique(session, f"a work center with code {data.code!r} exists already")
    return center


async def update(
    session: AsyncSession, work_center_id: str, data: WorkCenterUpdate, if_match: Precondition = ANY
) -> WorkCenter:
    center = await get(session, work_center_id)
    await session.refresh(center, with_for_update=True)
    if_match.check(center.version)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed(["body", name], "may not be null")
        setattr(center, name, value)
    if changes:
        center.version += 1
        center.updated_at = utcnow()
        await flush_unique(session, f"a work center with code {center.code!r} exists already")
    return center


async def delete(session: AsyncSession, work_center_id: str) -> None:
    """Refused while a BOM's or an order's operation, or booked time, names the work
    center: the foreign keys refuse it, so no check here can miss a new use."""
    center = await get(session, work_center_id)
    await session.delete(center)
    await flush_unique(session, "the work center is used by a BOM or a production order")


async def list_work_centers(
    session: AsyncSession, params: PageParams
) -> tuple[list[WorkCenter], str | None]:
    return await paginate(session, select(WorkCenter), WorkCenter.id, params)
