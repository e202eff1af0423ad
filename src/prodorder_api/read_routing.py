"""Pure reads on a streaming replica (``PRODORDER_READ_DATABASE_URL``, SPEC §12).

One rule, applied in ``db.session_dependency`` and nowhere else: a ``GET`` or ``HEAD``
of ``/v1`` reads the replica, unless

* it is sent with ``Consistency: strong``;
* it is one of the reads that must see every commit at once: the event feed (read in
  commit order by integrations), API keys and webhooks (configuration an admin expects
  to see right after changing it);
* the replica is down: a connection it refuses, or cannot open within
  ``CONNECT_TIMEOUT_S``, sends the read to the primary, and so do the reads of the
  next ``RETRY_AFTER_S`` seconds before the replica is tried again. A read whose
  replica connection breaks while it runs gets the usual 503 ``service_unavailable``
  with ``Retry-After`` (never a 500), and its retry reads the primary.

Everything else — every write, the authentication of every request (which may record
a key's last use), the idempotency records, the outbox, the webhook dispatcher and
``/readyz``'s schema check — uses the primary. A GET of an order whose
``If-None-Match`` names a version newer than the replica's row asks the primary again
(``db.on_primary``), so a client that sends the ETag its write returned never reads
an older order.
"""

import logging
import time
from typing import Any

import asyncpg
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import Request

from prodorder_api.db import PRIMARY_OF_REPLICA, create_engine, create_sessionmaker
from prodorder_api.settings import Settings

log = logging.getLogger("prodorder_api.replica")

READ_METHODS = frozenset({"GET", "HEAD"})
PRIMARY_READS = ("/v1/events", "/v1/api-keys", "/v1/webhooks")
CONNECT_TIMEOUT_S = 2.0
RETRY_AFTER_S = 2.0

# What opening a replica connection raises when the replica is down, restarting, out
# of reach or not (yet) holding the database: the read then goes to the primary.
_CONNECT_FAILURES = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
)


def replica_path(path: str) -> bool:
    return path.startswith("/v1/") and not path.startswith(PRIMARY_READS)


CONSISTENCY_HEADER = "Consistency"
CONSISTENCY_PARAMETER = {
    "name": CONSISTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "`strong`: read from the primary database, where the service serves "
    "reads from a replica (`PRODORDER_READ_DATABASE_URL`), so the answer shows every "
    "change committed before the request. Without it a GET may lag the primary by the "
    "replica's lag (`/readyz` reports it). Writes always use the primary.",
    "schema": {"$ref": f"#/components/schemas/{CONSISTENCY_HEADER}"},
}


def document_consistency(schema: dict[str, Any]) -> None:
    """Declare the ``Consistency`` header once, on every read the replica may answer."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})[CONSISTENCY_HEADER] = {
        "type": "string",
        "enum": ["strong"],
        "title": CONSISTENCY_HEADER,
    }
    # One parameter component, referenced by every read the replica may answer.
    components.setdefault("parameters", {})[CONSISTENCY_HEADER] = dict(CONSISTENCY_PARAMETER)
    reference = {"$ref": f"#/components/parameters/{CONSISTENCY_HEADER}"}
    for path, operations in schema.get("paths", {}).items():
        if replica_path(path) and "get" in operations:
            operations["get"].setdefault("parameters", []).append(dict(reference))


class ReadReplica:
    """The replica's engine, and whether reads go there now."""

    def __init__(self, engine: AsyncEngine, primary: AsyncEngine) -> None:
        self.engine = engine
        self.primary = primary
        self.sessionmaker = create_sessionmaker(engine)
        self.down_until = 0.0
        self.last_failure: str | None = None

    def serves(self, request: Request) -> bool:
        """Whether ``request`` is a pure read the replica may answer."""
        if request.method not in READ_METHODS or not replica_path(request.url.path):
            return False
        consistency = request.headers.get(CONSISTENCY_HEADER)
        return consistency is None or consistency.strip().lower() != "strong"

    async def session(self) -> AsyncSession | None:
        """A session whose transaction has begun on the replica, or None while it is
        down (then the caller reads the primary)."""
        if time.monotonic() < self.down_until:
            return None
        session = self.sessionmaker()
        session.info[PRIMARY_OF_REPLICA] = self.primary
        try:
            await session.connection()
        except _CONNECT_FAILURES as exc:
            await session.close()
            self.down_until = time.monotonic() + RETRY_AFTER_S
            self.last_failure = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("read replica unavailable, reading the primary: %s", self.last_failure)
            return None
        self.last_failure = None
        return session

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_replica(settings: Settings, primary: AsyncEngine) -> ReadReplica | None:
    """The replica of ``PRODORDER_READ_DATABASE_URL``, or None when it is unset."""
    if not settings.read_database_url:
        return None
    engine = create_engine(
        settings.read_database_url,
        pool_size=settings.db_pool_size,
        pgbouncer=settings.db_pgbouncer,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )
    return ReadReplica(engine, primary)
