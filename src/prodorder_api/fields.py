"""Field types shared by every request and response model."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from typing_extensions import TypeAliasType

from prodorder_api.money import MAX_INPUT, parse_decimal, to_json

# Each decimal type is one named schema in the OpenAPI document (a `TypeAliasType`
# becomes a component), referenced by every field of that type. Input takes a string or
# a JSON number; output is always a string. The string patterns say what the checks
# below say: at most 9 digits before the point and 6 after it, and "greater than 0" as
# no minus sign and some digit other than 0 (no look-ahead, which not every generator's
# regular expressions know).
_PLACES = r"(?:[1-9]\d{0,5}|0[1-9]\d{0,4}|00[1-9]\d{0,3}|000[1-9]\d{0,2}|0000[1-9]\d?|00000[1-9])"
_POSITIVE = rf"(?:[1-9]\d{{0,8}}(?:\.\d{{1,6}})?|0\.{_PLACES})"
DECIMAL_PATTERNS: Final = {
    "Decimal": r"^-?\d+(\.\d{1,6})?$",
    "DecimalInput": r"^-?\d{1,9}(\.\d{1,6})?$",
    "PositiveDecimal": rf"^{_POSITIVE}$",
    "NonNegativeDecimal": r"^\d{1,9}(\.\d{1,6})?$",
    "NonZeroDecimal": rf"^-?{_POSITIVE}$",
}
_BOUND = int(MAX_INPUT)


def _input_schema(name: str, description: str, **number: Any) -> WithJsonSchema:
    string = {"type": "string", "pattern": DECIMAL_PATTERNS[name], "examples": ["12.5"]}
    number = {"type": "number", "exclusiveMaximum": _BOUND, **number}
    return WithJsonSchema({"anyOf": [string, number], "description": description}, "validation")


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _non_zero(value: Decimal) -> Decimal:
    if value == 0:
        raise ValueError("must not be 0")
    return value


_SERIALIZE = PlainSerializer(to_json, return_type=str, when_used="json")
_OUT_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": DECIMAL_PATTERNS["Decimal"],
        "examples": ["12.5"],
        "description": "Exact decimal as a string, at most 6 places.",
    },
    mode="serialization",
)
_PARSE = BeforeValidator(parse_decimal)


def _named(name: str, annotated: Any) -> Any:
    """A named type: one component in the OpenAPI document, `$ref`-ed by each field."""
    return TypeAliasType(name, annotated)


DecimalValue = _named(
    "DecimalInput",
    Annotated[
        Decimal,
        _PARSE,
        _SERIALIZE,
        _input_schema(
            "DecimalInput",
            "Exact decimal, at most 6 places, as a string or JSON number.",
            exclusiveMinimum=-_BOUND,
        ),
        _OUT_SCHEMA,
    ],
)
PositiveDecimal = _named(
    "PositiveDecimal",
    Annotated[
        Decimal,
        _PARSE,
        AfterValidator(_positive),
        _SERIALIZE,
        _input_schema(
            "PositiveDecimal",
            "Exact decimal greater than 0, at most 6 places, as a string or JSON number.",
            exclusiveMinimum=0,
        ),
        _OUT_SCHEMA,
    ],
)
NonNegativeDecimal = _named(
    "NonNegativeDecimal",
    Annotated[
        Decimal,
        _PARSE,
        AfterValidator(_non_negative),
        _SERIALIZE,
        _input_schema(
            "NonNegativeDecimal",
            "Exact decimal, 0 or more, at most 6 places, as a string or JSON number.",
            minimum=0,
        ),
        _OUT_SCHEMA,
    ],
)
NonZeroDecimal = _named(
    "NonZeroDecimal",
    Annotated[
        Decimal,
        _PARSE,
        AfterValidator(_non_zero),
        _SERIALIZE,
        _input_schema(
            "NonZeroDecimal",
            "Exact non-zero decimal, at most 6 places, as a string or JSON number.",
            exclusiveMinimum=-_BOUND,
        ),
        _OUT_SCHEMA,
    ],
)

# Decimals the service computes (never parsed from input): serialised as strings.
DecimalOut = _named("Decimal", Annotated[Decimal, _SERIALIZE, _OUT_SCHEMA])


def _clean_text(value: str) -> str:
    value = value.strip()
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800"
        raise ValueError("must be valid Unicode text") from exc
    return value


def _code_type(max_length: int) -> Any:
    """A code people type (SKU, location, lot, serial): trimmed, then letters, digits, `._-/`.

    The constraints come before the validator that trims: after it, pydantic still
    checks them but leaves the pattern out of the JSON schema, and so out of the OpenAPI
    document. A shorter code is a type of its own, because `Annotated[Code,
    Field(max_length=16)]` would refuse a long one as having "more than 16 items"."""
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"),
        BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    ]


Code = _code_type(64)
Uom = _code_type(16)  # a unit of measure: items.uom is VARCHAR(16)
Name = Annotated[str, AfterValidator(_clean_text), Field(min_length=1, max_length=200)]
Text = Annotated[str, AfterValidator(_clean_text), Field(max_length=2000)]
Reference = Annotated[str, AfterValidator(_clean_text), Field(min_length=1, max_length=200)]
LotCode = Code
# Stored as "" for untracked stock; shown as null.
LotCodeOut = Annotated[str | None, BeforeValidator(lambda value: value or None)]
Serial = Code


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone (RFC 3339), e.g. 2026-01-31T12:00:00Z")
    try:  # stored and compared in UTC: 0001-01-01T00:00+14:00 has no UTC form
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("must be between years 1 and 9999 in UTC") from exc


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class RequestModel(BaseModel):
    """Input bodies: unknown fields are rejected so client typos surface."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
