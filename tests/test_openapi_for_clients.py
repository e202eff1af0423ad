"""The OpenAPI document reads well in generated clients (`make client-check` builds one).

Generators name a class after each component and after each inline schema they meet,
so a generic model (`Page_ItemOut_`), an inline enum (`OrderOutStatus`) or a nullable
optional body (sent as `Unset` by openapi-python-client) surfaces in every client.
"""

import re
from collections.abc import Iterator
from typing import Any

import pytest

from prodorder_api.app import create_app

PASCAL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _nodes(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{where}/{index}")


def test_component_names_are_plain_class_names(openapi: dict[str, Any]) -> None:
    names = list(openapi["components"]["schemas"])
    assert [name for name in names if not PASCAL_CASE.match(name)] == []
    assert {"ItemPage", "OrderSummaryPage", "MovementPage"} <= set(names)


def test_every_enum_is_a_named_component(openapi: dict[str, Any]) -> None:
    inline = [
        where
        for where, node in _nodes(openapi)
        if "enum" in node and not re.fullmatch(r"/components/schemas/\w+", where)
    ]
    assert inline == []
    schemas = openapi["components"]["schemas"]
    assert schemas["OrderStatus"]["enum"] == [
        "planned",
        "released",
        "in_progress",
        "on_hold",
        "completed",
        "cancelled",
    ]
    for name in ("OrderAction", "OperationStatus", "MovementType", "Tracking", "Consumption"):
        assert "enum" in schemas[name], name
    order = schemas["OrderOut"]["properties"]
    assert order["status"] == {"$ref": "#/components/schemas/OrderStatus"}
    assert order["allowed_actions"]["items"] == {"$ref": "#/components/schemas/OrderAction"}


def test_optional_bodies_are_their_model_not_nullable(openapi: dict[str, Any]) -> None:
    release = openapi["paths"]["/v1/production-orders/{order_id}/release"]["post"]
    assert not release["requestBody"].get("required")
    schema = release["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ReleaseRequest"}
    nullable_bodies = [
        where
        for where, node in _nodes(openapi["paths"])
        if where.endswith("/requestBody/content/application/json/schema")
        and {"type": "null"} in node.get("anyOf", [])
    ]
    assert nullable_bodies == []


def resolve(openapi: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its ``$ref`` (``#/components/...``) points at."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = openapi
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return resolve(openapi, target)


def test_every_operation_that_takes_if_match_declares_412(openapi: dict[str, Any]) -> None:
    takes_if_match = [
        (f"{method.upper()} {path}", operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if any(
            resolve(openapi, p)["in"] == "header" and resolve(openapi, p)["name"] == "If-Match"
            for p in operation.get("parameters", [])
        )
    ]
    assert takes_if_match
    undeclared = [
        where for where, operation in takes_if_match if "412" not in operation["responses"]
    ]
    assert undeclared == []


def test_codes_document_their_pattern_and_length(openapi: dict[str, Any]) -> None:
    item = openapi["components"]["schemas"]["ItemCreate"]["properties"]
    assert item["sku"]["pattern"] == item["uom"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"
    assert (item["sku"]["maxLength"], item["uom"]["maxLength"]) == (64, 16)
