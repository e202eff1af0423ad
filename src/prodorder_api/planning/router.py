from fastapi import APIRouter
from fastapi.responses import Response

from prodorder_api.auth.deps import Authorized
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.pagination import Page, to_page
from prodorder_api.planning import presenter, service
from prodorder_api.planning.schemas import FirmRequest, PlanCreate, PlanOut, PlanSummary
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/production-plans",
    tags=["production-plans"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


PEGGING = (
    "\n\nEach proposal's `pegged_to` lists the demands it serves, as `{type, id, quantity}` "
    "adding up to its `quantity`: `plan_line` (a line of this plan), `proposal` (a "
    "production proposal of this run that needs the item on its `start_date`) or "
    "`production_order` (an open order's requirement not yet consumed or reserved)."
)


@router.post(
    "",
    status_code=201,
    response_model=PlanOut,
    summary="Create a production plan",
    responses=problem_responses(422),
)
async def create_production_plan(body: PlanCreate, session: Session) -> Response:
    """The master plan: which products, how many, by when. Status `new`; `run` it to
    get proposals."""
    return presenter.response(await service.create(session, body), status_code=201)


@router.get(
    "",
    response_model=Page[PlanSummary],
    summary="List production plans",
    responses=problem_responses(422),
)
async def list_production_plans(session: Session, paging: Paging) -> dict[str, object]:
    """Plans, oldest first, with their status."""
    rows, cursor = await service.list_plans(session, paging)
    return to_page(PlanSummary, rows, cursor)


@router.get(
    "/{plan_id}",
    response_model=PlanOut,
    summary="Get a production plan",
    responses=problem_responses(404),
)
async def get_production_plan(plan_id: str, session: Session) -> Response:
    """The plan with its lines and the last run's proposals."""
    return presenter.response(await service.get(session, plan_id))


@router.post(
    "/{plan_id}/run",
    response_model=PlanOut,
    summary="Run MRP",
    responses=problem_responses(404, 409, 412),
    description="Explodes the plan through the default BOMs over all levels, by low-level "
    "code, and nets each item's gross requirements per day (lot-for-lot) against available "
    "stock (on hand − reserved, all locations), open orders' remaining output (on their "
    "due date), open purchase orders' lines still to come (on theirs) and open orders' "
    "requirements not yet consumed or reserved (on their planned start). Each shortfall "
    "becomes a proposal due that day and started `lead_time_days` earlier: `production` "
    "for items with a default BOM, whose "
    "components are then needed on that start date, `purchase` for bought ones. The "
    "proposals replace the last run's and are returned. Items below the plan are planned "
    "in full: what open orders are short of is proposed too, pegged to the order." + PEGGING,
)
async def run_production_plan(plan_id: str, session: Session, if_match: IfMatch) -> Response:
    return presenter.response(await service.run(session, plan_id, if_match))


@router.post(
    "/{plan_id}/firm",
    response_model=PlanOut,
    summary="Firm the proposals into planned orders (and purchase orders)",
    responses=problem_responses(404, 409, 412),
    description="Creates one planned production order for each `production` proposal of "
    "the last run not firmed yet: its quantity, `due_date`, `planned_start` = `start_date`, "
    "the item's default BOM, location `MAIN`, the plan's name (else its id) as `reference` "
    "and `production_plan_id`. The proposals then show their `production_order_id`. "
    "Without a body (or with `purchases: false`) purchases stay proposals. With "
    "`purchases: true` the `purchase` proposals not firmed yet become open purchase orders "
    "too: one per supplier (the item's `default_supplier`; the items without one share "
    "an order with no supplier), a line per proposal with its quantity and `due_date`, at "
    "the item's `average_cost` (its `standard_cost` while it has none, else 0), the plan's "
    "name as `reference`; each proposal shows its `purchase_order_id`. A second `firm` "
    "with nothing left to firm answers 409 `conflict`, and so does a plan never run. "
    "Running again afterwards proposes nothing twice: the firmed orders are open orders, "
    "whose output and component demand the run nets, and open purchase orders are "
    "scheduled receipts on their lines' due dates.",
)
async def firm_production_plan(
    plan_id: str, session: Session, if_match: IfMatch, body: FirmRequest | None = None
) -> Response:
    purchases = body.purchases if body is not None else False
    return presenter.response(await service.firm(session, plan_id, if_match, purchases))
