"""API keys: bearer tokens with a scope, stored as their SHA-256 only.

Tokens carry 256 random bits, so a fast hash is enough (no password stretching is
needed against guessing). Lookups are cached in-process for a few seconds; a key
revoked through the API stops working at once in this process and within
``CACHE_SECONDS`` everywhere else.
"""

import hashlib
import secrets
import time
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.auth.models import SCOPES, ApiKey
from prodorder_api.db import insert_ignoring, utcnow
from prodorder_api.errors import NotFound
from prodorder_api.ids import new_id, parse_id

TOKEN_PREFIX = "po_"
CACHE_SECONDS = 5.0
# Keyed by database as well: one process may serve several (the tests run both backends).
_cache: dict[tuple[str, str], tuple[float, uuid.UUID | None, str]] = {}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def allows(granted: str, needed: str) -> bool:
    return SCOPES.index(granted) >= SCOPES.index(needed)


async def create(session: AsyncSession, name: str, scope: str) -> tuple[ApiKey, str]:
    """A new key; the token is returned here once and never stored."""
    token = new_token()
    key = ApiKey(name=name, prefix=token[:10], token_hash=hash_token(token), scope=scope)
    session.add(key)
    await session.flush()
    return key, token


async def install(session: AsyncSession, token: str, name: str, scope: str) -> None:
    """Make ``token`` a valid key (start-up bootstrap); idempotent across workers."""
    await session.execute(
        insert_ignoring(session, ApiKey)
        .values(
            id=new_id(),
            name=name,
            prefix=token[:10],
            token_hash=hash_token(token),
            scope=scope,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["token_hash"])
    )


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.id)))


async def revoke(session: AsyncSession, key_id: str) -> ApiKey:
    parsed = parse_id(key_id)
    key = await session.get(ApiKey, parsed) if parsed else None
    if key is None:
        raise NotFound(f"no API key with id {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    _cache.clear()
    return key


async def any_active(session: AsyncSession) -> bool:
    return (
        await session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1))
    ) is not None


async def authenticate(session: AsyncSession, token: str) -> tuple[uuid.UUID, str] | None:
    """(key id, scope) of an active token, or None."""
    database = str(session.get_bind().engine.url)
    cached = _cached(database, token)
    if cached is not None:
        return cached[0]
    digest = hash_token(token)
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.scope).where(
                ApiKey.token_hash == digest, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[(database, digest)] = (time.monotonic(), row[0] if row else None, row[1] if row else "")
    return (row[0], row[1]) if row else None


def _cached(database: str, token: str) -> tuple[tuple[uuid.UUID, str] | None] | None:
    """``authenticate``'s answer for the token if it is fresh, as a 1-tuple; else None."""
    entry = _cache.get((database, hash_token(token)))
    if entry is None or time.monotonic() - entry[0] >= CACHE_SECONDS:
        return None
    return ((entry[1], entry[2]) if entry[1] is not None else None,)
