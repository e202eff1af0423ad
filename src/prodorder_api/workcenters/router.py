from fastapi import APIRouter, Response

from prodorder_api.auth.deps import Authorized
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute
from prodorder_api.workcenters import service
from prodorder_api.workcenters.models import WorkCenter
from prodorder_api.workcenters.schemas import WorkCenterCreate, WorkCenterOut, WorkCenterUpdate

router = APIRouter(
    prefix="/v1/work-centers",
    tags=["work-centers"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=201,
    response_model=WorkCenterOut,
    summary="Create a work center",
    responses=problem_responses(409, 422),
)
async def create_work_center(body: WorkCenterCreate, session: Session) -> WorkCenter:
    """`code` is unique (409 `conflict`)."""
    return await service.create(session, body)


@router.get(
    "",
    response_model=Page[WorkCenterOut],
    summary="List work centers",
    responses=problem_responses(422),
)
async def list_work_centers(session: Session, paging: Paging) -> dict[str, object]:
    """Work centers, oldest first."""
    rows, cursor = await service.list_work_centers(session, paging)
    return to_page(WorkCenterOut, rows, cursor)


@router.get(
    "/{work_center_id}",
    response_model=WorkCenterOut,
    summary="Get a work center",
    responses=problem_responses(404),
)
async def get_work_center(work_center_id: str, session: Session) -> WorkCenter:
    """One work center with its rate and minutes per day, and its `ETag`."""
    return await service.get(session, work_center_id)


@router.patch(
    "/{work_center_id}",
    response_model=WorkCenterOut,
    summary="Change a work center",
    responses=problem_responses(404, 409, 412, 422),
)
async def update_work_center(
    work_center_id: str, body: WorkCenterUpdate, session: Session, if_match: IfMatch
) -> WorkCenter:
    """A new `cost_per_hour` values time booked from now on; earlier bookings keep theirs."""
    return await service.update(session, work_center_id, body, if_match)


@router.delete(
    "/{work_center_id}",
    status_code=204,
    summary="Delete an unused work center",
    responses=problem_responses(404, 409),
)
async def delete_work_center(work_center_id: str, session: Session) -> Response:
    """Refused (409 `conflict`) once a BOM or a production order uses it."""
    await service.delete(session, work_center_id)
    return Response(status_code=204)
