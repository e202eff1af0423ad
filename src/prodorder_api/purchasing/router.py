import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.metadata import MetadataFilter, documented_filter
from prodorder_api.pagination import Page
from prodorder_api.purchasing import service
from prodorder_api.purchasing.presenter import present
from prodorder_api.purchasing.schemas import (
    PurchaseOrderCreate,
    PurchaseOrderOut,
    PurchaseOrderStatus,
    PurchaseOrderUpdate,
    PurchaseReceiptCreate,
)
from prodorder_api.purchasing.states import lifecycle_markdown
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/purchase-orders",
    tags=["purchase-orders"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)

ACTION_ERRORS = problem_responses(404, 409, 412, 422)
LIFECYCLE = "\n\nAllowed actions by status (else 409 `invalid_transition`):\n\n" + (
    lifecycle_markdown()
)


@router.post(
    "",
    status_code=201,
    response_model=PurchaseOrderOut,
    summary="Create a purchase order",
    responses=problem_responses(422),
)
async def create_purchase_order(body: PurchaseOrderCreate, session: Session) -> PurchaseOrderOut:
    """Status `open`. Its lines count as incoming stock (`GET /v1/items/{id}/stock`,
    order availability) and as MRP's scheduled receipts on their `due_date` until they
    are received. Event `purchase_order.created`."""
    return present(await service.create(session, body))


@router.get(
    "",
    response_model=Page[PurchaseOrderOut],
    summary="List purchase orders",
    responses=problem_responses(422),
    openapi_extra=documented_filter(),
)
async def list_purchase_orders(
    session: Session,
    paging: Paging,
    meta: MetadataFilter,
    status: Annotated[
        list[PurchaseOrderStatus] | None, Query(description="Repeat for several.")
    ] = None,
    item_id: Annotated[
        uuid.UUID | None, Query(description="Orders with a line of this item.")
    ] = None,
    supplier: Annotated[str | None, Query(max_length=200, description="Exact match.")] = None,
) -> dict[str, object]:
    """Purchase orders with their lines, oldest first; filter by status (repeat for
    several), item, supplier or `?metadata[key]=value`."""
    rows, cursor = await service.list_orders(session, paging, status or [], item_id, supplier, meta)
    return {"data": [present(r) for r in rows], "next_cursor": cursor}


@router.get(
    "/{purchase_order_id}",
    response_model=PurchaseOrderOut,
    summary="Get a purchase order",
    responses=problem_responses(404),
)
async def get_purchase_order(purchase_order_id: str, session: Session) -> PurchaseOrderOut:
    """The order with its lines, what each has received and what is still to come, and
    its `ETag`."""
    return present(await service.get(session, purchase_order_id))


@router.patch(
    "/{purchase_order_id}",
    response_model=PurchaseOrderOut,
    summary="Update a purchase order's reference or metadata",
    responses=problem_responses(404, 412, 422),
)
async def update_purchase_order(
    purchase_order_id: str, body: PurchaseOrderUpdate, session: Session, if_match: IfMatch
) -> PurchaseOrderOut:
    """Change `reference` (`null` removes it) or merge `metadata` (a key set to `""` is
    removed), in any status. Event `purchase_order.updated` when something changed."""
    return present(await service.update(session, purchase_order_id, body, if_match))


RECEIPT = (
    "Receives each line's quantity into stock (default location `MAIN`) as a `receipt` "
    "movement with `purchase_order_id`, valued at the line's `unit_cost`, so the item's "
    "moving-average cost moves by exactly what was paid. A line can be received in parts "
    "and beyond its quantity; the order becomes `received` once every line has received "
    "at least its quantity. Lot-tracked items need `lot_code`, serial-tracked `serials`, "
    "as for `POST /v1/stock/receipts`. A `line_id` not of this order → 422. Event "
    "`purchase_order.received` on every receipt: its `status` tells whether the order is "
    "complete. One transaction: concurrent receipts queue on the order's row lock."
)


@router.post(
    "/{purchase_order_id}/receipts",
    response_model=PurchaseOrderOut,
    summary="Receive goods against a purchase order",
    responses=ACTION_ERRORS,
    description=RECEIPT + LIFECYCLE,
)
async def receive_purchase_order(
    purchase_order_id: str, body: PurchaseReceiptCreate, session: Session, if_match: IfMatch
) -> PurchaseOrderOut:
    return present(await service.receive(session, purchase_order_id, body, if_match))


@router.post(
    "/{purchase_order_id}/cancel",
    response_model=PurchaseOrderOut,
    summary="Cancel a purchase order",
    responses=ACTION_ERRORS,
    description="Status `cancelled`, final: its lines no longer count as incoming. Only "
    "while nothing has been received, else 409 `conflict`. Event "
    "`purchase_order.cancelled`." + LIFECYCLE,
)
async def cancel_purchase_order(
    purchase_order_id: str, session: Session, if_match: IfMatch
) -> PurchaseOrderOut:
    return present(await service.cancel(session, purchase_order_id, if_match))
