"""Exact decimals in the OpenAPI document: one named schema per kind, referenced by
every field, with string patterns that agree with what the service accepts."""

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from prodorder_api.app import create_app
from prodorder_api.fields import DECIMAL_PATTERNS, NonZeroDecimal, PositiveDecimal
from prodorder_api.money import to_json
from tests.test_openapi_for_clients import _nodes

DECIMALS = st.decimals(
    min_value=Decimal("-999999999.999999"),
    max_value=Decimal("999999999.999999"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _string_pattern(schema: dict[str, Any]) -> str:
    string = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "string")
    pattern: str = string["pattern"]
    return pattern


def test_each_decimal_kind_is_one_named_schema(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in ("Decimal", "PositiveDecimal", "NonNegativeDecimal", "NonZeroDecimal"):
        assert _string_pattern(schemas[name]) == DECIMAL_PATTERNS[name], name
    assert schemas["Decimal"]["type"] == "string"
    patterns = set(DECIMAL_PATTERNS.values())
    inline = [
        where
        for where, node in _nodes(openapi)
        if node.get("pattern") in patterns
        and not re.fullmatch(r"/components/schemas/\w*Decimal(/anyOf/0)?", where)
    ]
    assert inline == []


def test_fields_reference_their_decimal_kind(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    receipt = schemas["ReceiptCreate"]["properties"]["quantity"]
    assert receipt["$ref"] == "#/components/schemas/PositiveDecimal"
    adjustment = schemas["AdjustmentCreate"]["properties"]["quantity_delta"]
    assert adjustment["$ref"] == "#/components/schemas/NonZeroDecimal"
    movement = schemas["MovementOut"]["properties"]["quantity"]
    assert movement["$ref"] == "#/components/schemas/Decimal"


@pytest.mark.parametrize("text", ["-1", "0", "0.000000", "-0.5", "0.0000001", "+1", "1.", ""])
def test_the_positive_pattern_refuses(text: str) -> None:
    assert not re.fullmatch(DECIMAL_PATTERNS["PositiveDecimal"], text)


@pytest.mark.parametrize("text", ["1", "0.5", "12.5", "0.000001", "0.010", "999999999.999999"])
def test_the_positive_pattern_accepts(text: str) -> None:
    assert re.fullmatch(DECIMAL_PATTERNS["PositiveDecimal"], text)


def _accepted(adapter: TypeAdapter[Any], text: str) -> bool:
    try:
        adapter.validate_python(text)
    except ValidationError:
        return False
    return True


@given(DECIMALS)
def test_the_patterns_agree_with_the_validators(value: Decimal) -> None:
    text = to_json(value)
    for name, kind in (("PositiveDecimal", PositiveDecimal), ("NonZeroDecimal", NonZeroDecimal)):
        matches = re.fullmatch(DECIMAL_PATTERNS[name], text) is not None
        assert matches == _accepted(TypeAdapter(kind), text), (name, text)
    assert re.fullmatch(DECIMAL_PATTERNS["Decimal"], text)
