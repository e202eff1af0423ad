"""Metadata: the integrator's own keys on items, BOMs, orders, purchase orders and lots.

A map of string to string (Stripe's `metadata`): at most 50 keys of at most 40
characters, values of at most 500. A create stores it; a PATCH merges into it, and a
key sent as `""` is removed. Lists filter with `?metadata[key]=value`, every pair
required. The rules live here once; each resource only names its column.
"""

import re
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import AfterValidator, AliasChoices, Field, StringConstraints
from sqlalchemy import ColumnElement, and_, true
from typing_extensions import TypeAliasType

from prodorder_api.db import metadata_has
from prodorder_api.errors import ValidationFailed

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500



def _storable(text: str) -> str:
    """Kept exactly as sent (no trimming), but text PostgreSQL can store: no NUL, no
    lone surrogate."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return text


MetadataKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH), AfterValidator(_storable)
]
MetadataValue = Annotated[
    str, StringConstraints(max_length=MAX_VALUE_LENGTH), AfterValidator(_storable)
]

# One named schema in the OpenAPI document.
Metadata = TypeAliasType(
    "Metadata",
    Annotated[
        dict[MetadataKey, MetadataValue],
        Field(
            max_length=MAX_KEYS,
            description=(
                "Your own keys: at most 50, each at most 40 characters, values at most"
                ' 500. On PATCH the map merges into the stored one and a key set to `""`'
                " is removed."
            ),
            examples=[{"shop_order": "1234", "channel": "web"}],
        ),
    ],
)


def metadata_field() -> Any:
    """The `metadata` field of a request body: optional, an empty map when left out."""
    return Field(default_factory=dict)


def metadata_out() -> Any:
    """The `metadata` field of a response, read from the ORM's `meta` attribute (the
    declarative base reserves the name `metadata`) or from a mapping's `metadata` key."""
    return Field(validation_alias=AliasChoices("meta", "metadata"))


def created(sent: dict[str, str]) -> dict[str, str]:
    """The map a create stores: keys sent as `""` are simply not set."""
    return {key: value for key, value in sent.items() if value != ""}


def merged(stored: dict[str, str], sent: dict[str, str]) -> dict[str, str]:
    """A PATCH's map: ``sent`` over ``stored``, keys set to `""` removed; 422 when the
    result holds more than 50 keys."""
    result = {**stored, **sent}
    result = {key: value for key, value in result.items() if value != ""}
    if len(result) > MAX_KEYS:
        raise ValidationFailed(
            ["body", "metadata"], f"metadata would hold {len(result)} keys; at most {MAX_KEYS}"
        )
    return result


def stored(values: dict[str, Any]) -> dict[str, Any]:
    """A create body's ``model_dump()`` as model columns: ``metadata`` becomes ``meta``."""
    values = dict(values)
    values["meta"] = created(values.pop("metadata", None) or {})
    return values


def patch(resource: Any, changes: dict[str, Any]) -> bool:
    """Merge a PATCH's ``metadata`` (taken out of ``changes``) into ``resource.meta``;
    True when the map changed. ``null`` is refused: send `{}` to change nothing."""
    if "metadata" not in changes:
        return False
    sent = changes.pop("metadata")
    if sent is None:
        raise ValidationFailed(["body", "metadata"], "may not be null")
    result = merged(resource.meta, sent)
    if result == resource.meta:
        return False
    resource.meta = result
    return True


_FILTER = re.compile(r"^metadata\[(.*)\]$", re.DOTALL)


def metadata_filter(request: Request) -> dict[str, str]:
    """The `?metadata[key]=value` pairs of a list request (each key once)."""
    pairs: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        found = _FILTER.match(name)
        if found is None:
            continue
        key = found.group(1)
        if (
            not key
            or len(key) > MAX_KEY_LENGTH
            or len(value) > MAX_VALUE_LENGTH
            or "\x00" in name + value
        ):
            raise ValidationFailed(
                ["query", name],
                f"a metadata filter takes a key of 1 to {MAX_KEY_LENGTH} characters and"
                f" a value of at most {MAX_VALUE_LENGTH}, without NUL characters",
            )
        if key in pairs and pairs[key] != value:
            raise ValidationFailed(["query", name], "a metadata key can be filtered once")
        pairs[key] = value
    if len(pairs) > MAX_KEYS:
        raise ValidationFailed(["query"], f"at most {MAX_KEYS} metadata filters")
    return pairs


def matching(column: Any, pairs: dict[str, str]) -> ColumnElement[bool]:
    """The rows whose map holds every pair."""
    if not pairs:
        return true()
    return and_(*(metadata_has(column, key, value) for key, value in pairs.items()))


MetadataFilter = Annotated[dict[str, str], Depends(metadata_filter)]


def documented_filter() -> dict[str, Any]:
    """A list route's ``openapi_extra``: the `metadata` query parameter as the OpenAPI
    document declares it (`deepObject`: `?metadata[key]=value`), which FastAPI cannot
    declare for a map itself."""
    return {"parameters": [dict(FILTER_PARAMETER)]}


FILTER_PARAMETER: dict[str, Any] = {
    "name": "metadata",
    "in": "query",
    "required": False,
    "style": "deepObject",
    "explode": True,
    "description": (
        "Only the rows whose metadata holds every pair: `?metadata[key]=value`"
        " (repeat for more keys)."
    ),
    "schema": {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_LENGTH},
        "maxProperties": MAX_KEYS,
    },
}
