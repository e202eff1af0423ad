from typing import Annotated

from fastapi import APIRouter, Query

from prodorder_api.auth.deps import Authorized
from prodorder_api.deps import Session
from prodorder_api.errors import ValidationFailed, problem_responses
from prodorder_api.events import service
from prodorder_api.events.schemas import EventOut, EventPage, EventType
from prodorder_api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from prodorder_api.routing import ApiRoute

router = APIRouter(
    prefix="/v1/events",
    tags=["events"],
    route_class=ApiRoute,
    dependencies=[Authorized],
    responses=problem_responses(401, 403),
)


@router.get(
    "",
    response_model=EventPage,
    summary="Read the event feed",
    responses=problem_responses(422),
)
async def list_events(
    session: Session,
    after: Annotated[
        str | None,
        Query(
            max_length=32,
            description="`next_cursor` of the previous page; omit to start at the first event.",
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="Same as `after` (the usual list name).")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Events per page (1–500).")
    ] = DEFAULT_LIMIT,
    types: Annotated[
        list[EventType] | None, Query(description="Only these types; repeat for several.")
    ] = None,
) -> EventPage:
    """The pull feed: every change, oldest first, `{data, next_cursor}`.

    Each event is `{id, type, created_at, data}` where `data` is the resource as `GET`
    returned it right after the change. Events are written in the same transaction as
    their change, so a refused or rolled-back request leaves none.

    Keep the last `next_cursor` and poll with `after=<it>`: the feed is in commit order,
    so paging never skips an event, however late its transaction committed. An empty
    `data` (with `next_cursor: null`) means you are caught up; ask again later with the
    same `after`. The cursor is opaque.
    """
    if after is not None and cursor is not None and after != cursor:
        raise ValidationFailed(["query", "cursor"], "give `after` or `cursor`, not both")
    field = "cursor" if after is None and cursor is not None else "after"
    position = service.decode_cursor(after if after is not None else cursor, field)
    rows, next_cursor = await service.feed(session, position, limit, types)
    return EventPage(data=[EventOut.model_validate(row) for row in rows], next_cursor=next_cursor)
