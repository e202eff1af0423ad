"""Which events an order action produces.

``service.record`` calls :func:`emit` for every action. The order's data is rendered
when the request's events are written, after all its changes, exactly as ``GET``
shows the order then. Actions without an event type of their own (a PATCH, reserve,
unrelease, consumption, scrap, operation start or booked time) emit
``production_order.updated``, unless the same request already emitted another event
for the order (starting an operation on a released order emits ``started`` only).
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy.orm import object_session

from prodorder_api.events import service as events
from prodorder_api.orders import read, repository
from prodorder_api.orders.models import ProductionOrder
from prodorder_api.orders.presenter import present

PREFIX: Final = "production_order."
TYPES: Final[dict[str, tuple[str, ...]]] = {
    "create": ("created",),
    "release": ("released",),
    "start": ("started",),
    "output": ("output_recorded",),
    "complete": ("completed",),
    "cancel": ("cancelled",),
    "operation_complete": ("operation_completed",),
    "hold": ("held",),
    "resume": ("resumed",),
    "split": ("split",),
}
UPDATED: Final = "updated"
# Cleared with the pending events (on write and on rollback), see ``events.service``.
_EMITTED: Final = events.PENDING + ".orders"


def types_for(action: str, details: dict[str, Any]) -> tuple[str, ...]:
    types = TYPES.get(action, (UPDATED,))
    if action == "complete" and Decimal(details.get("output_quantity") or 0) > 0:
        types = ("output_recorded", *types)  # completing reports the final output
    return tuple(PREFIX + t for t in types)


def emit(order: ProductionOrder, action: str, **details: Any) -> None:
    session = object_session(order)
    if session is None:
        raise RuntimeError("an order must be in a session before its actions are recorded")
    emitted: set[tuple[object, str]] = session.info.setdefault(_EMITTED, set())
    for type_ in types_for(action, details):
        if type_ == PREFIX + UPDATED and any(key[0] == order.id for key in emitted):
            continue
        if (order.id, type_) in emitted:
            continue
        emitted.add((order.id, type_))
        events.add(session, type_, Snapshot(order))


@dataclass(frozen=True)
class Snapshot:
    """An order event's data: the order as ``GET`` shows it when the event is written."""

    order: ProductionOrder

    def __call__(self) -> dict[str, Any]:
        return _snapshot(self.order)


def _snapshot(order: ProductionOrder) -> dict[str, Any]:
    """The order as ``GET`` shows it: the response's document when the request
    answered with this order as it is now, else presented here."""
    session = object_session(order)
    assert session is not None  # emit() checked, and the events are written in it
    document = read.presented(session, order)
    if document is not None:
        snapshot: dict[str, Any] = json.loads(document)
        return snapshot
    repository.load_children(session, order)
    return present(order).model_dump(mode="json")
