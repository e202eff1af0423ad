"""Liveness and readiness for load balancers and orchestrators (no API key needed)."""

from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from prodorder_api.errors import Problem, problem_response, problem_type
from prodorder_api.migrate import alembic_config
from prodorder_api.routing import ApiRoute

router = APIRouter(tags=["health"], route_class=ApiRoute)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    schema_revision: str


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
    """Ready when the database answers and its schema is at the migrations' head."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
    try:
        async with request.app.state.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # any failure to reach or read the database means not ready
        return _not_ready(f"database not reachable: {type(exc).__name__}")
    if current != head:
        return _not_ready(f"schema at {current}, migrations at {head}: run `prodorder-api migrate`")
    return Readiness(status="ready", schema_revision=head)


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
