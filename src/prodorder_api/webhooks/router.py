import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from prodorder_api.auth.deps import AdminOnly
from prodorder_api.deps import AppSettings, Paging, Session
from prodorder_api.errors import problem_responses
from prodorder_api.pagination import Page, to_page
from prodorder_api.routing import ApiRoute
from prodorder_api.webhooks import service
from prodorder_api.webhooks.schemas import (
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    route_class=ApiRoute,
    dependencies=[AdminOnly],
    responses=problem_responses(401, 403),
)


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a webhook",
    responses=problem_responses(422),
)
async def create_webhook(body: WebhookCreate, session: Session, settings: AppSettings) -> object:
    """Events of the chosen types are POSTed to `url` from now on, signed per Standard
    Webhooks: `webhook-id` (the event id: drop duplicates by it), `webhook-timestamp`
    (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
    "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the base64-decoded part of the
    secret after `whsec_`. The body is the event exactly as `GET /v1/events` shows it.

    The secret is in this response only. Any 2xx answer is success; anything else, a
    timeout (10 s) or a refused connection is retried with exponential backoff and jitter
    (5 s, 10 s, 20 s, … at most an hour apart; 12 attempts), after which the delivery
    fails and the webhook is marked `failing`. Needs the `admin` scope."""
    subscription = await service.subscribe(session, body, settings.webhooks_allow_private)
    return WebhookCreated(
        **WebhookOut.model_validate(subscription).model_dump(), secret=subscription.secret
    )


@router.get(
    "",
    response_model=Page[WebhookOut],
    summary="List webhooks",
    responses=problem_responses(422),
)
async def list_webhooks(session: Session, paging: Paging) -> dict[str, object]:
    """Never shows a secret."""
    rows, cursor = await service.list_subscriptions(session, paging)
    return to_page(WebhookOut, rows, cursor)


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Get a webhook",
    responses=problem_responses(404),
)
async def get_webhook(webhook_id: str, session: Session) -> object:
    """Never shows the secret."""
    return await service.get(session, webhook_id)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Change, pause or resume a webhook",
    responses=problem_responses(404, 422),
)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, session: Session, settings: AppSettings
) -> object:
    """`{"status": "disabled"}` pauses deliveries: pending ones wait and events meanwhile
    are not queued (the feed has them). `{"status": "active"}` resumes with the events
    from then on and clears `failing`. `url` is checked as on subscribe."""
    return await service.update(session, webhook_id, body, settings.webhooks_allow_private)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook",
    responses=problem_responses(404),
)
async def delete_webhook(webhook_id: str, session: Session) -> Response:
    """Deletes it with its delivery history; nothing more is sent to it."""
    await service.remove(session, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="List a webhook's deliveries",
    responses=problem_responses(404, 422),
)
async def list_webhook_deliveries(
    webhook_id: str,
    session: Session,
    paging: Paging,
    status: DeliveryStatus | None = None,
    event_id: Annotated[uuid.UUID | None, Query(description="One event's delivery.")] = None,
) -> dict[str, object]:
    """One delivery per event, oldest first, each with every attempt: when, the HTTP
    status or the error, and how long it took."""
    rows, cursor = await service.list_deliveries(session, webhook_id, paging, status, event_id)
    return {"data": rows, "next_cursor": cursor}
