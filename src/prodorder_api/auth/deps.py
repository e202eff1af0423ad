"""Authorisation for every /v1 route: a bearer key whose scope covers the request.

The key itself was checked by ``guard.Guard`` before the body was read; here the
route's need is checked against its scope. Reads (GET, HEAD) need ``read``; every
other method ``write``; the routers that manage keys or webhooks need ``admin``. The
idempotency check runs right after, because idempotency keys are scoped per API key.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.auth import service
from prodorder_api.auth.service import Caller
from prodorder_api.deps import Session
from prodorder_api.errors import Forbidden, Unauthorized
from prodorder_api.idempotency import service as idempotency

READ_METHODS = {"GET", "HEAD", "OPTIONS"}

# Declares the scheme in the OpenAPI document; the guard has read the header already.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer <token>`. Scopes: `read` for GET, "
    "`write` for changes, `admin` for API keys and webhooks.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _caller(request: Request, session: AsyncSession, needed: str) -> Caller:
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:  # only a route outside /v1 could get here
        raise Unauthorized("send an API key as `Authorization: Bearer <token>`")
    if not service.allows(caller.scope, needed):
        raise Forbidden(f"this needs a key with the {needed!r} scope; yours is {caller.scope!r}")
    await idempotency.check(request, session, caller.key_id)
    return caller


async def authorize(request: Request, session: Session, _credentials: Credentials) -> Caller:
    needed = "read" if request.method in READ_METHODS else "write"
    return await _caller(request, session, needed)


async def authorize_admin(request: Request, session: Session, _credentials: Credentials) -> Caller:
    return await _caller(request, session, "admin")


Authorized = Depends(authorize)
AdminOnly = Depends(authorize_admin)
