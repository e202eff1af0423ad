from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.fields import AwareDatetime
from prodorder_api.items import service
from prodorder_api.items.models import Item
from prodorder_api.items.schemas import ItemCreate, ItemOut, ItemUpdate
from prodorder_api.metadata import MetadataFilter, documented_filter
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/items",
    tags=["items"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=201,
    response_model=ItemOut,
    summary="Create an item",
    responses=problem_responses(409, 422),
)
async def create_item(body: ItemCreate, session: Session) -> Item:
    """Create a stocked article. `sku` is unique (409 `conflict`)."""
    return await service.create(session, body)


@router.get(
    "",
    response_model=Page[ItemOut],
    summary="List items",
    responses=problem_responses(422),
    openapi_extra=documented_filter(),
)
async def list_items(
    session: Session,
    paging: Paging,
    meta: MetadataFilter,
    sku: Annotated[str | None, Query(max_length=64, description="Exact SKU.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of SKU or name.")] = None,
    updated_after: Annotated[
        AwareDatetime | None, Query(description="Only items changed after this time (RFC 3339).")
    ] = None,
) -> dict[str, object]:
    """Items, oldest first; filter by exact `sku`, by `q` (part of SKU or name), or by
    `updated_after` to sync only what changed, or by `?metadata[key]=value`."""
    rows, cursor = await service.list_items(session, paging, sku, q, updated_after, meta)
    return to_page(ItemOut, rows, cursor)


@router.get(
    "/{item_id}", response_model=ItemOut, summary="Get an item", responses=problem_responses(404)
)
async def get_item(item_id: str, session: Session) -> Item:
    """One item with its `average_cost` (kept by the service) and its `ETag`."""
    return await service.get(session, item_id)


@router.patch(
    "/{item_id}",
    response_model=ItemOut,
    summary="Update an item",
    responses=problem_responses(404, 409, 412, 422),
)
async def update_item(item_id: str, body: ItemUpdate, session: Session, if_match: IfMatch) -> Item:
    """Change only the fields sent. `average_cost` is the service's, not yours to set."""
    return await service.update(session, item_id, body, if_match)
