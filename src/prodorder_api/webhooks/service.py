"""Webhook subscriptions and their deliveries, as the API manages and shows them.

The sending lives in ``dispatcher.py``; this module only writes subscriptions and
reads deliveries, in the request's transaction like every service.
"""

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import utcnow
from prodorder_api.errors import NotFound, ValidationFailed
from prodorder_api.events import service as events
from prodorder_api.events.models import Event
from prodorder_api.ids import new_id, parse_id
from prodorder_api.pagination import PageParams, paginate
from prodorder_api.webhooks import signing, urls
from prodorder_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from prodorder_api.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookUpdate,
)


async def _check_url(url: str, allow_private: bool) -> None:
    try:
        await urls.check_url(url, allow_private)
    except urls.UnsafeAddress as exc:
        raise ValidationFailed(["body", "url"], str(exc)) from exc


async def _start_position(session: AsyncSession) -> int:
    """Deliveries start after every event committed so far."""
    await events.sequence(session)
    return await events.last_position(session)


async def subscribe(
    session: AsyncSession, data: WebhookCreate, allow_private: bool
) -> WebhookSubscription:
    await _check_url(data.url, allow_private)
    now = utcnow()
    subscription = WebhookSubscription(
        id=new_id(),
        url=data.url,
        events=list(data.events),
        secret=data.secret or signing.new_secret(),
        status="active",
        last_position=await _start_position(session),
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def get(
    session: AsyncSession, subscription_id: str, *, for_update: bool = False
) -> WebhookSubscription:
    parsed = parse_id(subscription_id)
    found = None
    if parsed is not None:
        stmt = select(WebhookSubscription).where(WebhookSubscription.id == parsed)
        if for_update:
            stmt = stmt.with_for_update()
        found = await session.scalar(stmt)
    if found is None:
        raise NotFound(f"no webhook with id {subscription_id}")
    return found


async def list_subscriptions(
    session: AsyncSession, params: PageParams
) -> tuple[list[WebhookSubscription], str | None]:
    return await paginate(session, select(WebhookSubscription), WebhookSubscription.id, params)


async def update(
    session: AsyncSession, subscription_id: str, data: WebhookUpdate, allow_private: bool
) -> WebhookSubscription:
    subscription = await get(session, subscription_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    for name in ("url", "events", "status"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(["body", name], "may not be null")
    if not changes:
        return subscription
    if "url" in changes:
        await _check_url(changes["url"], allow_private)
        subscription.url = changes["url"]
    if "events" in changes:
        subscription.events = list(changes["events"])
    status = changes.get("status")
    if status == "active" and subscription.status == "disabled":
        # Resumes with what happens from now on; the feed has what was missed.
        subscription.last_position = await _start_position(session)
    if status is not None:
        subscription.status = status
    subscription.updated_at = utcnow()
    return subscription


async def remove(session: AsyncSession, subscription_id: str) -> None:
    """Delete the subscription with its deliveries and their attempts."""
    subscription = await get(session, subscription_id, for_update=True)
    await session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    )
    await session.delete(subscription)


async def list_deliveries(
    session: AsyncSession,
    subscription_id: str,
    params: PageParams,
    status: DeliveryStatus | None,
    event_id: uuid.UUID | None,
) -> tuple[list[DeliveryOut], str | None]:
    """Oldest first, each with its attempts (two queries per page, none per row)."""
    subscription = await get(session, subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event_id is not None:
        stmt = stmt.where(WebhookDelivery.event_id == event_id)
    deliveries, cursor = await paginate(session, stmt, WebhookDelivery.id, params)
    ids = [d.id for d in deliveries]
    attempts: dict[uuid.UUID, list[AttemptOut]] = {i: [] for i in ids}
    types: dict[uuid.UUID, str] = {}
    if ids:
        for attempt in await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.at)
        ):
            attempts[attempt.delivery_id].append(AttemptOut.model_validate(attempt))
        event_ids = {d.event_id for d in deliveries}
        types = {
            event_id: type_
            for event_id, type_ in await session.execute(
                select(Event.id, Event.type).where(Event.id.in_(event_ids))
            )
        }
    rows = [
        DeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=types.get(d.event_id, ""),
            status=d.status,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempts=attempts[d.id],
        )
        for d in deliveries
    ]
    return rows, cursor
