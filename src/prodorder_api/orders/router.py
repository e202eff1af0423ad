import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import HTMLResponse, Response

from prodorder_api.auth.deps import Authorized
from prodorder_api.concurrency import IfMatch
from prodorder_api.deps import Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.fields import AwareDatetime
from prodorder_api.metadata import MetadataFilter, documented_filter
from prodorder_api.orders import (
    bending,
    operations,
    production,
    read,
    returns,
    service,
    workorder,
)
from prodorder_api.orders import make_to_order as make_to_order_service
from prodorder_api.orders.schemas import (
    Availability,
    CancelRequest,
    CompleteRequest,
    ConsumptionRequest,
    HoldRequest,
    MakeToOrderRequest,
    OrderCreate,
    OrderList,
    OrderOut,
    OrderStatus,
    OrderSummary,
    OrderUpdate,
    OutputRequest,
    ReleaseRequest,
    ReturnRequest,
    ScrapRequest,
    SplitRequest,
    SplitResult,
    TimeBooking,
)
from prodorder_api.orders.states import lifecycle_markdown
from prodorder_api.pagination import Page
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/production-orders",
    tags=["production-orders"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)

ACTION_ERRORS = problem_responses(404, 409, 412, 422)
LIFECYCLE = "\n\nAllowed actions by status (else 409 `invalid_transition`):\n\n" + (
    lifecycle_markdown()
)


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    summary="Create a production order",
    responses=problem_responses(422),
)
async def create_production_order(body: OrderCreate, session: Session) -> Response:
    """Status `planned`; requirements from the BOM (scrap included), operations copied
    with their planned minutes. `bom_id` defaults to the item's default BOM."""
    return await read.order_json(await service.create(session, body), status_code=201)


@router.post(
    "/make-to-order",
    status_code=201,
    response_model=OrderList,
    summary="Make to order: the order and its short sub-assemblies",
    responses=problem_responses(422),
)
async def make_to_order(body: MakeToOrderRequest, session: Session) -> Response:
    """One call for a demand: the planned order for the product and, with
    `sub_assemblies`, a planned order for every made component (one with a default
    BOM), at any depth, whose free stock at `MAIN` plus open supply (open production
    orders' remaining output, open purchase-order lines) cannot cover what
    its parent needs, for the shortfall. A sub-assembly order is due the day its
    parent starts and starts `lead_time_days` earlier; the top order starts
    `lead_time_days` before `due_date`. Stock counted for one parent is not counted
    again for the next. Every order carries the `demand` and `metadata`; bought
    components are left to MRP. Retried with the same `Idempotency-Key`, the first
    answer is replayed and nothing is made twice."""
    orders = await make_to_order_service.make_to_order(session, body)
    return await read.orders_json(orders, status_code=201)


@router.get(
    "",
    response_model=Page[OrderSummary],
    summary="List production orders",
    responses=problem_responses(422),
    openapi_extra=documented_filter(),
)
async def list_production_orders(
    session: Session,
    paging: Paging,
    meta: MetadataFilter,
    status: Annotated[list[OrderStatus] | None, Query(description="Repeat for several.")] = None,
    item_id: uuid.UUID | None = None,
    reference: Annotated[str | None, Query(max_length=200)] = None,
    due_before: date | None = None,
    due_after: date | None = None,
    updated_after: Annotated[AwareDatetime | None, Query(description="RFC 3339.")] = None,
    production_plan_id: Annotated[
        uuid.UUID | None, Query(description="Orders a production plan's `firm` created.")
    ] = None,
    external_order_id: Annotated[
        str | None, Query(max_length=200, description="Orders made for this demand.")
    ] = None,
) -> Response:
    """Summaries, oldest first; filter by status (repeat for several), item,
    reference, due dates, `updated_after`, the plan that created them, the demand
    (`external_order_id`) or `?metadata[key]=value`."""
    filters = read.OrderFilters(
        list(status or []),
        item_id,
        reference,
        due_before,
        due_after,
        updated_after,
        production_plan_id,
        external_order_id,
        meta,
    )
    return await read.page(session, paging, filters)


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="Get a production order",
    responses={
        304: {
            "description": "`If-None-Match` names the order's current version: your copy "
            "is current. No body; the `ETag` header is sent again.",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        },
        **problem_responses(404),
    },
)
async def get_production_order(
    order_id: str,
    session: Session,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description='The `ETag` of the copy you hold, e.g. `"3"`: 304 without a body '
            "while the order is still at that version. Where reads are served from a "
            "replica, a version newer than the replica's is read from the primary: the "
            "`ETag` a write returned never reads an older order.",
        ),
    ] = None,
) -> Response:
    """The order with its requirements, reservations, operations and history, and its
    `ETag`."""
    return await read.order(session, order_id, if_none_match)


