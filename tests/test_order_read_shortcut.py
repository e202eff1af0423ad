"""``GET /v1/production-orders/{id}`` through ``orders/shortcut.py``: the route's answer,
byte for byte, for what it answers; everything else goes on to the route."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from prodorder_api import metrics
from prodorder_api.auth import service as keys
from prodorder_api.orders import read
from tests.helpers import create_item, ok, problem, receive, unique
from tests.order_helpers import act, create_bom, create_order

pytestmark = pytest.mark.postgres_only

ORDERS = "/v1/production-orders"
TEMPLATE = "/v1/production-orders/{order_id}"


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ids of the GETs the route answered (the shortcut answers without it)."""
    seen: list[str] = []
    route_read = read.order

    async def counted(session: Any, order_id: str) -> Any:
        seen.append(order_id)
        return await route_read(session, order_id)

    monkeypatch.setattr(read, "order", counted)
    yield seen


async def released_order(client: httpx.AsyncClient) -> dict[str, Any]:
    components = [await create_item(client) for _ in range(3)]
    for component in components:
        await receive(client, component["id"], 10, unit_cost="1.5")
    product = await create_item(client)
    await create_bom(client, product["id"], [(c["id"], 2) for c in components])
    order = await create_order(client, product["id"], 2, reference='say "hi"\n')
    return ok(await act(client, order, "release"))  # type: ignore[no-any-return]


def without_request_id(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.items() if k != "x-request-id"]


def served(template: str) -> float:
    return metrics.REQUESTS.labels("GET", template, "200")._value.get()  # type: ignore[no-any-return]


async def test_the_shortcut_sends_what_the_route_sends(
    client: httpx.AsyncClient, routed: list[str]
) -> None:
    order = await released_order(client)
    counted_before = served(TEMPLATE)
    short = await client.get(f"{ORDERS}/{order['id']}")
    assert routed == []
    # A query string is the route's: FastAPI ignores the parameter.
    long = await client.get(f"{ORDERS}/{order['id']}", params={"via": "route"})
    assert routed == [order["id"]]
    assert short.status_code == long.status_code == 200
    assert short.content == long.content
    assert without_request_id(short) == without_request_id(long)
    assert (
        short.headers["x-request-id"]
        and short.headers["x-request-id"] != long.headers["x-request-id"]
    )
    assert short.json() == order
    assert short.headers["etag"] == f'"{order["version"]}"'
    # Both counted under the route's template, not the raw path.
    assert served(TEMPLATE) == counted_before + 2


async def test_after_each_change_the_shortcut_sends_the_new_document(
    client: httpx.AsyncClient, routed: list[str]
) -> None:
    order = await released_order(client)
    path = f"{ORDERS}/{order['id']}"
    assert (await client.get(path)).json() == order  # now kept by the process
    for action in ("start", "complete"):
        answer = await act(client, order, action)
        assert answer.status_code == 200, answer.text
        read_back = await client.get(path)
        assert read_back.content == answer.content, action
        assert read_back.headers["etag"] == answer.headers["etag"]
        assert (await client.get(path)).content == answer.content  # and again, kept
    assert routed == []


async def test_what_the_shortcut_cannot_answer_goes_to_the_route(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    routed: list[str],
) -> None:
    order = await released_order(client)
    path = f"{ORDERS}/{order['id']}"

    problem(await anon_client.get(path), 401, "unauthorized")
    unknown = {"Authorization": "Bearer po_no_such_key"}
    problem(await anon_client.get(path, headers=unknown), 401, "unauthorized")
    problem(
        await anon_client.get(path, headers={"Authorization": "Basic abc"}), 401, "unauthorized"
    )
    for order_id in ("not-an-id", "01234567-89ab-7def-8123-456789abcdef"):
        problem(await client.get(f"{ORDERS}/{order_id}"), 404, "not_found")
    # The route refused the keys before it read anything; it read the two ids.
    assert len(routed) == 2

    # A key this process has not looked up yet: the route looks it up, then the
    # shortcut knows it.
    async with app.state.sessionmaker() as session, session.begin():
        key, token = await keys.create(session, unique("reader"), "read")
    fresh = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get(path, headers=fresh)).json() == order
    assert len(routed) == 3
    assert (await anon_client.get(path, headers=fresh)).json() == order
    assert len(routed) == 3

    async with app.state.sessionmaker() as session, session.begin():
        await keys.revoke(session, str(key.id))
    problem(await anon_client.get(path, headers=fresh), 401, "unauthorized")


async def test_an_order_changed_by_another_process_is_rendered_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The kept document is only sent while PostgreSQL still has its version."""
    order = await released_order(client)
    path = f"{ORDERS}/{order['id']}"
    kept = await client.get(path)
    engine = app.state.engine
    assert read._documents[engine].get(uuid.UUID(order["id"])) == (
        order["version"],
        kept.content,
    )
    # Another process completed nothing but changed the order: a new version.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE production_orders SET notes = 'elsewhere', version = version + 1 "
                "WHERE id = :id"
            ),
            {"id": uuid.UUID(order["id"])},
        )
    again = ok(await client.get(path))
    assert again["notes"] == "elsewhere"
    assert again["version"] == order["version"] + 1


async def test_kept_documents_stay_within_their_bytes(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The least recently read go first; a document larger than allowed is not kept."""
    orders = [await released_order(client) for _ in range(3)]
    size = len((await client.get(f"{ORDERS}/{orders[0]['id']}")).content)
    kept = read._Kept()  # none of the other tests' documents
    monkeypatch.setitem(read._documents, app.state.engine, kept)
    monkeypatch.setattr(read, "KEPT_BYTES", 2 * size + size // 2)
    for order in orders:
        assert (await client.get(f"{ORDERS}/{order['id']}")).json() == order
    ids = [uuid.UUID(order["id"]) for order in orders]
    assert kept.size <= read.KEPT_BYTES
    assert kept.get(ids[0]) is None  # read longest ago: dropped for the third
    assert kept.get(ids[1]) is not None and kept.get(ids[2]) is not None
    assert kept.size == sum(len(body) for _, body in kept.documents.values())

    monkeypatch.setattr(read, "KEPT_LARGEST", size - 1)
    answer = await act(client, orders[1], "start")
    assert (await client.get(f"{ORDERS}/{orders[1]['id']}")).content == answer.content
    assert kept.get(ids[1]) is None
