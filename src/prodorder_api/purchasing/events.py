"""``purchase_order.created|received|cancelled``: the order as ``GET`` shows it.

``received`` is written on *every* receipt, partial ones included, with the order as
it is after it: its ``status`` (``open`` or ``received``) and each line's
``received_quantity`` tell a receiver whether the order is complete. One type rather
than a ``partially_received`` besides: a receiver that books goods in acts on every
receipt alike.
"""

from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy.orm import object_session

from prodorder_api.events import service as events
from prodorder_api.purchasing.models import PurchaseOrder
from prodorder_api.purchasing.presenter import present

PREFIX: Final = "purchase_order."
Kind = Literal["created", "received", "cancelled", "updated"]


def emit(order: PurchaseOrder, kind: Kind) -> None:
    session = object_session(order)
    if session is None:
        raise RuntimeError("a purchase order must be in a session before its events")
    events.add(session, PREFIX + kind, Snapshot(order))


@dataclass(frozen=True)
class Snapshot:
    """Rendered when the request's events are written, after all its changes."""

    order: PurchaseOrder

    def __call__(self) -> dict[str, Any]:
        return present(self.order).model_dump(mode="json")