@router.patch(
    "/{order_id}",
    response_model=OrderOut,
    summary="Change a production order",
    responses=ACTION_ERRORS,
)
async def update_production_order(
    order_id: str, body: OrderUpdate, session: Session, if_match: IfMatch
) -> Response:
    """`quantity` only while planned (requirements recomputed); dates, priority, notes and
    reference until the order is completed or cancelled."""
    return await read.order_json(await service.update(session, order_id, body, if_match))


@router.get(
    "/{order_id}/availability",
    response_model=Availability,
    summary="Check component availability",
    responses=ACTION_ERRORS,
)
async def get_production_order_availability(order_id: str, session: Session) -> Availability:
    """Per component: still required, reserved, free at the order's location, shortage."""
    return await service.availability(session, order_id)


@router.post(
    "/{order_id}/release",
    response_model=OrderOut,
    summary="Release: reserve components",
    responses=ACTION_ERRORS,
    description="Reserves every requirement at the order's location, "
    "all or nothing: not enough → 409 `insufficient_stock` with `shortages`, nothing reserved. "
    "With `allow_shortage` it reserves what there is." + LIFECYCLE,
)
async def release_production_order(
    order_id: str,
    session: Session,
    if_match: IfMatch,
    body: Annotated[ReleaseRequest | None, Body()] = None,
) -> Response:
    allow = body.allow_shortage if body else False
    return await read.order_json(await service.release(session, order_id, allow, if_match))


@router.post(
    "/{order_id}/reserve",
    response_model=OrderOut,
    summary="Top up reservations",
    responses=ACTION_ERRORS,
)
async def reserve_production_order(order_id: str, session: Session, if_match: IfMatch) -> Response:
    """Reserves what is still missing from stock that has arrived since release."""
    return await read.order_json(await service.reserve(session, order_id, if_match))


@router.post(
    "/{order_id}/unrelease",
    response_model=OrderOut,
    summary="Unrelease: free reservations",
    responses=ACTION_ERRORS,
)
async def unrelease_production_order(
    order_id: str, session: Session, if_match: IfMatch
) -> Response:
    """Frees every reservation; the order is `planned` again."""
    return await read.order_json(await service.unrelease(session, order_id, if_match))


@router.post(
    "/{order_id}/start",
    response_model=OrderOut,
    summary="Start production",
    responses=ACTION_ERRORS,
)
async def start_production_order(order_id: str, session: Session, if_match: IfMatch) -> Response:
    """Production begins; no stock moves until components are issued or
    output is reported."""
    return await read.order_json(await service.start(session, order_id, if_match))


@router.post(
    "/{order_id}/consumptions",
    response_model=OrderOut,
    summary="Issue components",
    responses=ACTION_ERRORS,
)
async def consume_production_order(
    order_id: str, body: ConsumptionRequest, session: Session, if_match: IfMatch
) -> Response:
    """Manual issue: from the order's reservation first, then free stock (lots FEFO).
    Items outside the BOM are allowed and recorded."""
    return await read.order_json(await production.consume(session, order_id, body, if_match))


