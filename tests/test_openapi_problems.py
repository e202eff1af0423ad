"""Problem documents in the OpenAPI document: one schema per `code`, under a `oneOf`
with a discriminator, so a generated client narrows a problem by its code."""

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from prodorder_api import errors
from prodorder_api.app import create_app
from prodorder_api.orders import operations
from prodorder_api.orders.schemas import HistoryAction, OperationAction

SRC = Path(__file__).resolve().parents[1] / "src" / "prodorder_api"
# How src/ names a problem code: an AppError's `status, code, title = ...`, a body's
# `"code": "..."`, a `problem_type("...")`, and the handlers' table of HTTP errors.
CODE_SPELLINGS = (
    re.compile(r'status, code, title = \d+, "(\w+)"'),
    re.compile(r'"code": "(\w+)"'),
    re.compile(r'problem_type\("(\w+)"\)'),
    re.compile(r'\d{3}: \("(\w+)", "'),
)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _codes_in_src() -> set[str]:
    codes: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for spelling in CODE_SPELLINGS:
            codes |= set(spelling.findall(text))
    return codes


def test_every_code_raised_in_src_has_a_problem_schema(openapi: dict[str, Any]) -> None:
    codes = _codes_in_src()
    assert {"not_found", "insufficient_stock", "not_ready", "method_not_allowed"} <= codes
    schemas = openapi["components"]["schemas"]
    mapping = schemas["Problem"]["discriminator"]["mapping"]
    assert codes - {errors.HTTP_ERROR} <= set(mapping), codes - set(mapping)
    assert sorted(schemas["ProblemCode"]["enum"]) == sorted(mapping)
    for code, ref in mapping.items():
        variant = schemas[ref.removeprefix("#/components/schemas/")]
        assert variant["properties"]["code"]["const"] == code
        assert {"type", "title", "status", "detail", "code"} <= set(variant["required"])


def test_problem_is_a_discriminated_union_on_code(openapi: dict[str, Any]) -> None:
    problem = openapi["components"]["schemas"]["Problem"]
    assert problem["discriminator"]["propertyName"] == "code"
    assert problem["properties"]["code"] == {"$ref": "#/components/schemas/ProblemCode"}
    refs = [variant["$ref"] for variant in problem["oneOf"]]
    assert sorted(refs) == sorted(problem["discriminator"]["mapping"].values())


def test_the_special_problems_carry_their_own_fields(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    stock = schemas["ProblemInsufficientStock"]
    assert "shortages" in stock["required"]
    assert "shortages" not in schemas["ProblemNotFound"]["properties"]
    shortage = schemas["Shortage"]["properties"]
    assert set(shortage) == {
        "item_id",
        "location_id",
        "lot_code",
        "required",
        "available",
        "shortage",
    }
    transition = schemas["ProblemInvalidTransition"]["properties"]
    assert transition["current_status"]["anyOf"] == [
        {"$ref": "#/components/schemas/OrderStatus"},
        {"$ref": "#/components/schemas/OperationStatus"},
    ]
    assert transition["allowed_actions"]["items"]["anyOf"] == [
        {"$ref": "#/components/schemas/OrderAction"},
        {"$ref": "#/components/schemas/OperationAction"},
    ]
    assert "errors" in schemas["ProblemValidationError"]["required"]


PROBLEM = TypeAdapter(errors.Problem)


@pytest.mark.parametrize(
    "error",
    [
        errors.NotFound("no item"),
        errors.Conflict("taken"),
        errors.ValidationFailed(["body", "quantity"], "must be greater than 0"),
        errors.InsufficientStock(
            "1 component(s) short",
            [
                {
                    "item_id": "i",
                    "location_id": "l",
                    "lot_code": None,
                    "required": "2",
                    "available": "1",
                    "shortage": "1",
                }
            ],
        ),
        errors.InvalidTransition("cannot start", "completed", []),
        errors.PreconditionFailed("stale"),
        errors.IdempotencyKeyInUse("running"),
        errors.IdempotencyKeyReused("other request"),
        errors.RateLimited("slow down"),
        errors.ServiceUnavailable("full"),
    ],
    ids=lambda error: error.code,
)
def test_the_bodies_the_service_sends_match_their_schema(error: errors.AppError) -> None:
    parsed = PROBLEM.validate_python(error.body())
    assert type(parsed).__name__ == "Problem" + error.code.title().replace("_", "")


def test_a_body_with_the_wrong_status_for_its_code_does_not_match() -> None:
    body = errors.NotFound("no item").body() | {"status": 409}
    with pytest.raises(ValidationError):
        PROBLEM.validate_python(body)


def test_history_actions_name_every_action_an_order_records() -> None:
    recorded: set[str] = set()
    for path in (SRC / "orders").glob("*.py"):
        text = path.read_text()
        recorded |= set(re.findall(r'record\(\s*\w+,\s*"(\w+)"', text))
        recorded |= set(re.findall(r'OrderEvent\(action="(\w+)"', text))
    assert {"create", "release", "operation_time", "complete", "split", "return"} <= recorded
    assert recorded == set(get_args(HistoryAction.__value__))


def test_operation_actions_are_the_operations_state_table() -> None:
    assert get_args(OperationAction.__value__) == get_args(operations.OperationAction)
