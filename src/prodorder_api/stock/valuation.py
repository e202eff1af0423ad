"""Moving-average valuation, with each item's inventory value kept exactly.

Averages divide, and division does not terminate, so each item keeps its total
stock value beside its on-hand: an issue takes quantity × average rounded to 6
places, and the one that empties the item takes whatever value is left, so the value
never drifts from the ledger by a millionth. Pure: no database here.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from prodorder_api.errors import ValidationFailed
from prodorder_api.items.models import Item
from prodorder_api.money import MAX_MAGNITUDE, ZERO, div, mul
from prodorder_api.stock.moves import Move


@dataclass
class Valuation:
    """An item's running on-hand and value while the moves of one call are valued."""

    item: Item
    on_hand: Decimal
    value: Decimal = field(init=False)
    in_transit: Decimal = ZERO

    def __post_init__(self) -> None:
        self.value = self.item.stock_value

    @property
    def average(self) -> Decimal:
        if self.on_hand > 0:
            return div(self.value, self.on_hand)
        if self.item.average_cost is not None:
            return self.item.average_cost
        return self.item.standard_cost or ZERO

    def take(self, move: Move) -> tuple[Decimal, Decimal]:
        """Unit cost and signed value of ``move``; updates the running totals."""
        quantity = move.quantity
        if move.type == "transfer_in":
            # Whatever its transfer_out (the move just before it) took, comes back.
            unit_cost, value = self.average, self.in_transit
        elif move.value is not None:  # valued by the caller (order outputs, cost settlement)
            value = move.value
            unit_cost = move.unit_cost if move.unit_cost is not None else self.average
        elif quantity > 0:
            unit_cost = move.unit_cost if move.unit_cost is not None else self.average
            value = mul(quantity, unit_cost)
        else:
            unit_cost = self.average
            if move.type == "transfer_out" or self.on_hand + quantity > 0:
                value = -min(mul(-quantity, unit_cost), max(self.value, ZERO))
            else:  # empties the item: the rest of its value goes with it
                value = -self.value
            self.in_transit = -value
        self.on_hand += quantity
        self.value += value
        return unit_cost, value


def item_changes(valuations: list[Valuation], now: datetime) -> list[tuple[Item, dict[str, Any]]]:
    """Each item's new stock value and average (and ``updated_at``), where they change."""
    changes: list[tuple[Item, dict[str, Any]]] = []
    for valuation in valuations:
        item = valuation.item
        if valuation.value >= MAX_MAGNITUDE:
            raise ValidationFailed(["body", "quantity"], "the stock value would exceed 10^12")
        average = div(valuation.value, valuation.on_hand) if valuation.on_hand > 0 else None
        average = average if average is not None else item.average_cost
        if (item.stock_value, item.average_cost) != (valuation.value, average):
            values = {"stock_value": valuation.value, "average_cost": average, "updated_at": now}
            changes.append((item, values))
    return changes
