"""The webhook dispatcher: positions events, fans them out, sends what is due.

One :meth:`Dispatcher.tick`, each step in a short transaction of its own:

1. **sequence** committed events (see ``events.service``);
2. **fan out** positioned events into one delivery per matching subscription
   (``last_position`` per subscription; subscriptions locked ``FOR UPDATE SKIP
   LOCKED``, deliveries unique per subscription and event);
3. **claim** due deliveries ``FOR UPDATE SKIP LOCKED``, count the attempt and push
   ``next_attempt_at`` a lease ahead, and commit — no lock or transaction stays open
   while the HTTP call runs, and another dispatcher skips what is claimed;
4. **send** each (Standard Webhooks headers, the event JSON as the feed shows it),
   then record the outcome in a new transaction: 2xx → ``succeeded``; anything
   else, a timeout or a refused connection → retried after
   ``base × 2^(attempt−1)`` seconds (±20 % jitter, at most an hour), until
   ``max_attempts`` → ``failed``, and the subscription becomes ``failing``.

Safe with any number of dispatchers (app processes and ``prodorder-api worker``) on
PostgreSQL; on SQLite every transaction holds the database lock, which serialises
the same steps. A dispatcher that dies mid-send leaves a claimed delivery, retried
when its lease runs out: delivery is at least once, and ``webhook-id`` (the event
id) lets a receiver drop the rare duplicate.
"""

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prodorder_api import __version__
from prodorder_api.db import insert_ignoring, utcnow
from prodorder_api.events import service as events
from prodorder_api.events.models import Event
from prodorder_api.events.schemas import EventOut
from prodorder_api.idempotency import service as idempotency
from prodorder_api.ids import new_id
from prodorder_api.settings import Settings
from prodorder_api.webhooks import signing
from prodorder_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from prodorder_api.webhooks.urls import GuardedTransport, UnsafeAddress

log = logging.getLogger("prodorder_api.webhooks")

FAN_OUT_BATCH: Final = 1000
SEND_BATCH: Final = 50
RECORDING_SLOTS: Final = 4
PURGE_EVERY_S: Final = 3600.0  # how often a dispatcher drops expired idempotency records
MAX_DELAY_S: Final = 3600.0
JITTER: Final = 0.2
USER_AGENT: Final = f"prodorder-api-webhooks/{__version__}"


def matches(filters: Sequence[str], type_: str) -> bool:
    family = type_.split(".", 1)[0] + ".*"
    return "*" in filters or type_ in filters or family in filters


def retry_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based)."""
    delay: float = min(MAX_DELAY_S, base_s * 2.0 ** min(attempt - 1, 30))
    return min(MAX_DELAY_S, delay * random.uniform(1 - JITTER, 1 + JITTER))


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    event_id: uuid.UUID
    body: bytes


@dataclass(frozen=True)
class Outcome:
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        batch: int = SEND_BATCH,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.batch = batch
        # Outcomes are recorded as each send ends, a few transactions at a time, so a
        # batch of sends never asks the pool for more connections than it has.
        self._recording = asyncio.Semaphore(RECORDING_SLOTS)
        self.lease = timedelta(seconds=max(60.0, 3 * settings.webhook_timeout_s))
        self.http = httpx.AsyncClient(
            transport=transport or GuardedTransport(settings.webhooks_allow_private),
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def tick(self) -> int:
        """One round of all four steps; returns how many deliveries were attempted."""
        while True:
            async with self.sessionmaker() as session, session.begin():
                positioned = await events.sequence(session)
            if positioned < events.SEQUENCE_BATCH:
                break
        async with self.sessionmaker() as session, session.begin():
            await fan_out(session)
        async with self.sessionmaker() as session, session.begin():
            claims = await claim(session, self.lease, self.batch)
        await asyncio.gather(*(self._deliver(c) for c in claims))
        return len(claims)

    async def purge(self) -> int:
        """Housekeeping: idempotency records past their 24 hours."""
        async with self.sessionmaker() as session, session.begin():
            return await idempotency.purge_expired(session)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a full batch goes round again at once."""
        interval = self.settings.dispatch_interval_s
        purged_at = -PURGE_EVERY_S
        while not stop.is_set():
            try:
                if time.monotonic() - purged_at >= PURGE_EVERY_S:
                    await self.purge()
                    purged_at = time.monotonic()
                attempted = await self.tick()
            except Exception:  # a database hiccup must not end the loop
                log.exception("webhook dispatch failed; retrying in %s s", interval)
                attempted = 0
            if attempted < self.batch:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def _deliver(self, claimed: Claim) -> None:
        outcome = await self.send(claimed)
        try:
            async with self._recording, self.sessionmaker() as session, session.begin():
                await record(session, claimed, outcome, self.settings)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("could not record webhook attempt of %s", claimed.delivery_id)

    async def send(self, claimed: Claim) -> Outcome:
        at = utcnow()
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            timestamp = int(time.time())
            headers = signing.headers(
                claimed.secret, str(claimed.event_id), timestamp, claimed.body
            )
            async with (
                asyncio.timeout(self.settings.webhook_timeout_s),
                # Streamed and never read: only the status counts, whatever the size.
                self.http.stream(
                    "POST", claimed.url, content=claimed.body, headers=headers
                ) as response,
            ):
                status_code = response.status_code
        except TimeoutError:
            error = f"timeout after {self.settings.webhook_timeout_s:g} s"
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.settings.webhook_timeout_s:g} s ({type(exc).__name__})"
        except UnsafeAddress as exc:
            error = f"refused: {exc}"
        except Exception as exc:  # httpx.HTTPError and anything odd: an attempt that failed
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((time.monotonic() - started) * 1000)
        return Outcome(at, status_code, error[:500] if error else None, duration_ms)


