import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.fields import AwareDatetime
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute
from prodorder_api.stock import service
from prodorder_api.stock.models import Movement
from prodorder_api.stock.schemas import (
    AdjustmentCreate,
    BalanceOut,
    MovementOut,
    MovementType,
    ReceiptCreate,
    StockOperation,
    TransferCreate,
)

router = APIRouter(
    prefix="/v1/stock",
    tags=["stock"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


def _operation(movements: list[Movement]) -> StockOperation:
    return StockOperation(movements=[MovementOut.model_validate(m) for m in movements])


@router.get(
    "",
    response_model=Page[BalanceOut],
    summary="List stock balances",
    responses=problem_responses(422),
)
async def list_stock_balances(
    session: Session,
    paging: Paging,
    item_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    include_empty: Annotated[
        bool, Query(description="Also balances with nothing on hand or reserved.")
    ] = False,
) -> dict[str, object]:
    """One row per item, location and lot: `available = on_hand − reserved`."""
    rows, cursor = await service.list_balances(session, paging, item_id, location_id, include_empty)
    return to_page(BalanceOut, rows, cursor)


@router.post(
    "/receipts",
    status_code=201,
    response_model=StockOperation,
    summary="Receive stock",
    responses=problem_responses(409, 422),
)
async def create_stock_receipt(body: ReceiptCreate, session: Session) -> StockOperation:
    """Goods received (purchases, returns). The unit cost moves the item's average cost."""
    return _operation(await service.receive(session, body))


@router.post(
    "/adjustments",
    status_code=201,
    response_model=StockOperation,
    summary="Adjust stock",
    responses=problem_responses(409, 422),
)
async def create_stock_adjustment(body: AdjustmentCreate, session: Session) -> StockOperation:
    """A count or correction. Taking more than is available (reserved stock is not)
    → 409 `insufficient_stock`; lot-tracked stock without a lot is taken FEFO."""
    return _operation(await service.adjust(session, body))


@router.post(
    "/transfers",
    status_code=201,
    response_model=StockOperation,
    summary="Transfer stock between locations",
    responses=problem_responses(409, 422),
)
async def create_stock_transfer(body: TransferCreate, session: Session) -> StockOperation:
    """Moves available stock; value and average cost are unchanged."""
    return _operation(await service.transfer(session, body))


@router.get(
    "/movements",
    response_model=Page[MovementOut],
    summary="List stock movements (the ledger)",
    responses=problem_responses(422),
)
async def list_stock_movements(
    session: Session,
    paging: Paging,
    item_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    production_order_id: uuid.UUID | None = None,
    purchase_order_id: Annotated[
        uuid.UUID | None, Query(description="Receipts against this purchase order.")
    ] = None,
    type: Annotated[
        list[MovementType] | None, Query(description="Repeat for several types.")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Movements created at or after (RFC 3339).")
    ] = None,
) -> dict[str, object]:
    """Oldest first. Every change of on-hand stock is here, immutable."""
    rows, cursor = await service.list_movements(
        session, paging, item_id, location_id, production_order_id, type, since, purchase_order_id
    )
    return to_page(MovementOut, rows, cursor)
