"""Production plans: create, read, run MRP, firm the proposals into planned orders.

A run replaces the plan's proposals with new ones; ``firm`` turns the last run's
production proposals that are not firmed yet into planned production orders (one
each), and answers 409 when there is nothing left to firm. Both lock the plan row
first, so a run and a firm of one plan queue instead of interleaving.
"""

import uuid
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from prodorder_api.boms.models import Bom
from prodorder_api.concurrency import ANY, Precondition
from prodorder_api.db import utcnow
from prodorder_api.errors import Conflict, NotFound, ValidationFailed
from prodorder_api.ids import parse_id
from prodorder_api.items.models import Item
from prodorder_api.locations import service as locations
from prodorder_api.money import MAX_MAGNITUDE, to_json
from prodorder_api.orders import service as orders
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.planning import inputs, mrp
from prodorder_api.planning.models import PlanLine, PlanProposal, ProductionPlan
from prodorder_api.planning.schemas import PlanCreate, PlanLineOut, PlanOut, ProposalOut


async def create(session: AsyncSession, data: PlanCreate) -> PlanOut:
    wanted = {line.item_id for line in data.lines}
    known = set(await session.scalars(select(Item.id).where(Item.id.in_(wanted))))
    for index, line in enumerate(data.lines):
        if line.item_id not in known:
            raise ValidationFailed(
                ["body", "lines", index, "item_id"], f"no item with id {line.item_id}"
            )
    plan = ProductionPlan(
        name=data.name,
        status="new",
        lines=[
            PlanLine(
                position=i, item_id=line.item_id, quantity=line.quantity, due_date=line.due_date
            )
            for i, line in enumerate(data.lines)
        ],
        proposals=[],
    )
    session.add(plan)
    await session.flush()
    return present(plan, [])


async def get(session: AsyncSession, plan_id: str) -> PlanOut:
    plan = await _load(session, plan_id)
    return present(plan, _stored(await _stored_proposals(session, plan.id)))


async def list_plans(
    session: AsyncSession, params: PageParams
) -> tuple[list[ProductionPlan], str | None]:
    return await paginate(session, select(ProductionPlan), ProductionPlan.id, params)


async def run(
    session: AsyncSession, plan_id: str, if_match: Precondition = ANY, today: date | None = None
) -> PlanOut:
    """MRP over every level; the proposals replace the last run's and are returned."""
    plan = await _load(session, plan_id, for_update=True)
    if_match.check(plan.version)
    loaded = await inputs.load(session, plan, today or utcnow().date())
    try:
        proposals = mrp.plan(loaded)
    except mrp.CycleError as exc:
        raise Conflict(str(exc)) from exc
    for proposal in proposals:
        if proposal.quantity >= MAX_MAGNITUDE:
            raise Conflict(
                f"the plan needs {proposal.quantity} of item {proposal.item_id}: "
                f"more than this service can keep (under {MAX_MAGNITUDE:,})"
            )
    await session.execute(delete(PlanProposal).where(PlanProposal.plan_id == plan.id))
    if proposals:
        await session.execute(
            insert(cast(Table, PlanProposal.__table__)),
            [_row(plan.id, position, p) for position, p in enumerate(proposals)],
        )
    _touch(plan, "proposed")
    plan.run_at = plan.updated_at
    plan.firmed_at = None
    await session.flush()
    return present(plan, [_fresh(p) for p in proposals])


