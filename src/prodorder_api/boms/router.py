import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.boms import explosion, service
from prodorder_api.boms.models import Bom
from prodorder_api.boms.schemas import BomCost, BomCreate, BomOut, BomUpdate, Explosion
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.fields import PositiveDecimal
from prodorder_api.metadata import MetadataFilter, documented_filter
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/boms",
    tags=["boms"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)

Quantity = Annotated[PositiveDecimal, Query(description="How many of the product.")]


@router.post(
    "",
    status_code=201,
    response_model=BomOut,
    summary="Create a BOM revision",
    responses=problem_responses(409, 422),
)
async def create_bom(body: BomCreate, session: Session) -> Bom:
    """A product's components (per `output_quantity`), operations and by-products.
    The item's first BOM is its default. A product may not appear among its own
    components at any depth (422)."""
    return await service.create(session, body)


@router.get(
    "",
    response_model=Page[BomOut],
    summary="List BOMs",
    responses=problem_responses(422),
    openapi_extra=documented_filter(),
)
async def list_boms(
    session: Session, paging: Paging, meta: MetadataFilter, item_id: uuid.UUID | None = None
) -> dict[str, object]:
    """BOM revisions, oldest first; `item_id` gives one product's revisions,
    `?metadata[key]=value` those carrying that pair."""
    rows, cursor = await service.list_boms(session, paging, item_id, meta)
    return to_page(BomOut, rows, cursor)


@router.get(
    "/{bom_id}", response_model=BomOut, summary="Get a BOM", responses=problem_responses(404)
)
async def get_bom(bom_id: str, session: Session) -> Bom:
    """One BOM revision with its lines, operations and by-products, and its `ETag`."""
    return await service.get(session, bom_id)


@router.patch(
    "/{bom_id}",
    response_model=BomOut,
    summary="Change a BOM no order has used",
    responses=problem_responses(404, 409, 412, 422),
)
async def update_bom(bom_id: str, body: BomUpdate, session: Session, if_match: IfMatch) -> Bom:
    """Replaces the parts sent. Once a production order has used the BOM it is
    immutable (409 `conflict`): create a new revision instead."""
    return await service.update_bom(session, bom_id, body, if_match)


@router.post(
    "/{bom_id}/make-default",
    response_model=BomOut,
    summary="Make a BOM its item's default",
    responses=problem_responses(404, 412),
)
async def make_default_bom(bom_id: str, session: Session, if_match: IfMatch) -> Bom:
    """This revision becomes the item's default (the one new orders use); the
    previous default stays as a revision."""
    return await service.make_default(session, bom_id, if_match)


@router.get(
    "/{bom_id}/explosion",
    response_model=Explosion,
    summary="Explode a BOM over all levels",
    responses=problem_responses(404, 422),
)
async def explode_bom(
    bom_id: str,
    session: Session,
    quantity: Quantity = 1,
    flat: Annotated[bool, Query(description="Only the bought leaves, summed per item.")] = False,
) -> Explosion:
    """Every component at every level (1 = direct) with its required quantity, scrap
    included; `made` when it has a default BOM of its own, which is exploded too."""
    return await explosion.explode(session, await service.get(session, bom_id), quantity, flat)


@router.get(
    "/{bom_id}/cost",
    response_model=BomCost,
    summary="Roll up a BOM's material cost",
    responses=problem_responses(404, 422),
)
async def get_bom_cost(
    bom_id: str,
    session: Session,
    quantity: Quantity = 1,
) -> BomCost:
    """Made components roll up through their default BOM; bought ones use their
    average cost (standard cost while there is none)."""
    return await explosion.cost(session, await service.get(session, bom_id), quantity)
