"""Field types shared by every request and response model."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from prodorder_api.money import MAX_INPUT, parse_decimal, to_json

_DECIMAL_PATTERN = r"^-?\d{1,9}(\.\d{1,6})?$"


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


def _decimal_schema(description: str, minimum: str | None = None) -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string", "pattern": _DECIMAL_PATTERN, "examples": ["12.5"]}
    number: dict[str, Any] = {"type": "number", "exclusiveMaximum": int(MAX_INPUT)}
    return {"anyOf": [string, number], "description": description}


_SERIALIZE = PlainSerializer(to_json, return_type=str, when_used="json")
_OUT_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": r"^-?\d+(\.\d{1,6})?$", "examples": ["12.5"]},
    mode="serialization",
)


def _decimal_type(description: str, *checks: Any) -> Any:
    return Annotated[
        Decimal,
        BeforeValidator(parse_decimal),
        *[AfterValidator(check) for check in checks],
        _SERIALIZE,
        WithJsonSchema(_decimal_schema(description), mode="validation"),
        _OUT_SCHEMA,
    ]


DecimalValue = _decimal_type("Exact decimal, at most 6 places, as a string or JSON number.")
PositiveDecimal = _decimal_type("Exact decimal greater than 0, at most 6 places.", _positive)
NonNegativeDecimal = _decimal_type("Exact decimal, 0 or more, at most 6 places.", _non_negative)
NonZeroDecimal = _decimal_type("Exact non-zero decimal, at most 6 places.", _non_zero)

# Decimals the service computes (never parsed from input): serialised as strings.
DecimalOut = Annotated[Decimal, _SERIALIZE, _OUT_SCHEMA]


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