@router.post(
    "/{order_id}/outputs",
    response_model=OrderOut,
    summary="Report finished output",
    responses=ACTION_ERRORS,
)
async def report_production_order_output(
    order_id: str, body: OutputRequest, session: Session, if_match: IfMatch
) -> Response:
    """Receives finished goods into the output location and backflushes `backflush`
    components in proportion; valued from the order's unrelieved cost."""
    return await read.order_json(await production.output(session, order_id, body, if_match))


@router.post(
    "/{order_id}/scrap",
    response_model=OrderOut,
    summary="Report scrapped units",
    responses=ACTION_ERRORS,
)
async def scrap_production_order(
    order_id: str, body: ScrapRequest, session: Session, if_match: IfMatch
) -> Response:
    """Finished units lost: their backflush components are consumed, nothing is received."""
    return await read.order_json(
        await production.scrap(session, order_id, body.quantity, body.reason, if_match)
    )


@router.post(
    "/{order_id}/complete",
    response_model=OrderOut,
    summary="Complete the order",
    responses=ACTION_ERRORS,
)
async def complete_production_order(
    order_id: str,
    session: Session,
    if_match: IfMatch,
    body: Annotated[CompleteRequest | None, Body()] = None,
) -> Response:
    """Reports the final output (default: quantity − produced − scrapped, never below 0),
    backflushes, frees leftover reservations and settles the cost. Final."""
    return await read.order_json(
        await production.complete(session, order_id, body or CompleteRequest(), if_match)
    )


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    summary="Cancel the order",
    responses=ACTION_ERRORS,
)
async def cancel_production_order(
    order_id: str,
    session: Session,
    if_match: IfMatch,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> Response:
    """Frees reservations; final. An in-progress order can be cancelled only while
    nothing was consumed or produced (409 `conflict` otherwise)."""
    return await read.order_json(
        await service.cancel(session, order_id, body.reason if body else None, if_match)
    )


@router.post(
    "/{order_id}/hold",
    response_model=OrderOut,
    summary="Hold the order",
    responses=ACTION_ERRORS,
    description="From `released` or `in_progress` to `on_hold`: the line stops. Reservations "
    "stay; every stock, output and operation action is 409 `invalid_transition` until "
    "`resume`. `held_from` names the status it will resume to." + LIFECYCLE,
)
async def hold_production_order(
    order_id: str, body: HoldRequest, session: Session, if_match: IfMatch
) -> Response:
    return await read.order_json(await bending.hold(session, order_id, body.reason, if_match))


@router.post(
    "/{order_id}/resume",
    response_model=OrderOut,
    summary="Resume a held order",
    responses=ACTION_ERRORS,
    description="Back to the status it was held from (`held_from`)." + LIFECYCLE,
)
async def resume_production_order(order_id: str, session: Session, if_match: IfMatch) -> Response:
    return await read.order_json(await bending.resume(session, order_id, if_match))


@router.post(
    "/{order_id}/split",
    response_model=SplitResult,
    summary="Split the order in two",
    responses=ACTION_ERRORS,
    description="Carves `quantity` (more than 0, less than the order's, else 422) off into "
    "a new order in the same status, with the same item, BOM, locations, dates, priority, "
    "reference and notes, and `split_from` naming the original. Requirements and planned "
    "minutes are recomputed on both; a released order's reservations are divided so the "
    "new order gets what its requirements need first and the rest stays (Σ reserved is "
    "unchanged). `ETag` and `If-Match` are the original's." + LIFECYCLE,
)
async def split_production_order(
    order_id: str, body: SplitRequest, session: Session, if_match: IfMatch
) -> Response:
    original, new = await bending.split(session, order_id, body.quantity, if_match)
    return await read.split_json(original, new)


@router.post(
    "/{order_id}/returns",
    response_model=OrderOut,
    summary="Return unused components",
    responses=ACTION_ERRORS,
    description="Components issued to the order but not used go back to the order's "
    "location (movement type `return`), valued at the order's average consumption cost of "
    "that item, which leaves the order's `material_cost`. Returning more than the order "
    "consumed of an item (and of a lot, for lot-tracked items) is 409 `conflict`; serial-"
    "tracked components cannot be returned this way (422)." + LIFECYCLE,
)
async def return_production_order_components(
    order_id: str, body: ReturnRequest, session: Session, if_match: IfMatch
) -> Response:
    return await read.order_json(await returns.give_back(session, order_id, body, if_match))


Sequence = Annotated[int, Path(ge=1, le=100_000, description="The operation's sequence.")]
OPERATION = (
    "\n\nOperation states: `pending` → start → `in_progress` → complete → `done` "
    "(a pending one may be completed directly; time is booked while in progress). "
    "Anything else → 409 `invalid_transition` with the operation's status and allowed "
    "actions; an unknown sequence → 404."
)


@router.post(
    "/{order_id}/operations/{sequence}/start",
    response_model=OrderOut,
    summary="Start an operation",
    responses=ACTION_ERRORS,
    description="Starting an operation on a released order starts the order." + OPERATION,
)
async def start_production_order_operation(
    order_id: str, sequence: Sequence, session: Session, if_match: IfMatch
) -> Response:
    return await read.order_json(await operations.start(session, order_id, sequence, if_match))


@router.post(
    "/{order_id}/operations/{sequence}/time",
    response_model=OrderOut,
    summary="Book time on an operation",
    responses=ACTION_ERRORS,
    description="Adds to `actual_minutes` (and `completed_quantity` when given); valued at "
    "the work center's `cost_per_hour` at this moment and added to the order's "
    "`labour_cost`." + OPERATION,
)
async def book_production_order_operation_time(
    order_id: str, sequence: Sequence, body: TimeBooking, session: Session, if_match: IfMatch
) -> Response:
    booked = await operations.book_time(session, order_id, sequence, body, if_match)
    return await read.order_json(booked)


@router.post(
    "/{order_id}/operations/{sequence}/complete",
    response_model=OrderOut,
    summary="Complete an operation",
    responses=ACTION_ERRORS,
    description="Final." + OPERATION,
)
async def complete_production_order_operation(
    order_id: str, sequence: Sequence, session: Session, if_match: IfMatch
) -> Response:
    return await read.order_json(await operations.complete(session, order_id, sequence, if_match))


@router.get(
    "/{order_id}/work-order.html",
    response_class=HTMLResponse,
    summary="The shop-floor work order (HTML)",
    responses={
        200: {
            "description": "A printable HTML page with its styles inline and no scripts.",
            "headers": {
                "Content-Security-Policy": {
                    "description": "`default-src 'none'`; only the page's own style "
                    "blocks, by hash; no forms, no framing by other sites.",
                    "schema": {"type": "string"},
                },
                "X-Content-Type-Options": {
                    "description": "`nosniff`.",
                    "schema": {"type": "string"},
                },
            },
        },
        **problem_responses(404),
    },
)
async def get_production_order_work_order_html(order_id: str, session: Session) -> HTMLResponse:
    """Order number with a QR code, product, quantity, dates, materials with quantities,
    location and reserved lots, operations with work center, planned minutes and
    instructions. Open it in a browser and print it."""
    order = await service.get(session, order_id)
    html = workorder.render_html(await workorder.build(session, order))
    return HTMLResponse(html, headers=workorder.html_headers(html))


@router.get(
    "/{order_id}/work-order.pdf",
    response_class=Response,
    summary="The shop-floor work order (PDF)",
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "An A4 PDF.",
        },
        **problem_responses(404),
    },
)
async def get_production_order_work_order_pdf(order_id: str, session: Session) -> Response:
    """The same document as the HTML work order, as an A4 PDF."""
    order = await service.get(session, order_id)
    pdf = workorder.render_pdf(await workorder.build(session, order))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="work-order-{order.number:06d}.pdf"',
            **workorder.NOSNIFF,
        },
    )
