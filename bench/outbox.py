"""Outbox rows for data a benchmark generates in bulk instead of through the service.

The service writes an event in the same transaction as every change (see
``prodorder_api.events.service``): a ``stock.changed`` per item that one call of the
ledger changed, with the balances it touched and the movements it wrote, and a
``production_order.*`` per order action. The whole-database checks the benchmarks
share with the test suite (``tests/invariants.py``, ``bench/checks.py``,
``bench/soak_checks.py``) hold generated data to the same rule: every movement in
exactly one ``stock.changed`` event, every order with exactly one
``production_order.created`` event, positions 1..N without a gap. A generator that
bulk-inserts movements and orders records each simulated request here and inserts
``rows()`` with them.

The events are positioned here, in the order they were recorded, as the sequencer
would have positioned them long ago: the service then has nothing to sequence while
it is being timed.
"""

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from prodorder_api.ids import new_id
from prodorder_api.orders.schemas import OrderSummary, format_number
from prodorder_api.stock.schemas import BalanceOut, MovementOut

STOCK_CHANGED: Final = "stock.changed"
ORDER: Final = "production_order."
# What each status has been through, as the service's actions emit it: a completion
# with output reports it first (``orders.events.types_for``).
ORDER_EVENTS: Final[dict[str, tuple[str, ...]]] = {
    "planned": ("created",),
    "released": ("created", "released"),
    "in_progress": ("created", "released", "started"),
    "completed": ("created", "released", "started", "output_recorded", "completed"),
    "cancelled": ("created", "cancelled"),
}
# The order's status right after each of those events.
_STATUS_AFTER: Final = {
    "created": "planned",
    "released": "released",
    "started": "in_progress",
    "output_recorded": "in_progress",
    "completed": "completed",
    "cancelled": "cancelled",
}
# An order row's columns a generator may leave to the table's defaults.
_ORDER_DEFAULTS: Final[dict[str, Any]] = {
    "due_date": None,
    "planned_start": None,
    "priority": 0,
    "reference": None,
    "production_plan_id": None,
    "demand": None,
    "metadata": {},
    "produced_quantity": Decimal(0),
    "scrapped_quantity": Decimal(0),
    "version": 1,
}


class Outbox:
    """The events of a generated history, in the order they happened."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _add(self, type_: str, at: datetime | None, data: dict[str, Any]) -> None:
        at = at or datetime.now(UTC)
        self._rows.append({"id": new_id(), "type": type_, "created_at": at, "data": data})

    def stock_changed(
        self,
        balances: Iterable[dict[str, Any]],
        movements: Iterable[dict[str, Any]],
        at: datetime | None = None,
    ) -> None:
        """One request's change of stock: an event per item, as ``stock.events.announce``
        renders it. ``balances``: the rows it touched as they are after it (``item_id``,
        ``location_id``, ``lot_code``, ``on_hand``, ``reserved``, ``updated_at``);
        ``movements``: the rows it wrote, each with its ``id``."""
        by_item: dict[uuid.UUID, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        ordered = sorted(balances, key=lambda b: (b["item_id"], b["location_id"], b["lot_code"]))
        for balance in ordered:
            shown = {**balance, "available": balance["on_hand"] - balance["reserved"]}
            shown.setdefault("updated_at", at or datetime.now(UTC))
            by_item.setdefault(balance["item_id"], ([], []))[0].append(_json(BalanceOut, shown))
        for movement in movements:
            assert movement.get("id") is not None, "a movement needs its id to be announced"
            shown = {"reference": None, "reason": None, "production_order_id": None, **movement}
            shown.setdefault("created_at", at or datetime.now(UTC))
            by_item.setdefault(movement["item_id"], ([], []))[1].append(_json(MovementOut, shown))
        for item_id, (touched, written) in by_item.items():
            data = {"item_id": str(item_id), "balances": touched, "movements": written}
            self._add(STOCK_CHANGED, at, data)

    def order(self, row: dict[str, Any], at: datetime | None = None) -> None:
        """An order's events up to its status (``ORDER_EVENTS``), each carrying the
        order as the list shows it (``OrderSummary``: the checks read its ``id``)."""
        shown = {**_ORDER_DEFAULTS, **row, "number": format_number(row["number"])}
        shown.setdefault("created_at", at or datetime.now(UTC))
        shown.setdefault("updated_at", shown["created_at"])
        for action in ORDER_EVENTS[row["status"]]:
            data = _json(OrderSummary, {**shown, "status": _STATUS_AFTER[action]})
            self._add(ORDER + action, at or shown["created_at"], data)

    def rows(self, first_position: int = 1) -> list[dict[str, Any]]:
        """The ``events`` rows, positioned from ``first_position`` in recorded order."""
        return [{**row, "position": first_position + n} for n, row in enumerate(self._rows)]


def _json(model: type[Any], row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = model.model_validate(row).model_dump(mode="json")
    return data