async def fan_out(session: AsyncSession) -> int:
    """Queue a delivery of every newly positioned event for each subscription that wants
    it; returns how many were queued."""
    subscriptions = list(
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.status != "disabled")
            .order_by(WebhookSubscription.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not subscriptions:
        return 0
    start = min(s.last_position for s in subscriptions)
    batch = [
        (event_id, int(position or 0), type_)
        for event_id, position, type_ in await session.execute(
            select(Event.id, Event.position, Event.type)
            .where(Event.position > start)
            .order_by(Event.position)
            .limit(FAN_OUT_BATCH)
        )
    ]
    if not batch:
        return 0
    end = batch[-1][1]
    now = utcnow()
    rows = []
    for subscription in subscriptions:
        if subscription.last_position >= end:
            continue
        rows += [
            {
                "id": new_id(),
                "subscription_id": subscription.id,
                "event_id": event_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event_id, position, type_ in batch
            if position > subscription.last_position and matches(subscription.events, type_)
        ]
        subscription.last_position = end
    if rows:
        await session.execute(
            insert_ignoring(session, WebhookDelivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        )
    return len(rows)


async def claim(session: AsyncSession, lease: timedelta, limit: int = SEND_BATCH) -> list[Claim]:
    """Take due deliveries: count the attempt and hold them for ``lease``."""
    now = utcnow()
    rows = (
        await session.execute(
            select(WebhookDelivery, WebhookSubscription.url, WebhookSubscription.secret)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookSubscription.status != "disabled",
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    bodies = {
        event.id: EventOut.model_validate(event).model_dump_json().encode()
        for event in await session.scalars(
            select(Event).where(Event.id.in_({d.event_id for d, _, _ in rows}))
        )
    }
    claims = []
    for delivery, url, secret in rows:
        delivery.attempts += 1
        delivery.next_attempt_at = now + lease
        claims.append(
            Claim(
                delivery.id,
                delivery.subscription_id,
                delivery.attempts,
                url,
                secret,
                delivery.event_id,
                bodies[delivery.event_id],
            )
        )
    return claims


async def record(
    session: AsyncSession, claimed: Claim, outcome: Outcome, settings: Settings
) -> None:
    """Write the attempt and settle the delivery, unless it changed hands meanwhile.

    Locks the subscription, then the delivery: the order deleting a webhook takes,
    so the two never deadlock."""
    subscription = await session.scalar(
        select(WebhookSubscription.id)
        .where(WebhookSubscription.id == claimed.subscription_id)
        .with_for_update()
    )
    delivery = await session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if subscription is None or delivery is None:  # deleted while the request ran
        return
    session.add(
        WebhookAttempt(
            id=new_id(),
            delivery_id=delivery.id,
            attempt=claimed.attempt,
            at=outcome.at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    if delivery.status != "pending" or delivery.attempts != claimed.attempt:
        return  # its lease ran out and another dispatcher took it over
    now = utcnow()
    if outcome.succeeded:
        delivery.status, delivery.delivered_at = "succeeded", now
        await _set_status(session, claimed.subscription_id, "failing", "active")
    elif claimed.attempt >= settings.webhook_max_attempts:
        delivery.status = "failed"
        await _set_status(session, claimed.subscription_id, "active", "failing")
        log.warning("webhook delivery %s failed after %s attempts", delivery.id, claimed.attempt)
    else:
        delay = retry_delay(claimed.attempt, settings.webhook_retry_base_s)
        delivery.next_attempt_at = now + timedelta(seconds=delay)


async def _set_status(
    session: AsyncSession, subscription_id: uuid.UUID, from_status: str, to_status: str
) -> None:
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.status == from_status)
        .values(status=to_status, updated_at=utcnow())
    )


@asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, batch: int = SEND_BATCH
) -> AsyncIterator[Dispatcher]:
    """A dispatcher ticking in the background until the block exits, then stopped:
    no new claims, sends in flight get their timeout to finish, then are cancelled
    (their leases run out and another dispatcher retries them)."""
    dispatcher = Dispatcher(sessionmaker, settings, batch=batch)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop), name="webhook-dispatcher")
    try:
        yield dispatcher
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, settings.webhook_timeout_s + 5)
        except TimeoutError:
            log.warning("webhook dispatcher did not stop in time; cancelled")
        finally:
            await dispatcher.aclose()
