import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.fields import LotCode
from prodorder_api.lots import service
from prodorder_api.lots.schemas import LotOut, LotTrace, LotUpdate, TraceDirection
from prodorder_api.metadata import MetadataFilter, documented_filter
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/lots",
    tags=["lots"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.get(
    "",
    response_model=Page[LotOut],
    summary="List lots",
    responses=problem_responses(422),
    openapi_extra=documented_filter(),
)
async def list_lots(
    session: Session,
    paging: Paging,
    meta: MetadataFilter,
    item_id: uuid.UUID | None = None,
    code: Annotated[LotCode | None, Query(description="Exact lot code.")] = None,
) -> dict[str, object]:
    """Every lot ever received or made, oldest first, with its on-hand over all
    locations (0 once it is used up); `?metadata[key]=value` filters on metadata."""
    rows, cursor = await service.list_lots(session, paging, item_id, code, meta)
    return to_page(LotOut, rows, cursor)


@router.get(
    "/{lot_id}", response_model=LotOut, summary="Get a lot", responses=problem_responses(404)
)
async def get_lot(lot_id: str, session: Session) -> LotOut:
    """One lot with its expiry date and what is on hand of it."""
    return await service.get(session, lot_id)


@router.patch(
    "/{lot_id}",
    response_model=LotOut,
    summary="Update a lot's metadata",
    responses=problem_responses(404, 422),
)
async def update_lot(lot_id: str, body: LotUpdate, session: Session) -> LotOut:
    """Merge `metadata` into the lot's; a key set to `""` is removed. Its code, item,
    expiry and quantities are the ledger's and do not change here."""
    return await service.update(session, lot_id, body)


@router.get(
    "/{lot_id}/trace",
    response_model=LotTrace,
    summary="Trace a lot through production",
    responses=problem_responses(404, 422),
)
async def trace_lot(
    lot_id: str,
    session: Session,
    direction: Annotated[
        TraceDirection,
        Query(description="`forward`: the lots made from it; `backward`: the lots in it."),
    ] = "forward",
) -> LotTrace:
    """The lot's genealogy over all levels, from the ledger: a production order links
    each lot it consumed to each lot it made. `forward` from a component lot lists
    every lot made from it (a recall) with the orders and their `reference`;
    `backward` from a finished lot lists every component lot in it."""
    return await service.trace(session, lot_id, direction)
