"""Input that used to reach a 500 (SPEC §11): each is a 422 ``validation_error`` naming
what was wrong, and changes nothing.

Decimal exponents beyond what the decimal context holds (``1e1000000``), dates whose
next day does not exist (``9999-12-31``), and webhook URLs: IPv6 forms that carry an
IPv4 address are judged by that address, credentials are refused, and so are host
names DNS cannot hold. The main test app refuses private webhook targets, as
production does.
"""

from decimal import Decimal
from typing import Any

import httpx
import pytest

from prodorder_api.money import parse_decimal
from tests.helpers import create_item, movements, ok, problem, receive, totals
from tests.order_helpers import act, create_bom, create_order

JSON = {"content-type": "application/json"}

# As the client writes them: JSON numbers and strings beyond any quantity or amount.
OUT_OF_RANGE = [
    "1e1000000",
    "-1e1000000",
    "1e-1000000",
    "1E+999999",
    '"1e1000000"',
    '"1E+999999999"',
    '"Infinity"',
    '"-Infinity"',
    '"NaN"',
    '"sNaN"',
    "NaN",
    "Infinity",
    "-Infinity",
]


def refused(response: httpx.Response, loc: list[str]) -> dict[str, Any]:
    body = problem(response, 422, "validation_error")
    assert loc in [error["loc"] for error in body["errors"]], body
    return body


# --- decimals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [Decimal("1e1000000"), Decimal("-1e1000000"), Decimal("1e-1000000"), Decimal("sNaN")],
)
def test_parse_decimal_refuses_exponents_beyond_the_context(raw: Decimal) -> None:
    with pytest.raises(ValueError):
        parse_decimal(raw)


def test_parse_decimal_reads_zero_with_any_exponent_as_zero() -> None:
    assert str(parse_decimal(Decimal("0e1000000"))) == "0"
    assert str(parse_decimal(Decimal("-0E+9"))) == "0"


@pytest.mark.parametrize("raw", OUT_OF_RANGE)
async def test_a_receipt_of_an_out_of_range_quantity_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, raw: str
) -> None:
    item = await create_item(client)
    for field, body in (
        ("quantity", f'{{"item_id": "{item["id"]}", "quantity": {raw}}}'),
        ("unit_cost", f'{{"item_id": "{item["id"]}", "quantity": 1, "unit_cost": {raw}}}'),
    ):
        response = await client.post("/v1/stock/receipts", content=body, headers=JSON)
        refused(response, ["body", field])
    assert await movements(client, item_id=item["id"]) == []
    assert (await totals(client, item["id"]))["on_hand"] == "0"


@pytest.mark.parametrize("raw", OUT_OF_RANGE)
async def test_an_out_of_range_standard_cost_is_refused_and_the_item_keeps_its_own(
    client: httpx.AsyncClient, raw: str
) -> None:
    item = await create_item(client, standard_cost="2.5")
    body = f'{{"standard_cost": {raw}}}'
    refused(
        await client.patch(f"/v1/items/{item['id']}", content=body, headers=JSON),
        [
            "body",
            "standard_cost",
        ],
    )
    shown = ok(await client.get(f"/v1/items/{item['id']}"))
    assert shown["standard_cost"] == "2.5" and shown["updated_at"] == item["updated_at"]
    create = f'{{"sku": "X-{item["id"][:8]}", "name": "x", "standard_cost": {raw}}}'
    refused(await client.post("/v1/items", content=create, headers=JSON), ["body", "standard_cost"])


# --- dates ----------------------------------------------------------------------------


async def test_the_calendars_last_day_as_the_end_of_a_report_means_no_end(
    client: httpx.AsyncClient,
) -> None:
    salt = await create_item(client, name="Salt")
    bread = await create_item(client, name="Bread")
    await receive(client, salt["id"], 1, unit_cost="0.1")
    await create_bom(client, bread["id"], [(salt["id"], "0.01")])
    order = await create_order(client, bread["id"], 3)
    for action in ("release", "start", "complete"):
        ok(await act(client, order, action))

    for path, item in (("consumption", salt), ("production", bread)):
        url = f"/v1/reports/{path}"
        everything = ok(await client.get(url, params={"item_id": item["id"]}))
        for params in ({"to": "9999-12-31"}, {"from": "0001-01-01", "to": "9999-12-31"}):
            report = ok(await client.get(url, params={**params, "item_id": item["id"]}))
            assert report["to"] == "9999-12-31"
            assert {k: v for k, v in report.items() if k not in ("from", "to")} == {
                k: v for k, v in everything.items() if k not in ("from", "to")
            }
    consumed = ok(
        await client.get(
            "/v1/reports/consumption", params={"to": "9999-12-31", "item_id": salt["id"]}
        )
    )
    assert [row["quantity"] for row in consumed["data"]] == ["0.03"]
    produced = ok(
        await client.get(
            "/v1/reports/production", params={"to": "9999-12-31", "item_id": bread["id"]}
        )
    )
    assert produced["orders_completed"] == 1
    for path in ("consumption", "production", "capacity"):
        for params in (
            {"from": "9999-12-31"},
            {"from": "9999-12-31", "to": "9999-12-31"},
            {"from": "0001-01-01", "to": "0001-01-01"},
        ):
            ok(await client.get(f"/v1/reports/{path}", params=params))


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00Z"],
)
async def test_updated_after_at_either_end_of_the_calendar_is_answered(
    client: httpx.AsyncClient, when: str
) -> None:
    await create_item(client)
    for path in ("/v1/items", "/v1/production-orders"):
        page = ok(await client.get(path, params={"updated_after": when, "limit": 1}))
        if path == "/v1/items" or when.startswith("9999"):
            assert (page["data"] == []) == when.startswith("9999")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_updated_after_with_no_utc_form_is_refused(
    client: httpx.AsyncClient, when: str
) -> None:
    for path in ("/v1/items", "/v1/production-orders"):
        refused(await client.get(path, params={"updated_after": when}), ["query", "updated_after"])
