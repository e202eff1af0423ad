"""``stock.changed``: one event per item that one call of ``ledger.apply`` changed.

Rendered from what ``apply`` holds in memory (no query): the item's balances that the
call touched, as ``GET /v1/stock`` lists them, and the movements it wrote, as
``GET /v1/stock/movements`` lists them (none for a change of reservations only).
Rendered at once, not at commit: a request that moves the same stock twice (a
completion backflushes, then frees what is left reserved) shows each state in turn.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.events import service as events
from prodorder_api.stock.models import Movement
from prodorder_api.stock.schemas import BalanceOut, MovementOut

STOCK_CHANGED: Final = "stock.changed"


class Balance(Protocol):
    """A balance as ``BalanceOut`` shows it (the ledger's locked row)."""

    item_id: uuid.UUID
    location_id: uuid.UUID
    lot_code: str
    on_hand: Decimal
    reserved: Decimal
    updated_at: datetime

    @property
    def available(self) -> Decimal: ...


def announce(
    session: AsyncSession, balances: Iterable[Balance], movements: Iterable[Movement]
) -> None:
    by_item: dict[uuid.UUID, tuple[list[Balance], list[Movement]]] = {}
    for balance in sorted(balances, key=lambda b: (b.item_id, b.location_id, b.lot_code)):
        by_item.setdefault(balance.item_id, ([], []))[0].append(balance)
    for movement in movements:
        by_item.setdefault(movement.item_id, ([], []))[1].append(movement)
    for item_id, (touched, written) in by_item.items():
        data = {
            "item_id": str(item_id),
            "balances": [_json(BalanceOut, b) for b in touched],
            "movements": [_json(MovementOut, m) for m in written],
        }
        events.add(session, STOCK_CHANGED, data)


def _json(model: type[BaseModel], row: object) -> dict[str, Any]:
    return model.model_validate(row).model_dump(mode="json")
