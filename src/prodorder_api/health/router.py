"""Liveness and readiness for load balancers and orchestrators (no API key needed)."""

import asyncio
from typing import Any, Literal

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from typing_extensions import TypeAliasType

from prodorder_api.errors import Problem, problem_response, problem_type
from prodorder_api.migrate import alembic_config
from prodorder_api.read_routing import CONNECT_TIMEOUT_S, ReadReplica
from prodorder_api.routing import ApiRoute

router = APIRouter(tags=["health"], route_class=ApiRoute)


class Health(BaseModel):
    status: str


ReplicaStatus = TypeAliasType("ReplicaStatus", Literal["streaming", "paused", "unreachable"])


class ReplicaLag(BaseModel):
    """The read replica (``PRODORDER_READ_DATABASE_URL``) as this instance sees it."""

    status: ReplicaStatus = Field(
        description="`paused`: WAL replay is paused on the replica; `unreachable`: reads "
        "go to the primary until it answers again."
    )
    lag_bytes: int | None = Field(
        description="WAL the replica has yet to replay, in bytes (primary's current LSN "
        "minus the replica's replayed LSN)."
    )
    lag_s: float | None = Field(
        description="Seconds since the last transaction the replica replayed, while it has "
        "WAL left to replay; 0 when it has replayed everything."
    )
    detail: str | None = None


class Readiness(BaseModel):
    status: str
    schema_revision: str
    replica: ReplicaLag | None = Field(
        default=None, description="Only when reads are served from a replica."
    )


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process is up. Touches nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Problem, "description": "Database unreachable or schema behind."}},
)
async def readyz(request: Request) -> Any:
    """Ready when the (primary) database answers and its schema is at the migrations'
    head. Where reads are served from a replica, `replica` reports its lag; a replica
    out of reach does not make the instance unready (its reads go to the primary)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
    replica: ReadReplica | None = request.app.state.replica
    try:
        # The replica first: the primary's position, read after, is never behind it.
        lag, replayed = await _replica_state(replica) if replica is not None else (None, None)
        async with request.app.state.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            if lag is not None and replayed is not None:
                primary_lsn = await conn.scalar(text("SELECT pg_current_wal_lsn()::text"))
                lag.lag_bytes = max(0, _lsn(primary_lsn) - replayed)
                lag.lag_s = lag.lag_s if lag.lag_bytes else 0.0
    except Exception as exc:  # any failure to reach or read the database means not ready
        return _not_ready(f"database not reachable: {type(exc).__name__}")
    if current != head:
        return _not_ready(f"schema at {current}, migrations at {head}: run `prodorder-api migrate`")
    return Readiness(status="ready", schema_revision=head, replica=lag)


_REPLAYED = text(
    "SELECT pg_last_wal_replay_lsn()::text, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float, "
    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END"
)


async def _replica_state(replica: ReadReplica) -> tuple[ReplicaLag, int | None]:
    """The replica's status, and the WAL position it has replayed (None when it is out
    of reach or no standby); the caller sets ``lag_bytes`` from the primary's."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S), replica.engine.connect() as conn:
            replayed, since_s, paused = (await conn.execute(_REPLAYED)).one()
    except Exception as exc:  # out of reach: reported, and reads go to the primary
        detail = type(exc).__name__
        return ReplicaLag(status="unreachable", lag_bytes=None, lag_s=None, detail=detail), None
    if replayed is None:  # not a standby at all (a primary given as the read URL)
        return ReplicaLag(
            status="streaming", lag_bytes=None, lag_s=0.0, detail="not in recovery"
        ), None
    status = "paused" if paused else "streaming"
    since = round(since_s, 3) if since_s is not None else None
    return ReplicaLag(status=status, lag_bytes=None, lag_s=since), _lsn(replayed)


def _lsn(text_lsn: str) -> int:
    """``16/B374D848`` as a byte position."""
    high, _, low = text_lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _not_ready(detail: str) -> JSONResponse:
    return problem_response(
        {
            "type": problem_type("not_ready"),
            "title": "Not ready",
            "status": 503,
            "detail": detail,
            "code": "not_ready",
        }
    )
