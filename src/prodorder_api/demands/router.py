from typing import Annotated

from fastapi import APIRouter, Path

from prodorder_api.auth.deps import Authorized
from prodorder_api.demands import service
from prodorder_api.demands.schemas import DemandRollup
from prodorder_api.deps import Session
from prodorder_api.errors import problem_responses
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/demands",
    tags=["demands"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.get(
    "/{external_order_id}",
    response_model=DemandRollup,
    summary="Get a demand's production status",
    responses=problem_responses(404, 422),
)
async def get_demand(
    external_order_id: Annotated[str, Path(min_length=1, max_length=200)], session: Session
) -> DemandRollup:
    """Where an order of yours stands: every production order whose `demand` carries
    this `external_order_id` (made one by one or by make-to-order), its status rolled
    up, the quantities and the expected completion. 404 when no order carries it."""
    return await service.rollup(session, external_order_id)
