import uuid
from typing import Any

from fastapi import APIRouter

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.pagination import Page
from prodorder_api.routing import ApiRoute
from prodorder_api.stock.models import StockMovement
from prodorder_api.stock.schemas import MovementOut
from prodorder_api.unbuild import service
from prodorder_api.unbuild.models import UnbuildOrder
from prodorder_api.unbuild.schemas import UnbuildCreate, UnbuildOut

router = APIRouter(
    prefix="/v1/unbuild-orders",
    tags=["unbuild-orders"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


def _out(order: UnbuildOrder, movements: list[StockMovement]) -> UnbuildOut:
    mine = [MovementOut.model_validate(m) for m in movements if m.unbuild_order_id == order.id]
    fields: dict[str, Any] = {
        c: getattr(order, c) for c in UnbuildOut.model_fields if c != "movements"
    }
    return UnbuildOut(**fields, movements=mine)


@router.post(
    "",
    status_code=201,
    response_model=UnbuildOut,
    summary="Unbuild finished goods",
    responses=problem_responses(409, 422),
)
async def create_unbuild_order(body: UnbuildCreate, session: Session) -> UnbuildOut:
    """Takes the goods out of stock (`disassembly`, at their average cost) and puts their
    components back (`recovery`) in one transaction. With `production_order_id`: what
    that order actually consumed per unit produced, lot by lot, net of returns, and its
    by-products taken back out (422 beyond what it produced); without: the default BOM
    per unit (lot-tracked components then need the order, 422). The value that left is
    shared over the components by consumption value, the last taking the remainder:
    Σ out == Σ in exactly. More goods than on hand → 409 `insufficient_stock`;
    serial-tracked components → 409 `conflict`."""
    order = await service.unbuild(session, body)
    return _out(order, await service.movements_of(session, [order.id]))


@router.get(
    "",
    response_model=Page[UnbuildOut],
    summary="List unbuild orders",
    responses=problem_responses(422),
)
async def list_unbuild_orders(
    session: Session, paging: Paging, item_id: uuid.UUID | None = None
) -> dict[str, object]:
    """Unbuild orders, oldest first; `item_id` gives one product's."""
    rows, cursor = await service.list_unbuilds(session, paging, item_id)
    movements = await service.movements_of(session, [r.id for r in rows])
    return {"data": [_out(r, movements) for r in rows], "next_cursor": cursor}


@router.get(
    "/{unbuild_id}",
    response_model=UnbuildOut,
    summary="Get an unbuild order",
    responses=problem_responses(404),
)
async def get_unbuild_order(unbuild_id: str, session: Session) -> UnbuildOut:
    """One unbuild order with the movements it wrote."""
    order, movements = await service.get(session, unbuild_id)
    return _out(order, movements)
