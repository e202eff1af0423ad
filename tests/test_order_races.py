"""Races between production orders against real server processes (SPEC §5, Concurrency).

The in-process app shares one event loop and one pool; these tests start
``prodorder-api serve --workers 4`` as a subprocess on the PostgreSQL test database
and fire requests at it at once, so the requests really run in parallel in four
processes and queue only on the database's row locks. Every race checks that no
stock is oversold or over-reserved, that nothing deadlocks or fails with a 500, and
that the ledger still sums to the balances.
"""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, AUTH
from tests.helpers import (
    adjust,
    assert_ledger_matches_balances,
    balances,
    create_item,
    movements,
    ok,
    problem,
    receive,
    totals,
    walk,
)
from tests.order_helpers import act, create_bom, create_order, requirement

pytestmark = pytest.mark.postgres_only

WORKERS = 4
SRC = Path(__file__).resolve().parents[1] / "src"
READY_WITHIN = 30.0  # seconds for the server to answer /readyz
TEST_BUDGET = 45.0  # seconds any one test may take ("well under 60 s")


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's stdout and stderr go (tracebacks of any 500 included)."""
    return tmp_path_factory.mktemp("race-server") / "server.log"


@pytest.fixture(scope="module")
def server(database_url: str, server_log: Path) -> Iterator[str]:
    """``prodorder-api serve --workers 4`` on a free port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # 4 workers × (5 + 5 overflow) = 40 connections at most, well inside
        # PostgreSQL's default max_connections of 100.
        "PRODORDER_DB_POOL_SIZE": "5",
        "LOG_LEVEL": "WARNING",
        "PRODORDER_BOOTSTRAP_KEY": ADMIN_TOKEN,
    }
    log = server_log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "prodorder_api.cli", "serve", "--workers", str(WORKERS)],
        cwd=SRC.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers go with it
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{_tail(server_log)}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no 200 from /readyz within {READY_WITHIN} s:\n{_tail(server_log)}")
            time.sleep(0.2)
        yield base_url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
async def live(server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real server, able to hold every request of a race open at once."""
    # No idle connection is kept: the server closes one idle for 5 s (uvicorn's keep-alive),
    # and a request sent on it just then fails with ReadError (seen on a loaded machine,
    # between two races). A new connection per request depends on no timing.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    timeout = httpx.Timeout(60.0, connect=10.0)
    async with httpx.AsyncClient(
        base_url=server, limits=limits, timeout=timeout, headers=AUTH
    ) as http:
        yield http


@pytest.fixture
def clean_server(server_log: Path) -> Iterator[None]:
    """After the test: nothing the server logged during it mentions an error or deadlock."""
    start = server_log.stat().st_size if server_log.exists() else 0
    began = time.monotonic()
    yield
    with server_log.open("rb") as f:
        f.seek(start)
        written = f.read().decode(errors="replace")
    bad = [
        line
        for line in written.splitlines()
        if any(
            word in line.lower()
            for word in ("deadlock", "traceback", "unhandled error", "error", "exception")
        )
    ]
    assert not bad, "the server logged errors during the test:\n" + "\n".join(bad[:40])
    took = time.monotonic() - began
    assert took < TEST_BUDGET, f"the test took {took:.1f} s"


# --------------------------------------------------------------------------- helpers


def _body(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path} → {response.status_code}: " + (
        response.text
    )


def assert_sane(responses: list[httpx.Response]) -> None:
    """No 500 (or any 5xx) and no deadlock, whatever else the race allows."""
    failures = [_body(r) for r in responses if r.status_code >= 500 or "deadlock" in r.text.lower()]
    assert not failures, "\n".join(failures)


async def race(requests: list[Awaitable[httpx.Response]]) -> tuple[list[httpx.Response], float]:
    """All at once; returns the responses in order and the wall time."""
    began = time.perf_counter()
    responses = await asyncio.gather(*requests)
    return list(responses), time.perf_counter() - began


async def get_order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/production-orders/{order_id}"))  # type: ignore[no-any-return]


