"""Query parameters at the edges: each of these once answered 500 (found while building
`make fuzz`). They are valid or invalid input like any other, so 200 or 422, never 500."""

import httpx
import pytest

from tests.helpers import create_item, ok, problem

# NUL fits a URL (`%00`) but not a PostgreSQL text value.
NUL_QUERIES = [
    "/v1/items?q=a%00b",
    "/v1/items?sku=%00",
    "/v1/locations?code=MAIN%00",
    "/v1/production-orders?reference=SHOP%001",
]


@pytest.mark.parametrize("url", NUL_QUERIES)
async def test_nul_in_a_query_parameter_is_refused(client: httpx.AsyncClient, url: str) -> None:
    body = problem(await client.get(url), 422, "validation_error")
    name = url.split("?")[1].split("=")[0]
    assert body["errors"] == [{"loc": ["query", name], "msg": "must not contain NUL characters"}]


async def test_nul_in_a_parameter_the_route_does_not_read_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    ok(await client.get("/healthz?x=%00"))
    ok(await client.get("/v1/items?unknown=%00"))


# Instants whose UTC form falls outside the years 1–9999 that dates can hold.
OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/items", "updated_after"),
        ("/v1/production-orders", "updated_after"),
        ("/v1/stock/movements", "since"),
    ],
)
async def test_a_timestamp_beyond_the_calendar_in_utc_is_refused(
    client: httpx.AsyncClient, path: str, parameter: str, instant: str
) -> None:
    response = await client.get(path, params={parameter: instant})
    body = problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", parameter]


async def test_timestamps_at_the_edges_of_the_calendar_in_utc_still_work(
    client: httpx.AsyncClient,
) -> None:
    await create_item(client)
    everything = ok(await client.get("/v1/items", params={"updated_after": "0001-01-01T00:00:00Z"}))
    assert everything["data"]
    nothing = ok(await client.get("/v1/items", params={"updated_after": "9999-12-31T23:59:59Z"}))
    assert nothing["data"] == []


async def test_production_report_up_to_the_last_day_there_is(client: httpx.AsyncClient) -> None:
    report = ok(
        await client.get(
            "/v1/reports/production", params={"from": "0001-01-01", "to": "9999-12-31"}
        )
    )
    everything = ok(await client.get("/v1/reports/production"))
    assert report["orders_completed"] == everything["orders_completed"]
