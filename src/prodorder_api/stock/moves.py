"""A change of one balance: what every stock change is made of."""

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from prodorder_api.money import ZERO
from prodorder_api.stock.balances import BalanceKey
from prodorder_api.stock.models import NO_LOT


@dataclass(frozen=True)
class Move:
    """One change of one balance. ``type`` None means a reservation change only."""

    item_id: uuid.UUID
    location_id: uuid.UUID
    quantity: Decimal = ZERO  # signed change of on-hand
    type: str | None = None
    reserved: Decimal = ZERO  # signed change of reserved
    lot_code: str = NO_LOT
    unit_cost: Decimal | None = None  # inbound only; None: the current average
    value: Decimal | None = None  # inbound or value-only: an explicit value (order outputs)
    expiry_date: date | None = None  # inbound lot only
    serials: tuple[str, ...] = ()
    production_order_id: uuid.UUID | None = None
    unbuild_order_id: uuid.UUID | None = None
    purchase_order_id: uuid.UUID | None = None
    reference: str | None = None
    reason: str | None = None

    @property
    def key(self) -> BalanceKey:
        return (self.item_id, self.location_id, self.lot_code)