def reserved_of(order: dict[str, Any], item_id: str) -> Decimal:
    return sum(
        (
            Decimal(r["reserved_quantity"])
            for r in order["requirements"]
            if r["component_item_id"] == item_id
        ),
        Decimal(0),
    )


async def ledger_sum(client: httpx.AsyncClient, item_id: str) -> tuple[Decimal, int]:
    """Σ movement quantities of an item, walking the ledger in small pages."""
    rows = await walk(client, "/v1/stock/movements", item_id=item_id, limit=7)
    assert len({r["id"] for r in rows}) == len(rows), "a movement was listed twice"
    return sum((Decimal(r["quantity"]) for r in rows), Decimal(0)), len(rows)


async def assert_balances_sane(client: httpx.AsyncClient, item_id: str) -> dict[str, Any]:
    """Per balance 0 <= reserved <= on_hand; the ledger sums to the balances."""
    for b in await balances(client, item_id=item_id):
        assert Decimal(b["on_hand"]) >= 0, b
        assert 0 <= Decimal(b["reserved"]) <= Decimal(b["on_hand"]), b
        assert Decimal(b["available"]) == Decimal(b["on_hand"]) - Decimal(b["reserved"]), b
    total = await totals(client, item_id)
    rows = await walk(client, "/v1/stock/movements", item_id=item_id, limit=7)
    summed = sum((Decimal(r["quantity"]) for r in rows), Decimal(0))
    assert summed == Decimal(total["on_hand"]), (summed, total)
    value = sum((Decimal(r["value"]) for r in rows), Decimal(0))
    by_type: dict[str, tuple[Decimal, Decimal]] = {}
    for r in rows:
        q, v = by_type.get(r["type"], (Decimal(0), Decimal(0)))
        by_type[r["type"]] = (q + Decimal(r["quantity"]), v + Decimal(r["value"]))
    assert Decimal(total["value"]) == value, (
        f"item value {total['value']} != Σ movement values {value}; totals {total}; "
        f"per type (quantity, value): {by_type}"
    )
    await assert_ledger_matches_balances(client, item_id)
    return total


