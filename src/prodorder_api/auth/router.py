"""``/v1/api-keys``: create, list, get and revoke bearer keys (admin)."""

from fastapi import APIRouter
from sqlalchemy import select

from prodorder_api.auth import service
from prodorder_api.auth.deps import AdminOnly
from prodorder_api.auth.models import ApiKey
from prodorder_api.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.pagination import Page, paginate, to_page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/api-keys",
    tags=["api-keys"],
    route_class=ApiRoute,
    dependencies=[AdminOnly],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=problem_responses(422),
)
async def create_api_key(body: ApiKeyCreate, session: Session) -> object:
    """The token is in this response only; only its SHA-256 is stored. Send it as
    `Authorization: Bearer <token>`. Needs the `admin` scope."""
    key, token = await service.create(session, body.name, body.scope)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), token=token)


@router.get(
    "",
    response_model=Page[ApiKeyOut],
    summary="List API keys",
    responses=problem_responses(422),
)
async def list_api_keys(session: Session, paging: Paging) -> dict[str, object]:
    """Oldest first, revoked ones included. Never shows a token or its hash."""
    rows, cursor = await paginate(session, select(ApiKey), ApiKey.id, paging)
    return to_page(ApiKeyOut, rows, cursor)


@router.get(
    "/{key_id}",
    response_model=ApiKeyOut,
    summary="Get an API key",
    responses=problem_responses(404),
)
async def get_api_key(key_id: str, session: Session) -> object:
    """One key's name, scope, prefix and use; never its token."""
    return await service.get(session, key_id)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke an API key",
    responses=problem_responses(404),
)
async def revoke_api_key(key_id: str, session: Session) -> object:
    """The key is refused from now on: at once by this instance, within a second by
    every other (each caches a lookup for half a second). Revoking a revoked key
    changes nothing. The record stays, for the audit trail; a key cannot be revived."""
    return await service.revoke(session, key_id)
