"""Authorisation for every /v1 route: a bearer key whose scope covers the request.

Reads (GET, HEAD) need ``read``; every other method ``write``; routers that manage
keys or webhooks need ``admin``. The idempotency check runs right after, because
idempotency keys are scoped per API key.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.auth import service
from prodorder_api.deps import Session
from prodorder_api.errors import Forbidden, Unauthorized
from prodorder_api.idempotency import service as idempotency

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Caller:
    key_id: uuid.UUID
    scope: str


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer <token>`. Scopes: `read` for GET, "
    "`write` for changes, `admin` for webhooks.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _caller(
    request: Request,
    session: AsyncSession,
    credentials: HTTPAuthorizationCredentials | None,
    needed: str,
) -> Caller:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("send an API key as `Authorization: Bearer <token>`")
    found = await service.authenticate(session, credentials.credentials.strip())
    if found is None:
        raise Unauthorized("the API key is unknown or revoked")
    caller = Caller(*found)
    if not service.allows(caller.scope, needed):
        raise Forbidden(f"this needs a key with the {needed!r} scope; yours is {caller.scope!r}")
    request.state.caller = caller
    await idempotency.check(request, session, caller.key_id)
    return caller


async def authorize(request: Request, session: Session, credentials: Credentials) -> Caller:
    needed = "read" if request.method in READ_METHODS else "write"
    return await _caller(request, session, credentials, needed)


async def authorize_admin(request: Request, session: Session, credentials: Credentials) -> Caller:
    return await _caller(request, session, credentials, "admin")


Authorized = Depends(authorize)
AdminOnly = Depends(authorize_admin)
