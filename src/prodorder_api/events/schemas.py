import uuid
from datetime import datetime
from typing import Any, Final, Literal, get_args

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import ResponseModel

EventType = TypeAliasType(
    "EventType",
    Literal[
        "production_order.created",
        "production_order.updated",
        "production_order.released",
        "production_order.started",
        "production_order.operation_completed",
        "production_order.output_recorded",
        "production_order.completed",
        "production_order.cancelled",
        "production_order.held",
        "production_order.resumed",
        "production_order.split",
        "stock.changed",
    ],
)
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)


class EventOut(ResponseModel):
    """One event, exactly as the feed lists it and as a webhook delivers it."""

    id: uuid.UUID = Field(
        description="Unique; also the `webhook-id` of every delivery of this event, so a "
        "receiver can drop duplicates."
    )
    type: EventType
    created_at: datetime = Field(description="When the change was made (its transaction).")
    data: dict[str, Any] = Field(
        description="The resource as `GET` returned it right after the change: the production "
        "order for `production_order.*`; for `stock.changed` the item's balances and "
        "movements that the change touched.",
        examples=[
            {
                "item_id": "0193a6a4-7c1e-7000-8000-000000000001",
                "balances": [
                    {
                        "item_id": "0193a6a4-7c1e-7000-8000-000000000001",
                        "location_id": "0193a6a4-7c1e-7000-8000-0000000000aa",
                        "lot_code": None,
                        "on_hand": "12",
                        "reserved": "0",
                        "available": "12",
                        "updated_at": "2026-01-31T12:00:00Z",
                    }
                ],
                "movements": ["…as GET /v1/stock/movements lists them"],
            }
        ],
    )


class EventPage(ResponseModel):
    data: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `after` to continue after the last event of this page. Null only "
        "when `data` is empty: you are caught up; poll again later with the same `after`."
    )
