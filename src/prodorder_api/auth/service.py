"""API keys: bearer tokens with a scope, stored as their SHA-256 only.

Tokens carry 256 random bits, so a fast hash is enough (no password stretching is
needed against guessing). A lookup is cached in the process for ``CACHE_SECONDS``: a
key revoked through the API is refused at once by the process that revoked it and
within ``CACHE_SECONDS`` by every other process and instance. Half a second costs at
most two lookups a second per key and process, so no notification channel is needed
and both databases behave alike.
"""

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.auth.models import SCOPES, ApiKey
from prodorder_api.db import insert_ignoring, utcnow
from prodorder_api.errors import NotFound
from prodorder_api.ids import new_id, parse_id

TOKEN_PREFIX: Final = "po_"
PREFIX_LENGTH: Final = 10
MIN_BOOTSTRAP_LENGTH: Final = 32
CACHE_SECONDS: Final = 0.5
LAST_USED_EVERY: Final = timedelta(minutes=1)
_CACHE_ENTRIES: Final = 10_000


@dataclass(frozen=True)
class Caller:
    key_id: uuid.UUID
    scope: str


# (database, token hash) → (when the lookup began, the caller or None for "no such key").
# Keyed by database as well: one process may serve several (the tests run both backends).
_cache: dict[tuple[str, str], tuple[float, Caller | None]] = {}
_cleared_at = 0.0  # monotonic time of the last revoke this process committed


def _forget_all(*_args: object) -> None:
    global _cleared_at
    _cache.clear()
    _cleared_at = time.monotonic()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def allows(granted: str, needed: str) -> bool:
    return SCOPES.index(granted) >= SCOPES.index(needed)


def bootstrap_problem(token: str) -> str | None:
    """Why ``PRODORDER_BOOTSTRAP_KEY`` cannot be an admin key, or None when it can."""
    if len(token) < MIN_BOOTSTRAP_LENGTH:
        return (
            f"PRODORDER_BOOTSTRAP_KEY is {len(token)} characters long; an admin key needs "
            f"at least {MIN_BOOTSTRAP_LENGTH} random ones, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    return None


def _new_key(name: str, scope: str, token: str) -> ApiKey:
    return ApiKey(
        id=new_id(),
        name=name,
        prefix=token[:PREFIX_LENGTH],
        token_hash=hash_token(token),
        scope=scope,
        created_at=utcnow(),
    )


async def create(session: AsyncSession, name: str, scope: str) -> tuple[ApiKey, str]:
    """A new key; the token is returned here once and never stored."""
    token = new_token()
    key = _new_key(name, scope, token)
    session.add(key)
    await session.flush()
    return key, token


async def install(session: AsyncSession, token: str, name: str, scope: str) -> None:
    """Make ``token`` a valid key (start-up bootstrap); idempotent across workers."""
    problem = bootstrap_problem(token)
    if problem:
        raise ValueError(problem)
    key = _new_key(name, scope, token)
    values = {column.key: getattr(key, column.key) for column in ApiKey.__table__.columns}
    await session.execute(
        insert_ignoring(session, ApiKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["token_hash"])
    )


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.id)))


async def get(session: AsyncSession, key_id: str) -> ApiKey:
    parsed = parse_id(key_id)
    key = await session.get(ApiKey, parsed) if parsed else None
    if key is None:
        raise NotFound(f"no API key with id {key_id}")
    return key


async def revoke(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoke the key (again: a no-op); this process refuses it from now on."""
    key = await get(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        event.listen(session.sync_session, "after_commit", _forget_all, once=True)
    return key


async def any_active(session: AsyncSession) -> bool:
    return (
        await session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1))
    ) is not None


async def authenticate(session: AsyncSession, token: str) -> Caller | None:
    """The caller an active token stands for, or None; notes when the key was used."""
    database = str(session.get_bind().engine.url)
    digest = hash_token(token)
    entry = _cache.get((database, digest))
    now = time.monotonic()
    if entry is not None and now - entry[0] < CACHE_SECONDS:
        return entry[1]
    # The entry is stamped with the time the lookup began, not ended: a revoke that
    # commits while this lookup runs is seen within CACHE_SECONDS of the commit.
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.scope, ApiKey.last_used_at).where(
                ApiKey.token_hash == digest, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    caller = Caller(row.id, row.scope) if row else None
    stale = utcnow() - LAST_USED_EVERY
    if row is not None and (row.last_used_at is None or row.last_used_at < stale):
        await session.execute(
            update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=utcnow())
        )
    if len(_cache) >= _CACHE_ENTRIES:
        _cache.clear()
    if now > _cleared_at:  # a lookup that began before a revoke committed is not kept
        _cache[(database, digest)] = (now, caller)
    return caller
