"""Prometheus metrics at ``/metrics``.

* ``prodorder_http_requests_total`` and ``prodorder_http_request_duration_seconds`` by
  method, route template (``/v1/production-orders/{order_id}``, never a raw id) and
  status;
* ``prodorder_order_transitions_total`` by action and statuses, counted after commit;
* ``prodorder_outbox_backlog`` — events not yet sequenced, and webhook deliveries
  still pending — read from the database at scrape time.

Each process keeps its own counters. With several uvicorn workers, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before start-up and the
``/metrics`` of any worker aggregates all of them (prometheus-client's
multiprocess mode).
"""

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodorder_api.events.models import Event
from prodorder_api.webhooks.models import WebhookDelivery

REQUESTS = Counter("prodorder_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "prodorder_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRANSITIONS = Counter(
    "prodorder_order_transitions_total",
    "Production-order transitions that committed",
    ["action", "from_status", "to_status"],
)
BACKLOG = Gauge(
    "prodorder_outbox_backlog",
    "Outbox work not done yet",
    ["kind"],
    multiprocess_mode="livemax",
)
_PENDING = "prodorder.metrics.transitions"


class MetricsMiddleware:
    """Pure ASGI: times every HTTP request and labels it by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)


def note_transition(order: Any, action: str, from_status: str, to_status: str) -> None:
    """Remember a transition on the order's session; counted once it commits."""
    session = object_session(order)
    if session is not None:
        session.info.setdefault(_PENDING, []).append((action, from_status, to_status))


def count_committed(session: AsyncSession) -> None:
    for labels in session.info.pop(_PENDING, ()):
        TRANSITIONS.labels(*labels).inc()


async def render(request: Request) -> Response:
    """The ``/metrics`` endpoint."""
    sessionmaker = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        unsequenced = await session.scalar(
            select(func.count()).select_from(Event).where(Event.position.is_(None))
        )
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
        )
    BACKLOG.labels("events_unsequenced").set(unsequenced or 0)
    BACKLOG.labels("deliveries_pending").set(pending or 0)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
