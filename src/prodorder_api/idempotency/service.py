"""Safe retries: ``Idempotency-Key`` on POST and PATCH.

The same key with the same request replays the first successful response
(``Idempotent-Replayed: true``); with a different request → 422
``idempotency_key_reused``; while the first is still running → 409
``idempotency_key_in_use``. Keys are scoped per API key and kept
``PRODORDER_IDEMPOTENCY_TTL_HOURS`` (24 h by default).

The record is written in the same transaction as the request's effect (see
``routing.ApiRoute``), so a key is stored exactly when its effect is. Only
successful responses are stored: a refused request changed nothing, so retrying
it simply runs it again. On PostgreSQL a transaction-scoped advisory lock on the
key tells a concurrent duplicate that the first is still running; SQLite runs one
writer at a time, so a duplicate there waits and then replays.
"""

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from prodorder_api.db import try_serialise, utcnow
from prodorder_api.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from prodorder_api.idempotency.models import IdempotencyRecord

HEADER = "idempotency-key"
METHODS = {"POST", "PATCH"}
REPLAYED_HEADERS = ("etag", "location")
TTL = timedelta(hours=24)


class Replay(Exception):
    """Raised to answer with the stored response instead of running the request."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("replay")
        # Plain copies: the session is rolled back (and its objects expired) first.
        self.status_code = record.status_code
        self.body = record.body
        self.headers = dict(record.headers)

    def response(self) -> Response:
        headers = {**self.headers, "Idempotent-Replayed": "true"}
        return Response(self.body, status_code=self.status_code, headers=headers)


async def _fingerprint(request: Request) -> str:
    body = await request.body()
    try:
        canonical: Any = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("latin-1")
    seed = f"{request.method} {request.url.path}?{request.url.query}\n{canonical}"
    return hashlib.sha256(seed.encode()).hexdigest()


async def check(request: Request, session: AsyncSession, api_key_id: uuid.UUID) -> None:
    key = request.headers.get(HEADER)
    if key is None or request.method not in METHODS:
        return
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed(["header", "Idempotency-Key"], "1 to 255 printable characters")
    fingerprint = await _fingerprint(request)
    if not await try_serialise(session, f"{api_key_id}:{key}"):
        raise IdempotencyKeyInUse("a request with this Idempotency-Key is still running")
    now = utcnow()
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
        )
    )
    if record is not None:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        raise Replay(record)
    request.state.idempotency = (api_key_id, key, fingerprint)


async def remember(request: Request, session: AsyncSession, response: Response) -> None:
    pending = getattr(request.state, "idempotency", None)
    if pending is None:
        return
    api_key_id, key, fingerprint = pending
    headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }
    headers["content-type"] = response.headers.get("content-type", "application/json")
    now = utcnow()
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            fingerprint=fingerprint,
            status_code=response.status_code,
            body=bytes(response.body).decode(),
            headers=headers,
            created_at=now,
            expires_at=now + TTL,
        )
    )
    await session.flush()


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
