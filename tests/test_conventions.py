"""SPEC §1 conventions, checked the way a client would check them.

* Every bad input gets the right ``application/problem+json`` and changes nothing.
* No request, however malformed, gets a 500 or an HTML page.
* Quantities and amounts are exact decimals, sent back as JSON strings.
* ``X-Request-ID`` is echoed or generated on every response, errors included.
* ``/healthz`` and ``/readyz`` answer.
* Cursor pagination yields every row exactly once, also while rows are inserted.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import AUTH
from tests.helpers import (
    create_item,
    create_location,
    main_location,
    movements,
    ok,
    problem,
    receive,
    totals,
    unique,
    walk,
)

PROBLEM = "application/problem+json"
JSON_HEADERS = {"content-type": "application/json"}
Body = dict[str, Any]
MakeBody = Callable[[Body], bytes]


@pytest.fixture(scope="module")
async def stocked_item_id(app: FastAPI) -> str:
    """One item with 3 on hand, shared by the rejected stock writes (which leave it alone)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        item = await create_item(http)
        await receive(http, item["id"], "3", unit_cost="2")
    return str(item["id"])


@pytest.fixture
async def lenient(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but an unhandled error comes back as the 500 a caller would see
    instead of being raised into the test, so the assertion can say what came back."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        yield http


# --------------------------------------------------------------------------- helpers


def raw_json(body: Body, field: str, raw: str) -> bytes:
    """``body`` as JSON text with ``field`` set to ``raw``, a literal JSON fragment
    (so values Python's json cannot write, like ``1e400``, can be sent)."""
    text = json.dumps({**body, field: "__RAW__"})
    return text.replace('"__RAW__"', raw).encode()


async def post_raw(
    client: httpx.AsyncClient,
    path: str,
    content: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> httpx.Response:
    return await client.request(method, path, content=content, headers=headers or JSON_HEADERS)


def validation_error(response: httpx.Response, field: str | None) -> Body:
    """A 422 ``validation_error`` whose ``errors`` name ``field`` (``"body"`` for the
    whole body; None when only the shape of ``errors`` is checked)."""
    body = problem(response, 422, "validation_error")
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert set(error) >= {"loc", "msg"}, error
        assert isinstance(error["loc"], list) and error["loc"], error
        assert isinstance(error["msg"], str) and error["msg"], error
        assert error["loc"][0] == "body" or error["loc"][0] in ("query", "path"), error
    if field == "body":
        assert any(error["loc"] == ["body"] for error in errors), errors
    elif field is not None:
        assert any(error["loc"][:2] == ["body", field] for error in errors), errors
    return body


def no_500_no_html(response: httpx.Response) -> str | None:
    """What is wrong with this response for SPEC §1, or None."""
    content_type = response.headers.get("content-type", "")
    problems = []
    if response.status_code >= 500:
        problems.append(f"status {response.status_code}")
    if response.status_code >= 400 and not content_type.startswith(PROBLEM):
        problems.append(f"error with content-type {content_type!r}")
    if not content_type.startswith(("application/json", PROBLEM)):
        problems.append(f"content-type {content_type!r}")
    if "html" in content_type or response.text.lstrip().startswith("<"):
        problems.append("HTML")
    if not response.headers.get("x-request-id"):
        problems.append("no X-Request-ID")
    if not problems:
        return None
    return f"{', '.join(problems)}: {response.text[:160]!r}"


async def stock_state(client: httpx.AsyncClient, item_id: str) -> tuple[Any, ...]:
    """Everything a rejected stock write must leave alone."""
    return (
        await movements(client, item_id=item_id),
        await totals(client, item_id),
    )


async def items_changed_since(client: httpx.AsyncClient, since: datetime) -> list[Body]:
    page = ok(await client.get("/v1/items", params={"updated_after": since.isoformat()}))
    return page["data"]  # type: ignore[no-any-return]


# ------------------------------------------------- 1. bad input → problem, nothing changed

# (case id, literal JSON for a decimal field) — wrong for every decimal field.
BAD_DECIMALS = [
    ("non-numeric", '"abc"'),
    ("digits-then-letters", '"12abc"'),
    ("empty-string", '""'),
    ("seven-places-string", '"1.0000001"'),
    ("seven-places-number", "1.0000001"),
    ("1e400", "1e400"),
    ("-1e400", "-1e400"),
    ("NaN-literal", "NaN"),
    ("Infinity-string", '"Infinity"'),
    ("too-large", '"1000000000"'),
    ("huge-integer-literal", "9" * 5000),
    ("array", "[1]"),
    ("array-of-string", '["1"]'),
    ("object", '{"value": "1"}'),
    ("true", "true"),
    ("false", "false"),
]


def set_raw(field: str, raw: str) -> MakeBody:
    return lambda base: raw_json(base, field, raw)


def drop(field: str) -> MakeBody:
    return lambda base: json.dumps({k: v for k, v in base.items() if k != field}).encode()


def add(field: str, value: Any) -> MakeBody:
    return lambda base: json.dumps({**base, field: value}).encode()


def whole(raw: bytes) -> MakeBody:
    return lambda _base: raw


def truncated() -> MakeBody:
    return lambda base: json.dumps(base).encode()[:-3]


def decimal_cases(field: str, *extra: tuple[str, str]) -> list[Any]:
    return [
        pytest.param(field, set_raw(field, raw), id=f"{field}-{name}")
        for name, raw in [*BAD_DECIMALS, *extra]
    ]


def body_cases(required: str) -> list[Any]:
    """Wrong whatever the endpoint: shape of the body, unknown fields, broken JSON."""
    return [
        pytest.param("colour", add("colour", "red"), id="unknown-field"),
        pytest.param(None, truncated(), id="malformed-json-truncated"),
        pytest.param(None, lambda b: json.dumps(b).replace('"', "'").encode(), id="single-quotes"),
        pytest.param(None, lambda b: json.dumps(b).encode() + b" x", id="trailing-garbage"),
        pytest.param(None, lambda b: json.dumps(b).encode()[:-1] + b",}", id="trailing-comma"),
        pytest.param(None, lambda b: b"\xff\xfe" + json.dumps(b).encode(), id="not-utf8"),
        pytest.param("body", whole(b""), id="empty-body"),
        pytest.param("body", whole(b"null"), id="null-body"),
        pytest.param("body", whole(b"[]"), id="array-body"),
        pytest.param("body", whole(b'"quantity"'), id="string-body"),
        pytest.param("body", whole(b"42"), id="number-body"),
        pytest.param(required, drop(required), id=f"missing-{required}"),
        pytest.param(required, add(required, None), id=f"null-{required}"),
    ]


ITEM_CASES = [
    *decimal_cases("standard_cost", ("negative", '"-1"'), ("negative-number", "-0.5")),
    *body_cases("sku"),
    pytest.param("name", add("name", None), id="null-name"),
    pytest.param("name", add("name", ""), id="empty-name"),
    pytest.param("name", add("name", "a\x00b"), id="nul-in-name"),
    pytest.param("name", add("name", "n" * 201), id="name-too-long"),
    pytest.param("sku", add("sku", "has space"), id="sku-with-space"),
    pytest.param("sku", add("sku", ""), id="empty-sku"),
    pytest.param("sku", add("sku", "S" * 65), id="sku-too-long"),
    pytest.param("sku", add("sku", 123), id="sku-number"),
    pytest.param("uom", add("uom", "U" * 17), id="uom-too-long"),  # VARCHAR(16): 500 on PostgreSQL
    pytest.param("tracking", add("tracking", "batch"), id="unknown-tracking"),
    pytest.param("lead_time_days", add("lead_time_days", -1), id="negative-lead-time"),
    pytest.param("lead_time_days", add("lead_time_days", 1.5), id="fractional-lead-time"),
    pytest.param("lead_time_days", set_raw("lead_time_days", "1e400"), id="lead-time-1e400"),
]


@pytest.mark.parametrize(("field", "make_body"), ITEM_CASES)
async def test_bad_item_is_422_and_creates_nothing(
    lenient: httpx.AsyncClient, field: str | None, make_body: MakeBody
) -> None:
    sku = unique("BAD")
    since = datetime.now(UTC) - timedelta(milliseconds=1)
    response = await post_raw(lenient, "/v1/items", make_body({"sku": sku, "name": "Widget"}))
    validation_error(response, field)
    assert ok(await lenient.get("/v1/items", params={"sku": sku}))["data"] == []
    assert await items_changed_since(lenient, since) == []


RECEIPT_CASES = [
    *decimal_cases(
        "quantity",
        ("negative", '"-1"'),
        ("negative-number", "-2.5"),
        ("zero", '"0"'),
        ("zero-number", "0"),
        ("zero-six-places", '"0.000000"'),
        ("negative-zero", '"-0"'),
        ("null", "null"),
    ),
    pytest.param("unit_cost", set_raw("unit_cost", '"-0.01"'), id="unit_cost-negative"),
    pytest.param("unit_cost", set_raw("unit_cost", '"0.0000001"'), id="unit_cost-seven-places"),
    pytest.param("unit_cost", set_raw("unit_cost", "1e400"), id="unit_cost-1e400"),
    pytest.param("unit_cost", set_raw("unit_cost", '"abc"'), id="unit_cost-non-numeric"),
    *body_cases("item_id"),
    pytest.param("item_id", add("item_id", str(uuid.uuid4())), id="unknown-item_id"),
    pytest.param("item_id", add("item_id", "not-a-uuid"), id="malformed-item_id"),
    pytest.param("item_id", add("item_id", 12), id="number-item_id"),
    pytest.param("location_id", add("location_id", str(uuid.uuid4())), id="unknown-location"),
    pytest.param("expiry_date", add("expiry_date", "2026-02-30"), id="impossible-date"),
    pytest.param("reference", add("reference", "a\x00b"), id="nul-in-reference"),
]


@pytest.mark.parametrize(("field", "make_body"), RECEIPT_CASES)
async def test_bad_receipt_is_422_and_changes_no_stock(
    lenient: httpx.AsyncClient, stocked_item_id: str, field: str | None, make_body: MakeBody
) -> None:
    before = await stock_state(lenient, stocked_item_id)
    body = {"item_id": stocked_item_id, "quantity": "2", "unit_cost": "1.5"}
    response = await post_raw(lenient, "/v1/stock/receipts", make_body(body))
    validation_error(response, field)
    assert await stock_state(lenient, stocked_item_id) == before


ADJUSTMENT_CASES = [
    *decimal_cases(
        "quantity_delta",
        ("zero", '"0"'),
        ("zero-number", "0"),
        ("zero-six-places", '"0.000000"'),
        ("negative-zero", '"-0"'),
        ("negative-zero-number", "-0.0"),
        ("negative-seven-places", '"-0.0000001"'),
        ("null", "null"),
    ),
    *body_cases("item_id"),
    pytest.param("item_id", add("item_id", str(uuid.uuid4())), id="unknown-item_id"),
    pytest.param("item_id", add("item_id", "not-a-uuid"), id="malformed-item_id"),
    pytest.param("location_id", add("location_id", str(uuid.uuid4())), id="unknown-location"),
    pytest.param("reason", drop("reason"), id="missing-reason"),
    pytest.param("reason", add("reason", ""), id="empty-reason"),
    pytest.param("reason", add("reason", "a\x00b"), id="nul-in-reason"),
]


@pytest.mark.parametrize(("field", "make_body"), ADJUSTMENT_CASES)
async def test_bad_adjustment_is_422_and_changes_no_stock(
    lenient: httpx.AsyncClient, stocked_item_id: str, field: str | None, make_body: MakeBody
) -> None:
    before = await stock_state(lenient, stocked_item_id)
    body = {"item_id": stocked_item_id, "quantity_delta": "-1", "reason": "cycle count"}
    response = await post_raw(lenient, "/v1/stock/adjustments", make_body(body))
    validation_error(response, field)
    assert await stock_state(lenient, stocked_item_id) == before


async def test_duplicate_sku_is_409_conflict_and_keeps_the_first(
    lenient: httpx.AsyncClient,
) -> None:
    sku = unique("DUP")
    first = ok(await lenient.post("/v1/items", json={"sku": sku, "name": "First"}), 201)
    for attempt in (sku, f"  {sku}  "):  # surrounding blanks are not a different SKU
        response = await lenient.post("/v1/items", json={"sku": attempt, "name": "Second"})
        problem(response, 409, "conflict")
    other = await create_item(lenient)
    response = await lenient.patch(f"/v1/items/{other['id']}", json={"sku": sku})
    problem(response, 409, "conflict")
    assert ok(await lenient.get("/v1/items", params={"sku": sku}))["data"] == [first]
    assert ok(await lenient.get(f"/v1/items/{other['id']}")) == other


NOT_FOUND_PATHS = [
    ("GET", "/v1/items/{uuid}"),
    ("GET", "/v1/items/not-a-uuid"),
    ("GET", "/v1/items/12"),
    ("GET", "/v1/items/" + "a" * 300),
    ("GET", "/v1/items/%00"),
    ("GET", "/v1/items/%F0%9F%98%80"),
    ("GET", "/v1/items/{uuid}/stock"),
    ("GET", "/v1/items/not-a-uuid/stock"),
    ("PATCH", "/v1/items/{uuid}"),
    ("PATCH", "/v1/items/not-a-uuid"),
    ("GET", "/v1/locations/{uuid}"),
    ("GET", "/v1/locations/not-a-uuid"),
]


@pytest.mark.parametrize(("method", "path"), NOT_FOUND_PATHS)
async def test_unknown_id_in_path_is_404_not_found(
    lenient: httpx.AsyncClient, method: str, path: str
) -> None:
    url = path.replace("{uuid}", str(uuid.uuid4()))
    body = {"name": "Renamed"} if method == "PATCH" else None
    problem(await lenient.request(method, url, json=body), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("GET", "/nope"),
        ("GET", "/"),
        ("GET", "/v2/items"),
        ("POST", "/v1/stock/nope"),
        ("GET", "/v1/items/x/y/z"),
    ],
)
async def test_unknown_route_is_404_problem(
    lenient: httpx.AsyncClient, method: str, path: str
) -> None:
    problem(await lenient.request(method, path), 404, "not_found")


WRONG_METHODS = [
    ("DELETE", "/v1/items", {"GET", "POST"}),
    ("PUT", "/v1/items/{uuid}", {"GET", "PATCH"}),
    ("DELETE", "/v1/items/{uuid}", {"GET", "PATCH"}),
    ("GET", "/v1/stock/receipts", {"POST"}),
    ("PUT", "/v1/stock/adjustments", {"POST"}),
    ("POST", "/v1/items/{uuid}/stock", {"GET"}),
    ("POST", "/healthz", {"GET"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
async def test_wrong_method_is_405_problem(
    lenient: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await lenient.request(method, path.replace("{uuid}", str(uuid.uuid4())))
    problem(response, 405, "method_not_allowed")
    assert response.headers.get("allow"), "a 405 names the allowed methods (RFC 9110)"


async def test_405_allow_lists_every_method_of_the_resource(lenient: httpx.AsyncClient) -> None:
    """RFC 9110 §15.5.6: ``Allow`` lists the target resource's supported methods."""
    wrong = []
    for method, path, allowed in WRONG_METHODS:
        response = await lenient.request(method, path.replace("{uuid}", str(uuid.uuid4())))
        assert response.status_code == 405
        listed = {m.strip() for m in response.headers["allow"].split(",")}
        if not listed >= allowed:
            wrong.append(f"{method} {path}: Allow: {response.headers['allow']}, expected {allowed}")
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------- 2. no 500 and never HTML

# Literal JSON values sent in place of each field in turn.
NASTY_VALUES = [
    ("huge-string", json.dumps("x" * 100_000)),
    ("nul", json.dumps("ab\x00cd")),
    ("lone-surrogate", '"\\ud800"'),
    ("unicode", json.dumps("Zürich ☃ 😀 ﷽ \u202e\u200b")),
    ("html", json.dumps("<script>alert(1)</script>")),
    ("deep-array", "[" * 500 + "]" * 500),
    ("deep-object", '{"a":' * 500 + "1" + "}" * 500),
    ("1e400", "1e400"),
    ("huge-integer", "9" * 5000),
    ("true", "true"),
    ("null", "null"),
    ("object", "{}"),
]
# ... and, in number fields, odd numbers.
NASTY_NUMBERS = [
    ("1e308", "1e308"),
    ("NaN", "NaN"),
    ("-10^30", str(-(10**30))),
    ("float-noise", "0.30000000000000004"),
    ("negative-zero", '"-0"'),
    ("negative-zero-number", "-0.0"),
    ("exponent", '"1e3"'),
    ("padded", '" 5 "'),
    ("plus", '"+5"'),
    ("long-digits", json.dumps("9" * 41)),
    ("array", "[1]"),
]
NUMBER_FIELDS = {"quantity", "quantity_delta", "unit_cost", "standard_cost", "lead_time_days"}

RAW_BODIES = [  # (label, bytes, content-type)
    ("empty", b"", "application/json"),
    ("truncated", b'{"a": ', "application/json"),
    ("not-utf8", b'\xff\xfe{"a": 1}', "application/json"),
    ("deep-array", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("deep-object", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "application/json"),
    ("huge-integer", b'{"a": ' + b"9" * 5000 + b"}", "application/json"),
    ("many-keys", json.dumps({f"k{i}": i for i in range(1_000)}).encode(), "application/json"),
    ("two-megabytes", json.dumps({"a": "x" * 2_000_000}).encode(), "application/json"),
    ("text-plain", b'{"a": 1}', "text/plain"),
    ("form", b"a=1&b=2", "application/x-www-form-urlencoded"),
    ("xml", b"<a>1</a>", "application/xml"),
    ("charset-latin1", '{"name": "Zürich"}'.encode("latin-1"), "application/json; charset=latin-1"),
]


async def _endpoints(client: httpx.AsyncClient) -> dict[str, tuple[str, str, Body, list[str]]]:
    """Each write endpoint with a body it accepts, to spoil one field at a time (the
    listed optional fields too, which the valid body leaves out)."""
    main = await main_location(client)
    store = await create_location(client)
    lots = await create_item(client, tracking="lot")
    await receive(client, lots["id"], "1000000", unit_cost="1", lot_code="L1")
    target = await create_item(client)
    item = {
        "sku": unique("NASTY"),
        "name": "n",
        "uom": "pcs",
        "tracking": "none",
        "standard_cost": "1",
        "lead_time_days": 1,
    }
    stock = {
        "item_id": lots["id"],
        "location_id": main["id"],
        "lot_code": "L1",
        "reference": "REF-1",
    }
    return {
        "items": ("POST", "/v1/items", item, []),
        "items-patch": ("PATCH", f"/v1/items/{target['id']}", {**item, "sku": unique("N")}, []),
        "locations": ("POST", "/v1/locations", {"code": unique("NASTY"), "name": "n"}, []),
        "receipts": ("POST", "/v1/stock/receipts", {**stock, "quantity": "1", "unit_cost": "1",
                     "expiry_date": "2030-01-01"}, ["serials"]),
        "adjustments": ("POST", "/v1/stock/adjustments", {**stock, "quantity_delta": "-1",
                        "reason": "count"}, ["expiry_date", "serials"]),
        "transfers": ("POST", "/v1/stock/transfers", {"item_id": lots["id"], "quantity": "1",
                      "from_location_id": main["id"], "to_location_id": store["id"],
                      "lot_code": "L1", "reference": "REF-1"}, ["serials"]),
    }  # fmt: skip


@pytest.mark.parametrize(
    "endpoint", ["items", "items-patch", "locations", "receipts", "adjustments", "transfers"]
)
async def test_no_input_gets_a_500_or_html(lenient: httpx.AsyncClient, endpoint: str) -> None:
    method, path, base, optional = (await _endpoints(lenient))[endpoint]
    if method == "POST":  # the unspoilt body is accepted, so every field is really reached
        first = await post_raw(lenient, path, json.dumps(base).encode(), method=method)
        assert first.status_code == 201, first.text
    failures = []
    for field in [*base, *optional]:
        for label, raw in [*NASTY_VALUES, *(NASTY_NUMBERS if field in NUMBER_FIELDS else [])]:
            response = await post_raw(lenient, path, raw_json(base, field, raw), method=method)
            if (wrong := no_500_no_html(response)) is not None:
                failures.append(f"{method} {path} {field}={label}: {wrong}")
    for label, content, content_type in RAW_BODIES:
        response = await post_raw(
            lenient, path, content, headers={"content-type": content_type}, method=method
        )
        if (wrong := no_500_no_html(response)) is not None:
            failures.append(f"{method} {path} body={label}: {wrong}")
    assert not failures, "\n".join(failures)


# What the service makes of the odd spellings of a quantity. Expected: the exact decimal
# it must be read as, or None for 422. A set means "either of these", never anything else.
QUANTITY_SPELLINGS = [
    ('"5"', "5"),
    ("5", "5"),
    ("5.0", "5"),
    ('" 5 "', "5"),
    ('"+5"', "5"),
    ('"1e3"', {"1000", None}),  # parse_decimal reads exponents exactly: 1000
    ('"1E3"', {"1000", None}),
    ('"1.5e2"', {"150", None}),
    ("1e3", "1000"),
    ('"1e-6"', {"0.000001", None}),
    ('"1e-7"', None),
    ("1e-7", None),
    ('"-0"', None),
    ("-0.0", None),
    ("0.1", "0.1"),
    ('"0.000001"', "0.000001"),
    ("0.000001", "0.000001"),
    ("12345678.123456", "12345678.123456"),
    ('"999999999.999999"', "999999999.999999"),
    ("999999999.999999", "999999999.999999"),
    ('"0x10"', None),
    ('"NaN"', None),
    ('"-Infinity"', None),
    ('"1_000"', {"1000", None}),
    ('"５"', {"5", None}),
    # JSON numbers with more than six places, even where a float would round them away.
    ("1.0000000000000001", None),
    ("0.30000000000000001", None),
    ("2.00000000000000000001", None),
]


@pytest.mark.parametrize(
    ("raw", "expected"), QUANTITY_SPELLINGS, ids=[raw for raw, _ in QUANTITY_SPELLINGS]
)
async def test_quantity_spellings_are_read_exactly_or_rejected(
    lenient: httpx.AsyncClient,
    stocked_item_id: str,
    raw: str,
    expected: str | set[str | None] | None,
) -> None:
    allowed = expected if isinstance(expected, set) else {expected}
    before = await totals(lenient, stocked_item_id)
    body = raw_json({"item_id": stocked_item_id, "unit_cost": "0"}, "quantity", raw)
    response = await post_raw(lenient, "/v1/stock/receipts", body)
    if response.status_code == 201:
        got = response.json()["movements"][0]["quantity"]
        assert got in allowed, f"{raw} was read as {got}, expected {allowed}"
        on_hand = (await totals(lenient, stocked_item_id))["on_hand"]
        assert Decimal(on_hand) == Decimal(before["on_hand"]) + Decimal(got)
    else:
        assert None in allowed, f"{raw}: {response.status_code} {response.text}"
        validation_error(response, "quantity")
        assert await totals(lenient, stocked_item_id) == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('"-0"', "0"), ("-0.0", "0"), ('"1e3"', "1000"), ('" 2.50 "', "2.5"), ("0", "0")],
)
async def test_standard_cost_spellings(lenient: httpx.AsyncClient, raw: str, expected: str) -> None:
    body = raw_json({"sku": unique("COST"), "name": "n"}, "standard_cost", raw)
    created = ok(await post_raw(lenient, "/v1/items", body), 201)
    assert created["standard_cost"] == expected


# ------------------------------------------------------- 3. decimals are exact strings

DECIMAL_KEYS = {
    "quantity",
    "unit_cost",
    "value",
    "on_hand",
    "reserved",
    "available",
    "incoming",
    "average_cost",
    "standard_cost",
    "required",
    "shortage",
}


def assert_decimals_are_strings(document: Any, where: str = "$") -> int:
    """Every decimal field anywhere in ``document`` is a canonical decimal string
    (or null for an optional cost); returns how many were checked."""
    seen = 0
    if isinstance(document, dict):
        for key, value in document.items():
            if key in DECIMAL_KEYS:
                if value is None and key in ("average_cost", "standard_cost"):
                    continue
                assert isinstance(value, str), f"{where}.{key} = {value!r} is not a string"
                parsed = Decimal(value)
                assert parsed.is_finite() and "e" not in value.lower(), f"{where}.{key}={value}"
                seen += 1
            else:
                seen += assert_decimals_are_strings(value, f"{where}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            seen += assert_decimals_are_strings(value, f"{where}[{index}]")
    return seen


async def test_decimals_are_exact_json_strings_everywhere(client: httpx.AsyncClient) -> None:
    item = await create_item(client, standard_cost="0.000001")
    assert item["standard_cost"] == "0.000001"
    assert '"standard_cost":"0.000001"' in (await client.get(f"/v1/items/{item['id']}")).text

    small = await receive(client, item["id"], "0.000001", unit_cost="999999.999999")
    large = await receive(client, item["id"], "999999.999999", unit_cost="0.000001")
    numbers = await receive(client, item["id"], 999999.999999, unit_cost=0.000001)
    assert [
        (m["quantity"], m["unit_cost"]) for op in (small, large, numbers) for m in op["movements"]
    ] == [
        ("0.000001", "999999.999999"),
        ("999999.999999", "0.000001"),
        ("999999.999999", "0.000001"),
    ]

    ledger = await movements(client, item_id=item["id"])
    assert [m["quantity"] for m in ledger] == ["0.000001", "999999.999999", "999999.999999"]
    assert [m["unit_cost"] for m in ledger] == ["999999.999999", "0.000001", "0.000001"]
    for m in ledger:  # value is quantity × unit cost, rounded to six places
        exact = Decimal(m["quantity"]) * Decimal(m["unit_cost"])
        assert Decimal(m["value"]) == exact.quantize(Decimal("0.000001"))

    stock = await totals(client, item["id"])
    assert stock["on_hand"] == "1999999.999999"  # 0.000001 + 2 × 999999.999999
    assert stock["available"] == "1999999.999999"
    assert stock["reserved"] == "0"
    assert Decimal(stock["value"]) == sum(Decimal(m["value"]) for m in ledger)

    ok(await client.post(
        "/v1/stock/adjustments",
        json={"item_id": item["id"], "quantity_delta": "-999999.999999", "reason": "count"},
    ), 201)  # fmt: skip
    assert (await totals(client, item["id"]))["on_hand"] == "1000000"

    short = await client.post(
        "/v1/stock/adjustments",
        json={"item_id": item["id"], "quantity_delta": "-1000000.000001", "reason": "count"},
    )
    body = problem(short, 409, "insufficient_stock")
    assert body["shortages"][0]["available"] == "1000000"
    assert body["shortages"][0]["shortage"] == "0.000001"

    documents = [
        ok(await client.get(f"/v1/items/{item['id']}")),
        small,
        await totals(client, item["id"]),
        ok(await client.get("/v1/stock", params={"item_id": item["id"]})),
        ok(await client.get("/v1/stock/movements", params={"item_id": item["id"]})),
        body,
    ]
    assert sum(assert_decimals_are_strings(d) for d in documents) >= 25
    raw_text = (await client.get(f"/v1/items/{item['id']}/stock")).text
    assert '"on_hand":"1000000"' in raw_text.replace(" ", "")


async def test_unicode_text_round_trips_exactly(client: httpx.AsyncClient) -> None:
    name = "Zürich ☃ ﷽ \u202e\u200b " + "😀" * 150  # 4-byte characters included
    assert len(name) <= 200
    item = await create_item(client, name=name)
    assert item["name"] == name
    assert ok(await client.get(f"/v1/items/{item['id']}"))["name"] == name
    op = await receive(client, item["id"], 1, reference="Bestellung Nr. 7 — größer 😀")
    assert op["movements"][0]["reference"] == "Bestellung Nr. 7 — größer 😀"


async def test_timestamps_are_rfc3339_utc(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    op = await receive(client, item["id"], 1)
    for stamp in (item["created_at"], item["updated_at"], op["movements"][0]["created_at"]):
        parsed = datetime.fromisoformat(stamp)
        assert parsed.utcoffset() == timedelta(0), stamp
        assert stamp.endswith(("Z", "+00:00")), stamp


# ----------------------------------------------------------------- 4. X-Request-ID

REQUESTS = [
    pytest.param("GET", "/healthz", None, 200, id="ok"),
    pytest.param("GET", "/v1/items/{uuid}", None, 404, id="not-found"),
    pytest.param("GET", "/v1/nope", None, 404, id="unknown-route"),
    pytest.param("POST", "/v1/items", {"sku": ""}, 422, id="validation-error"),
    pytest.param("DELETE", "/v1/items", None, 405, id="wrong-method"),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), REQUESTS)
async def test_request_id_is_echoed_or_generated(
    client: httpx.AsyncClient, method: str, path: str, body: Body | None, status: int
) -> None:
    url = path.replace("{uuid}", str(uuid.uuid4()))
    sent = f"req-{uuid.uuid4().hex}"
    echoed = await client.request(method, url, json=body, headers={"X-Request-ID": sent})
    assert echoed.status_code == status
    assert echoed.headers["x-request-id"] == sent

    first = await client.request(method, url, json=body)
    second = await client.request(method, url, json=body)
    assert first.status_code == second.status_code == status
    generated = [first.headers.get("x-request-id"), second.headers.get("x-request-id")]
    assert all(generated), generated
    assert generated[0] != generated[1]


# ---------------------------------------------------------------------- 5. health


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.headers["content-type"].startswith("application/json")
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


# ------------------------------------------------------------------ 6. pagination


async def walk_pages(
    client: httpx.AsyncClient,
    path: str,
    limit: int,
    between: Callable[[], Awaitable[None]] | None = None,
    **params: Any,
) -> list[list[Body]]:
    """Every page of a cursor list, checking each page's shape on the way."""
    pages: list[list[Body]] = []
    cursor = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        page = ok(await client.get(path, params=query))
        assert set(page) == {"data", "next_cursor"}, page.keys()
        assert len(page["data"]) <= limit
        pages.append(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor
        assert len(pages) < 1000, "the cursor never ends"
        if between is not None:
            await between()


async def create_locations(client: httpx.AsyncClient, prefix: str, count: int) -> set[str]:
    ids = set()
    for n in range(count):
        body = {"code": f"{prefix}-{n:03d}", "name": f"Bin {n}"}
        ids.add(ok(await client.post("/v1/locations", json=body), 201)["id"])
    return ids


def mine(pages: list[list[Body]], prefix: str) -> list[str]:
    return [row["id"] for page in pages for row in page if row["code"].startswith(prefix + "-")]


async def test_cursor_walk_yields_every_row_once(client: httpx.AsyncClient) -> None:
    prefix = unique("PAGE")
    created = await create_locations(client, prefix, 120)

    pages = await walk_pages(client, "/v1/locations", limit=50)
    ids = mine(pages, prefix)
    assert sorted(ids) == sorted(created)  # each exactly once
    everything = [row["id"] for page in pages for row in page]
    assert len(everything) == len(set(everything))
    assert len(pages) >= 3
    assert all(len(page) == 50 for page in pages[:-1])

    # The same walk while another client inserts 60 more.
    other = unique("PAGE")
    inserted: list[str] = []
    progress: list[int] = []

    landed = asyncio.Condition()

    async def inserter() -> None:
        for n in range(60):
            body = {"code": f"{other}-{n:03d}", "name": f"New {n}"}
            inserted.append(ok(await client.post("/v1/locations", json=body), 201)["id"])
            async with landed:
                landed.notify_all()

    async def some_inserts_land() -> None:
        """Between two pages, wait until the inserter has added 15 more rows (or is done)."""
        target = min(len(inserted) + 15, 60)
        async with landed:
            await asyncio.wait_for(landed.wait_for(lambda: len(inserted) >= target), 30)

    async def walker() -> list[list[Body]]:
        progress.append(len(inserted))
        walked = await walk_pages(client, "/v1/locations", limit=50, between=some_inserts_land)
        progress.append(len(inserted))
        return walked

    walked, _ = await asyncio.gather(walker(), inserter())
    assert progress[0] < progress[1], f"the walk did not overlap the inserts: {progress}"
    assert sorted(mine(walked, prefix)) == sorted(created)
    everything = [row["id"] for page in walked for row in page]
    assert len(everything) == len(set(everything)), "a row was returned twice"
    assert set(mine(walked, other)) <= set(inserted)

    final = await walk_pages(client, "/v1/locations", limit=50)
    assert sorted(mine(final, other)) == sorted(inserted)
    assert sorted(mine(final, prefix)) == sorted(created)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"limit": 10**30}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "é"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "x" * 500}, "cursor"),
    ],
)
async def test_bad_limit_or_cursor_is_422(
    client: httpx.AsyncClient, params: Body, name: str
) -> None:
    for path in ("/v1/locations", "/v1/items", "/v1/stock", "/v1/stock/movements"):
        response = await client.get(path, params=params)
        body = problem(response, 422, "validation_error")
        assert any(error["loc"] == ["query", name] for error in body["errors"]), (path, body)


async def test_limit_bounds_are_accepted(client: httpx.AsyncClient) -> None:
    for limit in (1, 500):
        page = ok(await client.get("/v1/locations", params={"limit": limit}))
        assert 1 <= len(page["data"]) <= limit  # MAIN always exists
    assert len(ok(await client.get("/v1/locations"))["data"]) <= 50  # default limit


async def test_items_updated_after(client: httpx.AsyncClient) -> None:
    marker = unique("SYNC").lower()
    first = await create_item(client, name=f"{marker} first")
    await asyncio.sleep(0.01)
    second = await create_item(client, name=f"{marker} second")

    async def changed_after(stamp: str) -> list[str]:
        rows = await walk(client, "/v1/items", q=marker, updated_after=stamp, limit=500)
        return [row["id"] for row in rows]

    assert await changed_after(first["updated_at"]) == [second["id"]]
    assert await changed_after(second["updated_at"]) == []
    before_both = datetime.fromisoformat(first["updated_at"]) - timedelta(seconds=1)
    assert await changed_after(before_both.isoformat()) == [first["id"], second["id"]]
    # The same instant written in another zone means the same.
    plus_two = datetime.fromisoformat(first["updated_at"]).astimezone(timezone(timedelta(hours=2)))
    assert await changed_after(plus_two.isoformat()) == [second["id"]]
    assert await changed_after(datetime(2100, 1, 1, tzinfo=UTC).isoformat()) == []

    await asyncio.sleep(0.01)
    renamed = ok(await client.patch(f"/v1/items/{first['id']}", json={"name": f"{marker} 1st"}))
    stamp = datetime.fromisoformat
    assert stamp(renamed["updated_at"]) > stamp(second["updated_at"])
    assert await changed_after(second["updated_at"]) == [first["id"]]


async def test_updated_after_needs_an_rfc3339_time_with_zone(client: httpx.AsyncClient) -> None:
    for stamp in ("2026-01-31T12:00:00", "2026-01-31 12:00:00", "2026-01-31", "yesterday", ""):
        response = await client.get("/v1/items", params={"updated_after": stamp})
        body = problem(response, 422, "validation_error")
        errors = body["errors"]
        assert any(error["loc"] == ["query", "updated_after"] for error in errors), (stamp, body)
