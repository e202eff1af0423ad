"""A plan as the API shows it (``schemas.PlanOut``), rendered to JSON.

Pydantic renders the plan and its lines; the proposals, tens of thousands on a large
plan, are rendered here from their stored form. Measured on the 5,000-item bench
(78,000 proposals, 185,000 pegs, 34 MB of JSON): validating them into ``ProposalOut``
and dumping took 2.6 s of CPU, these format strings 0.8 s, and each proposal's
``pegged_to`` is rendered once for the database and every response after.
``tests/test_planning.py`` checks that what is rendered here is ``PlanOut`` exactly.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from fastapi.responses import Response

from prodorder_api.concurrency import etag
from prodorder_api.money import to_json
from prodorder_api.planning.models import ProductionPlan
from prodorder_api.planning.mrp import Peg
from prodorder_api.planning.schemas import PlanLineOut, PlanOut


class ProposalRow(NamedTuple):
    """A proposal as stored (the columns of ``PlanProposal``) and shown."""

    id: uuid.UUID
    kind: str
    item_id: uuid.UUID
    quantity: Decimal
    start_date: date
    due_date: date
    level: int
    pegged_to: str  # the JSON array, as shown
    production_order_id: uuid.UUID | None
    purchase_order_id: uuid.UUID | None


@dataclass(frozen=True)
class PlanView:
    plan: ProductionPlan
    proposals: Sequence[ProposalRow]


def pegs_json(pegs: Iterable[Peg]) -> str:
    return (
        "["
        + ",".join(
            f'{{"type":"{peg.type}","id":"{peg.id}","quantity":"{to_json(peg.quantity)}"}}'
            for peg in pegs
        )
        + "]"
    )


def _proposal_json(p: ProposalRow) -> str:
    order = "null" if p.production_order_id is None else f'"{p.production_order_id}"'
    bought = "null" if p.purchase_order_id is None else f'"{p.purchase_order_id}"'
    return (
        f'{{"id":"{p.id}","kind":"{p.kind}","item_id":"{p.item_id}",'
        f'"quantity":"{to_json(p.quantity)}","start_date":"{p.start_date.isoformat()}",'
        f'"due_date":"{p.due_date.isoformat()}","level":{p.level},'
        f'"pegged_to":{p.pegged_to},"production_order_id":{order},'
        f'"purchase_order_id":{bought}}}'
    )


def render(view: PlanView) -> bytes:
    plan = view.plan
    head = PlanOut(
        id=plan.id,
        name=plan.name,
        status=plan.status,
        run_at=plan.run_at,
        firmed_at=plan.firmed_at,
        version=plan.version,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        lines=[PlanLineOut.model_validate(line) for line in plan.lines],
        proposals=[],
    ).model_dump_json()
    empty = '"proposals":[]}'
    assert head.endswith(empty), "proposals must stay PlanOut's last field"
    proposals = ",".join(_proposal_json(p) for p in view.proposals)
    return f'{head[: -len(empty)]}"proposals":[{proposals}]}}'.encode()


def response(view: PlanView, status_code: int = 200) -> Response:
    """The JSON response, with the plan's ``ETag`` (set here, so the route class does
    not parse megabytes of body to find the version)."""
    return Response(
        render(view),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag(view.plan.version)},
    )
