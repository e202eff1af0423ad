from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.locations import service
from prodorder_api.locations.models import Location
from prodorder_api.locations.schemas import LocationCreate, LocationOut
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/locations",
    tags=["locations"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=201,
    response_model=LocationOut,
    summary="Create a location",
    responses=problem_responses(409, 422),
)
async def create_location(body: LocationCreate, session: Session) -> Location:
    """`code` is unique (409 `conflict`). `MAIN` exists from the start."""
    return await service.create(session, body)


@router.get(
    "",
    response_model=Page[LocationOut],
    summary="List locations",
    responses=problem_responses(422),
)
async def list_locations(
    session: Session,
    paging: Paging,
    code: Annotated[str | None, Query(max_length=64, description="Exact code, e.g. MAIN.")] = None,
) -> dict[str, object]:
    """Every location, oldest first (`MAIN` exists from the start)."""
    rows, cursor = await service.list_locations(session, paging, code)
    return to_page(LocationOut, rows, cursor)


@router.get(
    "/{location_id}",
    response_model=LocationOut,
    summary="Get a location",
    responses=problem_responses(404),
)
async def get_location(location_id: str, session: Session) -> Location:
    """One location."""
    return await service.get(session, location_id)
