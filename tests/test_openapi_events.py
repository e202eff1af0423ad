"""Events in the OpenAPI document: one schema per `type` with its `data` typed, in the
feed and in the webhook a subscriber receives; real events and problems match them."""

from typing import Any

import httpx
import jsonschema_rs
import pytest

from prodorder_api.app import create_app
from prodorder_api.events.schemas import EVENT_TYPES
from tests.helpers import ok
from tests.order_helpers import act, bicycle, create_order


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _validator(openapi: dict[str, Any], component: str) -> Any:
    root = {"components": openapi["components"], "$ref": f"#/components/schemas/{component}"}
    return jsonschema_rs.validator_for(root)


def test_the_feed_lists_events_typed_per_type(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["EventPage"]["properties"]["data"]["items"] == {
        "$ref": "#/components/schemas/Event"
    }
    assert "EventOut" not in schemas
    event = schemas["Event"]
    assert event["discriminator"]["propertyName"] == "type"
    mapping = event["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(EVENT_TYPES)
    for type_, ref in mapping.items():
        variant = schemas[ref.removeprefix("#/components/schemas/")]
        assert variant["properties"]["type"]["const"] == type_
        expected = "StockChange" if type_ == "stock.changed" else "OrderOut"
        if type_.startswith("purchase_order."):
            expected = "PurchaseOrderOut"
        assert variant["properties"]["data"] == {
            "$ref": f"#/components/schemas/{expected}",
            "description": "The resource right after the change.",
        }


def test_the_webhook_delivery_is_documented(openapi: dict[str, Any]) -> None:
    delivery = openapi["webhooks"]["event"]["post"]
    body = delivery["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Event"}
    headers = {p["name"] for p in delivery["parameters"] if p["required"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


async def _feed_end(client: httpx.AsyncClient) -> str | None:
    cursor = None
    while True:
        page = ok(
            await client.get(
                "/v1/events", params={"limit": 500, "after": cursor} if cursor else {"limit": 500}
            )
        )
        if page["next_cursor"] is None:
            return cursor
        cursor = page["next_cursor"]


async def test_real_events_and_problems_match_the_document(
    client: httpx.AsyncClient, openapi: dict[str, Any]
) -> None:
    start = await _feed_end(client)
    shop = await bicycle(client)
    order = await create_order(client, shop["bike"]["id"], 2)
    short = await create_order(client, shop["bike"]["id"], 50)
    refused = await act(client, short, "release")
    assert refused.status_code == 409
    for action, body in (("release", None), ("start", None), ("outputs", {"quantity": 1})):
        ok(await act(client, order, action, body))
    ok(await act(client, order, "complete"))

    problem = _validator(openapi, "Problem")
    problem.validate(refused.json())
    assert refused.json()["shortages"][0]["shortage"]

    params = {"limit": 500, **({"after": start} if start else {})}
    events = ok(await client.get("/v1/events", params=params))["data"]
    seen = {event["type"] for event in events}
    assert {"stock.changed", "production_order.released", "production_order.completed"} <= seen
    event = _validator(openapi, "Event")
    for one in events:
        event.validate(one)
    # The discriminator matters: an order event's data is no stock change.
    completed = next(e for e in events if e["type"] == "production_order.completed")
    assert not event.is_valid({**completed, "type": "stock.changed"})