async def firm(session: AsyncSession, plan_id: str, if_match: Precondition = ANY) -> PlanOut:
    """Planned production orders for the last run's production proposals not firmed yet:
    the proposal's quantity, due date and start date, the item's default BOM, location
    MAIN, the plan's name (else its id) as reference, linked by ``production_plan_id``."""
    plan = await _load(session, plan_id, for_update=True)
    if_match.check(plan.version)
    if plan.run_at is None:
        raise Conflict("the plan has not been run: run it first, then firm its proposals")
    proposals = await _stored_proposals(session, plan.id)
    to_firm = [p for p in proposals if p.kind == "production" and p.production_order_id is None]
    if not to_firm:
        raise Conflict(
            "nothing to firm: the last run proposed no production that is not firmed yet "
            "(run the plan again to re-plan against today's stock and orders)"
        )
    boms = await _default_boms(session, {p.item_id for p in to_firm})
    location = await locations.resolve(session, None, "location_id")
    reference = plan.name or str(plan.id)
    placed = await orders.place(
        session,
        [
            orders.NewOrder(
                item_id=p.item_id,
                bom=boms[p.item_id],
                quantity=p.quantity,
                location_id=location.id,
                output_location_id=location.id,
                due_date=p.due_date,
                planned_start=p.start_date,
                reference=reference,
                production_plan_id=plan.id,
            )
            for p in to_firm
        ],
    )
    for proposal, order in zip(to_firm, placed, strict=True):
        proposal.production_order_id = order.id
    _touch(plan, "firmed")
    plan.firmed_at = plan.updated_at
    await session.flush()
    return present(plan, _stored(proposals))


async def _default_boms(session: AsyncSession, item_ids: set[uuid.UUID]) -> dict[uuid.UUID, Bom]:
    found = await session.scalars(
        select(Bom)
        .where(Bom.item_id.in_(item_ids), Bom.is_default)
        .options(selectinload(Bom.lines), selectinload(Bom.operations))
    )
    boms = {bom.item_id: bom for bom in found}
    missing = sorted(item_ids - boms.keys())
    if missing:
        raise Conflict(
            f"item {missing[0]} has no default BOM any more: run the plan again before firming"
        )
    return boms


async def _load(session: AsyncSession, plan_id: str, *, for_update: bool = False) -> ProductionPlan:
    parsed = parse_id(plan_id)
    plan = None
    if parsed is not None:
        stmt = (
            select(ProductionPlan)
            .where(ProductionPlan.id == parsed)
            .options(selectinload(ProductionPlan.lines))
        )
        if for_update:
            stmt = stmt.with_for_update(of=ProductionPlan)
        plan = await session.scalar(stmt.execution_options(populate_existing=True))
    if plan is None:
        raise NotFound(f"no production plan with id {plan_id}")
    return plan


async def _stored_proposals(session: AsyncSession, plan_id: uuid.UUID) -> list[PlanProposal]:
    rows = await session.scalars(
        select(PlanProposal).where(PlanProposal.plan_id == plan_id).order_by(PlanProposal.position)
    )
    return list(rows)


def _touch(plan: ProductionPlan, status: str) -> None:
    plan.status = status
    plan.version += 1
    plan.updated_at = utcnow()


def _row(plan_id: uuid.UUID, position: int, proposal: mrp.Proposal) -> dict[str, Any]:
    return {
        "id": proposal.id,
        "plan_id": plan_id,
        "position": position,
        "kind": proposal.kind,
        "item_id": proposal.item_id,
        "quantity": proposal.quantity,
        "start_date": proposal.start_date,
        "due_date": proposal.due_date,
        "level": proposal.level,
        "pegged_to": [
            {"type": peg.type, "id": str(peg.id), "quantity": to_json(peg.quantity)}
            for peg in proposal.pegged_to
        ],
        "production_order_id": None,
    }


def _fresh(proposal: mrp.Proposal) -> ProposalOut:
    return ProposalOut.model_validate(
        {
            "id": proposal.id,
            "kind": proposal.kind,
            "item_id": proposal.item_id,
            "quantity": proposal.quantity,
            "start_date": proposal.start_date,
            "due_date": proposal.due_date,
            "level": proposal.level,
            "pegged_to": proposal.pegged_to,
            "production_order_id": None,
        }
    )


def _stored(proposals: list[PlanProposal]) -> list[ProposalOut]:
    return [ProposalOut.model_validate(p) for p in proposals]


def present(plan: ProductionPlan, proposals: list[ProposalOut]) -> PlanOut:
    return PlanOut(
        id=plan.id,
        name=plan.name,
        status=plan.status,
        run_at=plan.run_at,
        firmed_at=plan.firmed_at,
        version=plan.version,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        lines=[PlanLineOut.model_validate(line) for line in plan.lines],
        proposals=proposals,
    )