def report(title: str, **figures: Any) -> None:
    """Shown with ``pytest -s``; kept short."""
    print(f"\n[race] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# --------------------------------------------------------------------------- 1. last units


@pytest.mark.usefixtures("clean_server")
async def test_24_releases_race_for_5_units(live: httpx.AsyncClient) -> None:
    scarce = await create_item(live, name="Scarce component")
    plenty = await create_item(live, name="Ample component")
    product = await create_item(live, name="Racing product")
    await create_bom(live, product["id"], [(scarce["id"], 1), (plenty["id"], 1)])
    await receive(live, scarce["id"], 5, unit_cost="3")
    await receive(live, plenty["id"], 100, unit_cost="1")
    orders = await asyncio.gather(*(create_order(live, product["id"], 1) for _ in range(24)))

    responses, took = await race([act(live, order, "release") for order in orders])

    assert_sane(responses)
    statuses = Counter(r.status_code for r in responses)
    report("24 releases for 5 units", statuses=dict(statuses), seconds=f"{took:.2f}")
    assert set(statuses) <= {200, 409}, [_body(r) for r in responses]
    assert statuses[200] == 5, [_body(r) for r in responses if r.status_code != 409]
    assert statuses[409] == 19
    won = [o for o, r in zip(orders, responses, strict=True) if r.status_code == 200]
    lost = [o for o, r in zip(orders, responses, strict=True) if r.status_code == 409]
    for response in responses:
        if response.status_code == 409:
            body = problem(response, 409, "insufficient_stock")
            short = [s for s in body["shortages"] if s["item_id"] == scarce["id"]]
            assert len(short) == 1, body
            assert Decimal(short[0]["shortage"]) > 0, body
            assert all(s["item_id"] != plenty["id"] for s in body["shortages"]), body

    c = await assert_balances_sane(live, scarce["id"])
    assert (c["on_hand"], c["reserved"], c["available"]) == ("5", "5", "0")
    p = await assert_balances_sane(live, plenty["id"])
    assert (p["on_hand"], p["reserved"], p["available"]) == ("100", "5", "95")

    winners = await asyncio.gather(*(get_order(live, o["id"]) for o in won))
    assert all(o["status"] == "released" for o in winners)
    assert sum(reserved_of(o, scarce["id"]) for o in winners) == 5
    assert all(requirement(o, scarce["id"])["reserved_quantity"] == "1" for o in winners)
    losers = await asyncio.gather(*(get_order(live, o["id"]) for o in lost))
    for order in losers:
        assert order["status"] == "planned", order
        assert all(r["reserved_quantity"] == "0" for r in order["requirements"]), order


# --------------------------------------------------------------------------- 2. backflush


async def _shared_component_setup(
    client: httpx.AsyncClient, orders: int, extra: int
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """``orders`` products, each made of 2 × one shared component S and 1 × a component of
    its own; half the own components sort before S (older ids), half after, and the BOM
    lines list S first for some products and last for others. Receives exactly 2 × orders
    + ``extra`` of S; creates, releases and starts one order of 1 per product."""
    before = [await create_item(client, name=f"Own part {i}") for i in range(orders // 2)]
    shared = await create_item(client, name="Shared component")
    after = [await create_item(client, name=f"Own part {i}") for i in range(orders // 2, orders)]
    own = before + after
    await receive(client, shared["id"], 2 * orders + extra, unit_cost="2.5")
    products = []
    for i, part in enumerate(own):
        await receive(client, part["id"], 3, unit_cost="1.25")
        product = await create_item(client, name=f"Product {i}")
        lines = [(shared["id"], 2), (part["id"], 1)]
        await create_bom(client, product["id"], lines if i % 2 else lines[::-1])
        products.append(product["id"])
    started = []
    for product_id in products:
        order = await create_order(client, product_id, 1)
        ok(await act(client, order, "release"))
        started.append(ok(await act(client, order, "start")))
    assert all(requirement(o, shared["id"])["reserved_quantity"] == "2" for o in started)
    total = await totals(client, shared["id"])
    assert (total["on_hand"], total["reserved"]) == (str(2 * orders + extra), str(2 * orders))
    return shared["id"], started, products


@pytest.mark.usefixtures("clean_server")
async def test_20_backflushes_of_one_shared_component(live: httpx.AsyncClient) -> None:
    extra = 3
    shared, orders, products = await _shared_component_setup(live, 20, extra=extra)

    outputs, took_outputs = await race([act(live, o, "outputs", {"quantity": 1}) for o in orders])
    assert_sane(outputs)
    assert [r.status_code for r in outputs] == [200] * 20, [
        _body(r) for r in outputs if r.status_code != 200
    ]
    s = await assert_balances_sane(live, shared)
    assert (s["on_hand"], s["reserved"], s["available"]) == (str(extra), "0", str(extra))

    completes, took_completes = await race([act(live, o, "complete") for o in orders])
    assert_sane(completes)
    assert [r.status_code for r in completes] == [200] * 20, [
        _body(r) for r in completes if r.status_code != 200
    ]
    report(
        "20 outputs then 20 completes on one shared component",
        outputs_seconds=f"{took_outputs:.2f}",
        completes_seconds=f"{took_completes:.2f}",
    )

    s = await assert_balances_sane(live, shared)
    assert (s["on_hand"], s["reserved"], s["available"]) == (str(extra), "0", str(extra))
    summed, rows = await ledger_sum(live, shared)
    assert (summed, rows) == (extra, 21)  # one receipt of 43, twenty consumptions of 2
    finished = await asyncio.gather(*(get_order(live, o["id"]) for o in orders))
    for order in finished:
        assert order["status"] == "completed", order
        assert order["produced_quantity"] == "1", order
        assert requirement(order, shared)["consumed_quantity"] == "2", order
        assert all(r["reserved_quantity"] == "0" for r in order["requirements"]), order
    for product_id in products:
        assert (await totals(live, product_id))["on_hand"] == "1"


@pytest.mark.usefixtures("clean_server")
async def test_completes_race_adjustments_that_take_only_free_stock(
    live: httpx.AsyncClient,
) -> None:
    extra, takers = 10, 16
    shared, orders, _ = await _shared_component_setup(live, 20, extra=extra)

    requests: list[Awaitable[httpx.Response]] = []
    completes_at, adjustments_at = [], []
    for i in range(max(len(orders), takers)):  # interleaved
        if i < len(orders):
            completes_at.append(len(requests))
            requests.append(act(live, orders[i], "complete"))
        if i < takers:
            adjustments_at.append(len(requests))
            requests.append(adjust(live, shared, -1))
    responses, took = await race(requests)

    assert_sane(responses)
    completes = [responses[i] for i in completes_at]
    adjustments = [responses[i] for i in adjustments_at]
    assert [r.status_code for r in completes] == [200] * len(orders), [
        _body(r) for r in completes if r.status_code != 200
    ]
    statuses = Counter(r.status_code for r in adjustments)
    report(
        "20 completes against 16 adjustments of −1 (10 free)",
        adjustments=dict(statuses),
        seconds=f"{took:.2f}",
    )
    assert set(statuses) <= {201, 409}, [_body(r) for r in adjustments]
    assert statuses[201] == extra, [_body(r) for r in adjustments]
    assert statuses[409] == takers - extra
    for response in adjustments:
        if response.status_code == 409:
            problem(response, 409, "insufficient_stock")

    s = await assert_balances_sane(live, shared)
    assert (s["on_hand"], s["reserved"], s["available"]) == ("0", "0", "0")
    moves = await walk(live, "/v1/stock/movements", item_id=shared, limit=7)
    kinds = Counter(m["type"] for m in moves)
    assert kinds == {"receipt": 1, "consumption": 20, "adjustment": extra}, kinds
    finished = await asyncio.gather(*(get_order(live, o["id"]) for o in orders))
    for order in finished:
        assert order["status"] == "completed", order
        assert requirement(order, shared)["consumed_quantity"] == "2", order


# --------------------------------------------------------------------------- 3. chaos


ACTIONS = ["release", "release_short", "unrelease", "reserve", "cancel"]
# Mostly what the order's status allows (so the locks are really taken), sometimes
# anything at all; several requests may hit the same order in one round.
LIKELY = {
    "planned": (["release", "release_short", "cancel"], [60, 30, 10]),
    "released": (["unrelease", "reserve", "cancel"], [50, 40, 10]),
}


@pytest.mark.usefixtures("clean_server")
async def test_consumptions_racing_on_one_order_all_count(live: httpx.AsyncClient) -> None:
    """Twelve consumptions of one component by one started order, all at once: each
    waits for the order's lock, and each must see the requirement as the one before it
    left it. Read in the statement that waited for the lock, the requirement was the
    one from before the wait (PostgreSQL reads joined rows in the statement's
    snapshot), and the absolute write that followed lost the others' consumption."""
    part = await create_item(live, name="Consumed part")
    product = await create_item(live, name="Consuming product")
    await create_bom(live, product["id"], [(part["id"], 1)])
    await receive(live, part["id"], 100, unit_cost="2")
    order = await create_order(live, product["id"], 50)
    ok(await act(live, order, "release"))
    ok(await act(live, order, "start"))
    line = {"lines": [{"item_id": part["id"], "quantity": "1"}]}

    responses, took = await race([act(live, order, "consumptions", line) for _ in range(12)])

    assert_sane(responses)
    assert [r.status_code for r in responses] == [200] * 12, [_body(r) for r in responses]
    report("12 consumptions of one order", seconds=f"{took:.2f}")
    final = await get_order(live, order["id"])
    assert requirement(final, part["id"])["consumed_quantity"] == "12"
    consumed = [
        m
        for m in await movements(live, item_id=part["id"])
        if m["type"] == "consumption" and m["production_order_id"] == order["id"]
    ]
    assert sum(Decimal(m["quantity"]) for m in consumed) == -12
    assert len(final["history"]) == 3 + 12  # created, released, started, then each


async def test_mixed_actions_on_orders_with_opposite_bom_orders(live: httpx.AsyncClient) -> None:
    a = await create_item(live, name="Component A")
    b = await create_item(live, name="Component B")
    x = await create_item(live, name="Product X")
    y = await create_item(live, name="Product Y")
    await create_bom(live, x["id"], [(a["id"], 1), (b["id"], 2)])  # A then B
    await create_bom(live, y["id"], [(b["id"], 1), (a["id"], 2)])  # B then A
    await receive(live, a["id"], 10, unit_cost="4")
    await receive(live, b["id"], 10, unit_cost="6")
    orders = [await create_order(live, (x if i % 2 else y)["id"], 1) for i in range(16)]
    for order in orders[:4]:
        ok(await act(live, order, "release"))

    rng = random.Random(20261125)
    tally: Counter[str] = Counter()
    began = time.perf_counter()
    for round_ in range(3):
        status = {o["id"]: o["status"] for o in await _orders(live, orders)}
        batch: list[tuple[str, Awaitable[httpx.Response]]] = []
        for _ in range(28):
            order = rng.choice(orders)
            actions, weights = LIKELY.get(status[order["id"]], (ACTIONS, [1] * len(ACTIONS)))
            if rng.random() < 0.15:
                actions, weights = ACTIONS, [1] * len(ACTIONS)
            action = rng.choices(actions, weights)[0]
            if action == "release_short":
                request = act(live, order, "release", {"allow_shortage": True})
            elif action == "cancel":
                request = act(live, order, "cancel", {"reason": "chaos"})
            else:
                request = act(live, order, action)
            batch.append((action, request))
        for item in (a, b):  # stock arriving while they race, for the top-ups to find
            receipt = {"item_id": item["id"], "quantity": 2}
            batch.append(("receipt", live.post("/v1/stock/receipts", json=receipt)))
        rng.shuffle(batch)
        labels = [label for label, _ in batch]
        responses, _ = await race([request for _, request in batch])

        assert_sane(responses)
        for label, response in zip(labels, responses, strict=True):
            tally[f"{label} {response.status_code}"] += 1
            if label == "receipt":
                assert response.status_code == 201, _body(response)
            elif response.status_code != 200:
                assert response.status_code == 409, _body(response)
                code = response.json()["code"]
                assert code in {"invalid_transition", "insufficient_stock"}, _body(response)
                tally[f"{label} {code}"] += 1
                if code == "insufficient_stock":
                    assert label == "release", _body(response)
        await _assert_reservations_add_up(live, [a["id"], b["id"]], orders, round_)

    report("chaos, 3 rounds of 30", seconds=f"{time.perf_counter() - began:.2f}", **tally)
    final = await _orders(live, orders)
    report("chaos final statuses", **Counter(o["status"] for o in final))


async def _orders(client: httpx.AsyncClient, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(get_order(client, o["id"]) for o in orders)))


async def _assert_reservations_add_up(
    client: httpx.AsyncClient, item_ids: list[str], orders: list[dict[str, Any]], round_: int
) -> None:
    """Reserved on the balances == Σ reserved over all orders; planned and cancelled
    orders hold nothing; nothing reserves more than it requires."""
    current = await _orders(client, orders)
    for order in current:
        for r in order["requirements"]:
            assert Decimal(r["reserved_quantity"]) <= Decimal(r["required_quantity"]), order
            if order["status"] in ("planned", "cancelled"):
                assert r["reserved_quantity"] == "0", (round_, order)
    for item_id in item_ids:
        total = await assert_balances_sane(client, item_id)
        held = sum((reserved_of(o, item_id) for o in current), Decimal(0))
        assert Decimal(total["reserved"]) == held, (round_, item_id, total, held)


# --------------------------------------------------------------------------- orders that bend


async def test_20_splits_holds_and_resumes_of_one_released_order(live: httpx.AsyncClient) -> None:
    """Splits, holds and resumes of one partially reserved order, all at once: each
    either applies or is refused for the status it met, and together they neither
    make nor lose a unit or a reservation."""
    part = await create_item(live, name="Split part")
    product = await create_item(live, name="Split product")
    await create_bom(live, product["id"], [(part["id"], 2)])
    await receive(live, part["id"], 50, unit_cost="3")  # 50 of the 80 needed
    order = await create_order(live, product["id"], 40)
    order = ok(await act(live, order, "release", {"allow_shortage": True}))
    assert reserved_of(order, part["id"]) == 50
    requests = (
        [act(live, order, "split", {"quantity": "1"}) for _ in range(10)]
        + [act(live, order, "hold", {"reason": "race"}) for _ in range(5)]
        + [act(live, order, "resume") for _ in range(5)]
    )
    responses, took = await race(requests)

    assert_sane(responses)
    for response in responses:
        if response.status_code != 200:
            assert problem(response, 409, "invalid_transition")
    splits = [r.json()["new"] for r in responses[:10] if r.status_code == 200]
    report("20 splits/holds/resumes", splits=len(splits), seconds=f"{took:.2f}")
    final = await get_order(live, order["id"])
    news = [await get_order(live, s["id"]) for s in splits]
    assert Decimal(final["quantity"]) + sum(Decimal(n["quantity"]) for n in news) == 40
    assert all(n["split_from"] == order["id"] and n["status"] == "released" for n in news)
    reserved = reserved_of(final, part["id"]) + sum(reserved_of(n, part["id"]) for n in news)
    assert reserved == 50
    for o in (final, *news):
        req = requirement(o, part["id"])
        assert Decimal(req["required_quantity"]) == 2 * Decimal(o["quantity"])
        assert Decimal(req["reserved_quantity"]) <= Decimal(req["required_quantity"])
    assert final["status"] in ("released", "on_hold")
    total = await assert_balances_sane(live, part["id"])
    assert Decimal(total["reserved"]) == 50 and Decimal(total["on_hand"]) == 50


async def test_20_returns_racing_on_one_order_never_give_back_more_than_was_used(
    live: httpx.AsyncClient,
) -> None:
    part = await create_item(live, name="Returned part")
    product = await create_item(live, name="Returning product")
    await create_bom(live, product["id"], [(part["id"], 1)])
    await receive(live, part["id"], 30, unit_cost="1.333333")
    order = await create_order(live, product["id"], 10)
    ok(await act(live, order, "release"))
    ok(await act(live, order, "start"))
    line = {"lines": [{"item_id": part["id"], "quantity": "20"}]}
    order = ok(await act(live, order, "consumptions", line))
    back = {"lines": [{"item_id": part["id"], "quantity": "1.5"}]}

    responses, took = await race([act(live, order, "returns", back) for _ in range(20)])

    assert_sane(responses)
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 13, 409: 7}, [_body(r) for r in responses]  # 13 × 1.5 ≤ 20 < 14 × 1.5
    report("20 returns of one order", seconds=f"{took:.2f}")
    final = await get_order(live, order["id"])
    assert Decimal(requirement(final, part["id"])["consumed_quantity"]) == Decimal("0.5")
    moves = [m for m in await movements(live, item_id=part["id"]) if m["type"] == "return"]
    assert sum(Decimal(m["quantity"]) for m in moves) == Decimal("19.5")
    consumed = [m for m in await movements(live, item_id=part["id"]) if m["type"] == "consumption"]
    paid = -sum(Decimal(m["value"]) for m in consumed)
    assert Decimal(final["material_cost"]) == paid - sum(Decimal(m["value"]) for m in moves)
    await assert_balances_sane(live, part["id"])


async def test_10_unbuilds_race_for_the_last_5_units(live: httpx.AsyncClient) -> None:
    product = await create_item(live, name="Unbuilt product")
    part = await create_item(live, name="Recovered part")
    await create_bom(live, product["id"], [(part["id"], 2)])
    await receive(live, product["id"], 5, unit_cost="7")
    body = {"item_id": product["id"], "quantity": "1"}

    responses, took = await race([live.post("/v1/unbuild-orders", json=body) for _ in range(10)])

    assert_sane(responses)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 5, 409: 5}, [_body(r) for r in responses]
    for response in responses:
        if response.status_code == 409:
            problem(response, 409, "insufficient_stock")
    report("10 unbuilds of the last 5 units", seconds=f"{took:.2f}")
    assert Decimal((await assert_balances_sane(live, product["id"]))["on_hand"]) == 0
    recovered = await assert_balances_sane(live, part["id"])
    assert Decimal(recovered["on_hand"]) == 10 and Decimal(recovered["value"]) == 35
