"""Input that used to reach a 500 (SPEC §11) gets an answer: a 422 ``validation_error``
naming what was wrong, having changed nothing, or where the input has a sound meaning
(``to=9999-12-31``: no end) that meaning.

Decimal exponents beyond what the decimal context holds (``1e1000000``), dates whose
next day does not exist (``9999-12-31``), and webhook URLs: IPv6 forms that carry an
IPv4 address are judged by that address, credentials are refused, and so are host
names DNS cannot hold. The main test app refuses private webhook targets, as
production does; ``lenient`` is an app that allows them.
"""

import ipaddress
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from prodorder_api.app import create_app
from prodorder_api.money import parse_decimal
from prodorder_api.settings import Settings
from prodorder_api.webhooks import urls
from tests.conftest import ADMIN_TOKEN, AUTH
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


@pytest.fixture(scope="module")
async def lenient_app(database_url: str) -> AsyncIterator[FastAPI]:
    """An app that allows private webhook targets, as development and tests may."""
    application = create_app(
        Settings(
            DATABASE_URL=database_url,
            PRODORDER_BOOTSTRAP_KEY=ADMIN_TOKEN,
            PRODORDER_DISPATCHER=False,
            PRODORDER_WEBHOOKS_ALLOW_PRIVATE=True,
        )
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def lenient(lenient_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=lenient_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as http:
        yield http


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


# --- webhook URLs ---------------------------------------------------------------------

# IPv6 forms that carry an IPv4 address, each carrying a loopback, private or metadata
# one; and the IPv6 prefixes that are private whatever they hold.
CARRYING_PRIVATE = [
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",  # IPv4-compatible, the metadata address
    "::ffff:10.1.2.3",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:0:7f00:1",  # IPv4-translated, 127.0.0.1
    "::ffff:0:192.168.0.1",
    "64:ff9b::7f00:1",  # NAT64, 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64, the metadata address
    "64:ff9b::10.0.0.1",
    "2002:7f00:1::",  # 6to4, 127.0.0.1 in bits 16–48
    "2002:a9fe:a9fe::1",
    "2002:c0a8:1::",  # 6to4, 192.168.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: public server, client 192.0.2.45
    "2001:0:a00:1::f7f7:f7f7",  # Teredo: server 10.0.0.1, client 8.8.8.8
    "2001:0:808:808::80ff:fffe",  # Teredo: server 8.8.8.8, client 127.0.0.1
]
NOT_PUBLIC_V6 = ["64:ff9b:1::7f00:1", "64:ff9b:1::808:808", "fec0::1", "fec0:1::a"]
# The same forms carrying public addresses are judged by those: public.
CARRYING_PUBLIC = [
    "::ffff:93.184.215.14",
    "::ffff:0:5db8:d70e",
    "64:ff9b::93.184.215.14",
    "2002:5db8:d70e::1",
    "2001:0:808:808::f7f7:f7f7",  # Teredo: server and client 8.8.8.8
]
BAD_NAMES = [
    "a..com",
    ".example.com",
    "example.com..",
    "a" * 64 + ".com",
    ("a" * 63 + ".") * 4 + "com",  # 259 characters
    "exa_mple-.com",
    "-example.com",
    "xn--.com",
    "ex%61mple.com",
    "\u00fc" * 64 + ".de",  # IDNA cannot encode a label that long
    "\u2603\u200d.com",  # a joiner IDNA 2008 refuses here
    "127.1",  # IPv4 in spellings resolvers take, but that are no host name
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
]
CREDENTIALS = [
    "https://user:pass@example.com/h",
    "https://user@example.com/h",
    "https://:secret@example.com/h",
    "https://@example.com/h",
    "https://example.com\\@10.0.0.1/h",
]


@pytest.mark.parametrize("address", CARRYING_PRIVATE + NOT_PUBLIC_V6)
def test_ipv6_forms_of_private_addresses_are_not_public(address: str) -> None:
    reason = urls.why_not_public(ipaddress.ip_address(address))
    assert reason, address
    with pytest.raises(urls.UnsafeAddress):
        urls.check_syntax(f"https://[{address}]/h", allow_private=False)
    with pytest.raises(urls.UnsafeAddress, match="resolves to"):
        urls.check_addresses("hooks.example.com", [ipaddress.ip_address(address)])
    assert urls.check_syntax(f"https://[{address}]/h", allow_private=True)[0] == address


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::127.0.0.1", "127.0.0.1"),
        ("::ffff:0:7f00:1", "127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
    ],
)
def test_the_reason_names_the_ipv4_address_carried(address: str, carried: str) -> None:
    reason = urls.why_not_public(ipaddress.ip_address(address))
    assert reason and carried in reason


@pytest.mark.parametrize("address", CARRYING_PUBLIC)
def test_ipv6_forms_of_public_addresses_are_public(address: str) -> None:
    assert urls.why_not_public(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("name", BAD_NAMES)
def test_host_names_dns_cannot_hold_are_refused_without_dns(name: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(urls.UnsafeAddress, match="host name"):
            urls.check_syntax(f"https://{name}/h", allow_private)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Example.COM./h", "example.com"),
        ("https://b\u00fccher.example/h", "xn--bcher-kva.example"),
        ("https://_hooks.example.com:8443/h", "_hooks.example.com"),
        ("https://" + "a" * 63 + ".example.com/h", "a" * 63 + ".example.com"),
    ],
)
def test_valid_host_names_are_checked_as_dns_spells_them(url: str, host: str) -> None:
    assert urls.check_syntax(url, allow_private=False)[0] == host


@pytest.mark.parametrize("url", CREDENTIALS)
def test_credentials_are_refused_even_with_private_targets_allowed(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(urls.UnsafeAddress, match="credentials"):
            urls.check_syntax(url, allow_private)


async def test_a_delivery_to_a_name_resolving_to_an_ipv6_form_of_loopback_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At delivery, the resolved addresses go through the same judge as literal hosts."""

    async def resolve(host: str, port: int) -> list[urls.IPAddress]:
        return [ipaddress.ip_address("::ffff:0:7f00:1")]

    monkeypatch.setattr(urls, "resolve", resolve)
    async with httpx.AsyncClient(transport=urls.GuardedTransport(allow_private=False)) as http:
        with pytest.raises(urls.UnsafeAddress, match=r"127\.0\.0\.1"):
            await http.post("https://hooks.example.com/h", content=b"{}")


def webhook(url: str) -> dict[str, Any]:
    return {"url": url, "events": ["*"]}


@pytest.mark.parametrize("address", CARRYING_PRIVATE + NOT_PUBLIC_V6)
async def test_a_webhook_to_an_ipv6_form_of_a_private_address_is_refused(
    client: httpx.AsyncClient, address: str
) -> None:
    response = await client.post("/v1/webhooks", json=webhook(f"https://[{address}]/h"))
    refused(response, ["body", "url"])


@pytest.mark.parametrize("url", CREDENTIALS + [f"https://{name}/h" for name in BAD_NAMES])
async def test_a_webhook_with_credentials_or_a_bad_host_name_is_refused(
    client: httpx.AsyncClient, lenient: httpx.AsyncClient, url: str
) -> None:
    for http in (client, lenient):
        refused(await http.post("/v1/webhooks", json=webhook(url)), ["body", "url"])


async def test_changing_a_webhooks_url_to_a_refused_one_keeps_the_old_one(
    client: httpx.AsyncClient, lenient: httpx.AsyncClient
) -> None:
    url = "https://[2002:5db8:d70e::1]/h"  # 6to4 of a public address: public
    created = ok(await client.post("/v1/webhooks", json=webhook(url)), 201)
    path = f"/v1/webhooks/{created['id']}"
    try:
        for url in (
            "https://[::127.0.0.1]/h",
            "https://[::ffff:0:7f00:1]/h",
            "https://[64:ff9b::a9fe:a9fe]/h",
            "https://[2002:7f00:1::]/h",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h",
            "https://[fec0::1]/h",
            "https://user:pass@example.com/h",
            "https://a..com/h",
        ):
            refused(await client.patch(path, json={"url": url}), ["body", "url"])
        refused(await lenient.patch(path, json={"url": "https://u@x.com/"}), ["body", "url"])
        shown = ok(await client.get(path))
        assert shown["url"] == created["url"] and shown["updated_at"] == created["updated_at"]
    finally:
        assert (await client.delete(path)).status_code == 204


async def test_a_number_beyond_what_decimal_can_hold_is_malformed_json(
    client: httpx.AsyncClient,
) -> None:
    item = await create_item(client)
    body = f'{{"item_id": "{item["id"]}", "quantity": 1E+99999999999999999999}}'
    response = await client.post("/v1/stock/receipts", content=body, headers=JSON)
    assert problem(response, 422, "validation_error")["errors"][0]["msg"].startswith(
        "malformed JSON"
    )
    assert await movements(client, item_id=item["id"]) == []


async def test_a_form_body_is_told_to_be_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/items",
        content=b"sku=A&name=B",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    body = problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["header", "content-type"]
    assert "Content-Type: application/json" in body["errors"][0]["msg"]
    # Without any content type the body is read as JSON, as before.
    bare = await client.post("/v1/items", content=b'{"sku": "BARE-1", "name": "x"', headers={})
    error = problem(bare, 422, "validation_error")["errors"][0]
    assert error["loc"] == ["body"]
    assert error["msg"].startswith("malformed JSON: Expecting ',' delimiter at line 1, column 30")
