import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Union, get_args

from pydantic import Field, create_model
from typing_extensions import TypeAliasType

from prodorder_api.fields import ResponseModel
from prodorder_api.orders.schemas import OrderOut
from prodorder_api.purchasing.schemas import PurchaseOrderOut
from prodorder_api.stock.schemas import BalanceOut, MovementOut

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
        "purchase_order.created",
        "purchase_order.received",
        "purchase_order.cancelled",
        "purchase_order.updated",
        "stock.changed",
    ],
)
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType.__value__)


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
        "order for `production_order.*`, the purchase order for `purchase_order.*`; for "
        "`stock.changed` the item's balances and movements that the change touched.",
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


# --- Events as the OpenAPI document describes them -----------------------------------
# `EventOut` carries `data` as the JSON it was stored as. The document says what that
# JSON is for each `type`: `Event`, a `oneOf` with a discriminator on `type`, so that a
# generated client types `data` once it has looked at `type`. Nothing is validated
# against these models (app.openapi_document puts them in the document).


class StockChange(ResponseModel):
    """`stock.changed`: the balances of one item that a change touched, and the movements
    it wrote (none when only reservations changed)."""

    item_id: uuid.UUID
    balances: list[BalanceOut] = Field(description="As `GET /v1/stock` lists them.")
    movements: list[MovementOut] = Field(description="As `GET /v1/stock/movements` lists them.")


class _EventFields(ResponseModel):
    id: uuid.UUID = Field(
        description="Unique; also the `webhook-id` of every delivery of this event, so a "
        "receiver can drop duplicates."
    )
    created_at: datetime = Field(description="When the change was made (its transaction).")


def _event_model(type_: str, data: type[ResponseModel], doc: str) -> type[ResponseModel]:
    name = "".join(part.capitalize() for part in type_.replace(".", "_").split("_")) + "Event"
    literal: Any = Literal[type_]
    model = create_model(
        name,
        __base__=_EventFields,
        __doc__=f"`{type_}`: {doc}",
        type=(literal, ...),
        data=(data, Field(description="The resource right after the change.")),
    )
    model.model_config["title"] = name
    return model


_ORDER_EVENTS = {
    "production_order.created": "a production order was created.",
    "production_order.updated": "an order changed without an event type of its own (a "
    "PATCH, reserve, unrelease, consumption, scrap, operation start or booked time).",
    "production_order.released": "an order was released (components reserved).",
    "production_order.started": "production of an order began.",
    "production_order.operation_completed": "one of an order's operations was completed.",
    "production_order.output_recorded": "finished units of an order were received.",
    "production_order.completed": "an order was completed.",
    "production_order.cancelled": "an order was cancelled.",
    "production_order.held": "an order was put on hold (its reservations stay).",
    "production_order.resumed": "a held order went back to the status it was held from.",
    "production_order.split": "part of an order was carved into a new order (one event "
    "for each of the two).",
}
_PURCHASE_EVENTS = {
    "purchase_order.created": "a purchase order was created (also by a plan's `firm`).",
    "purchase_order.received": "goods were received against a purchase order: on every "
    "receipt, partial ones included; `status` is `received` once every line is.",
    "purchase_order.cancelled": "a purchase order was cancelled.",
    "purchase_order.updated": "a purchase order's `reference` or `metadata` changed (`PATCH`).",
}


def _typed(type_: str) -> type[ResponseModel]:
    if type_.startswith("stock."):
        return _event_model(type_, StockChange, "the stock of one item changed.")
    if type_.startswith("purchase_order."):
        return _event_model(type_, PurchaseOrderOut, _PURCHASE_EVENTS[type_])
    return _event_model(type_, OrderOut, _ORDER_EVENTS.get(type_, "an order changed."))


# Every type of `EventType`: an order's events carry the order, a purchase order's the
# purchase order, `stock.*` a stock change.
EVENT_MODELS: Final[tuple[type[ResponseModel], ...]] = tuple(_typed(type_) for type_ in EVENT_TYPES)
Event = TypeAliasType(
    "Event",
    Annotated[Union[EVENT_MODELS], Field(discriminator="type")],  # type: ignore[valid-type]  # noqa: UP007
)
