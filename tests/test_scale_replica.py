"""Pure reads on a streaming replica (SPEC §12, ``PRODORDER_READ_DATABASE_URL``).

A real hot standby of the local cluster (tests/scale_harness.py) and a real instance
(``prodorder-api serve``) whose writes go to the primary and whose GETs go to the
replica. Which database answered is proven, not assumed: with the replica's replay
paused (``pg_wal_replay_pause()``), what the replica serves is visibly older than what
the primary holds; and the replica's own ``pg_stat_database`` counts the reads. Every
wait is a bounded poll on a condition, never a sleep.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scripts.replica_harness import Replica, dsn, fetchval, streaming_replica
from sqlalchemy.engine import make_url

from tests.helpers import create_item
from tests.order_helpers import create_bom, create_order
from tests.scale_harness import (
    Instance,
    instances,
    log_sizes,
    logged_errors,
    own_database,
    replica,
    round_robin,
)

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def database_url(own_database: str) -> str:
    """The module's own database (scale_harness.own_database), also for the scenarios
    collected from the direct tests."""
    return own_database


__all__ = ["own_database", "replica"]

LAGS_SEEN: list[dict[str, Any]] = []  # /readyz's replica figures, shown with -s


@pytest.fixture(scope="module")
def on_replica(
    database_url: str, replica: Replica, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    """One instance: DATABASE_URL the primary, PRODORDER_READ_DATABASE_URL the replica."""
    replica.wait_database(make_url(database_url).database or "")
    settings = {"PRODORDER_READ_DATABASE_URL": replica.url(database_url)}
    workdir = tmp_path_factory.mktemp("replica-instance")
    with instances(database_url, workdir, count=1, workers=1, settings=settings) as [one]:
        yield one
    print("\n[replica] /readyz figures seen:", LAGS_SEEN)


@pytest.fixture(scope="module")
async def live(on_replica: Instance) -> AsyncIterator[httpx.AsyncClient]:
    async with round_robin([on_replica.base_url]) as http:
        yield http


@pytest.fixture(autouse=True)
def no_errors_logged(on_replica: Instance, replica: Replica) -> Iterator[None]:
    since = log_sizes([on_replica.log])
    yield
    expected = ("read replica unavailable", "database unavailable")  # the replica down
    bad = [
        line
        for line in logged_errors([on_replica.log], since)
        if not any(words in line for words in expected)
    ]
    assert not bad, "the instance logged errors:\n" + "\n".join(bad[:40])
    if replica.process is None:  # a test stopped it: the next one gets it back
        replica.start()


STRONG = {"Consistency": "strong"}


async def poll(check: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    """Until ``check()`` (sync, run in a thread) returns something true; that value."""
    deadline = time.monotonic() + within
    while not (value := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def readiness(live: httpx.AsyncClient) -> dict[str, Any]:
    response = await live.get("/readyz")
    assert response.status_code == 200, response.text
    replica_status: dict[str, Any] = response.json()["replica"]
    LAGS_SEEN.append(replica_status)
    return replica_status


def _commits_on_replica(replica: Replica, name: str) -> int:
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
    return int(fetchval(replica.dsn(), query, name))


async def test_gets_are_served_by_the_replica(
    live: httpx.AsyncClient, replica: Replica, database_url: str
) -> None:
    """The replica's own statistics count the reads: 30 GETs, ≥ 30 transactions on the
    test database there (nothing else reads that database on the replica). An idle
    backend reports its counts within 10 s (PostgreSQL 15's idle flush): polled."""
    name = make_url(database_url).database or ""
    item = await create_item(live)
    await asyncio.to_thread(replica.wait_caught_up)
    before = await asyncio.to_thread(_commits_on_replica, replica, name)
    for _ in range(30):
        got = await live.get(f"/v1/items/{item['id']}")
        assert got.status_code == 200, got.text
    await poll(
        lambda: _commits_on_replica(replica, name) >= before + 30,
        "the replica's statistics to count the 30 reads",
        within=60,
    )


async def test_paused_replica_serves_its_older_copy_and_strong_reads_the_primary(
    live: httpx.AsyncClient, replica: Replica
) -> None:
    await asyncio.to_thread(replica.pause_replay)
    try:
        item = await create_item(live, name="Made while the replica is paused")
        path = f"/v1/items/{item['id']}"
        stale = await live.get(path)
        assert stale.status_code == 404, "the GET was not answered by the (paused) replica"
        strong = await live.get(path, headers=STRONG)
        assert strong.status_code == 200 and strong.json()["id"] == item["id"]
        status = await readiness(live)
        assert status["status"] == "paused" and status["lag_bytes"] > 0, status
    finally:
        await asyncio.to_thread(replica.resume_replay)
    await asyncio.to_thread(replica.wait_caught_up)
    assert (await live.get(path)).status_code == 200


async def test_the_etag_a_write_returned_never_reads_an_older_order(
    live: httpx.AsyncClient, replica: Replica
) -> None:
    """After a write, a GET with its ETag in If-None-Match: 304 or the newer order from
    the primary, never the replica's older copy — with the replica's replay paused."""
    product = await create_item(live, name="Replicated product")
    component = await create_item(live, name="Its component")
    bom = await create_bom(live, product["id"], [(component["id"], 2)])
    order = await create_order(live, product["id"], 3, bom_id=bom["id"])
    path = f"/v1/production-orders/{order['id']}"
    await asyncio.to_thread(replica.wait_caught_up)
    await asyncio.to_thread(replica.pause_replay)
    try:
        changed = await live.patch(path, json={"notes": "after the pause"})
        assert changed.status_code == 200, changed.text
        etag = changed.headers["etag"]
        assert etag == f'"{order["version"] + 1}"'

        plain = await live.get(path)  # the replica's copy: older, as it may be
        assert plain.status_code == 200 and plain.json()["version"] == order["version"]

        current = await live.get(path, headers={"If-None-Match": etag})
        assert current.status_code == 304, current.text
        assert current.headers["etag"] == etag

        again = await live.patch(path, json={"notes": "and once more"})
        newer = await live.get(path, headers={"If-None-Match": etag})
        assert newer.status_code == 200
        assert newer.json()["version"] == again.json()["version"] == order["version"] + 2
        assert newer.json()["notes"] == "and once more"

        created = await create_order(live, product["id"], 1, bom_id=bom["id"])  # not replayed
        fresh = await live.get(
            f"/v1/production-orders/{created['id']}", headers={"If-None-Match": '"1"'}
        )
        assert fresh.status_code == 304
    finally:
        await asyncio.to_thread(replica.resume_replay)


async def test_every_get_the_replica_answers_is_a_pure_read(
    live: httpx.AsyncClient, replica: Replica
) -> None:
    """Each GET the document lists, its path filled with a real id where there is one:
    answered by the replica, where any write fails (a read-only transaction), without a
    500: none of them writes."""
    product = await create_item(live)
    component = await create_item(live)
    bom = await create_bom(live, product["id"], [(component["id"], 1)])
    order = await create_order(live, product["id"], 2, bom_id=bom["id"])
    await asyncio.to_thread(replica.wait_caught_up)
    ids = {
        "item_id": product["id"],
        "bom_id": bom["id"],
        "order_id": order["id"],
        "location_id": "MAIN",
    }
    document = (await live.get("/openapi.json")).json()
    answered = {}
    for path, operations in document["paths"].items():
        params = [
            p for p in operations.get("get", {}).get("parameters", []) if p.get("in") == "path"
        ]
        if "get" not in operations or not path.startswith("/v1/"):
            continue
        if any(p["name"] not in ids for p in params):
            continue
        response = await live.get(path.format(**ids))
        answered[path] = response.status_code
        assert response.status_code < 500, f"GET {path}: {response.text}"
    assert len(answered) >= 20 and list(answered.values()).count(200) >= 15, answered


async def test_readyz_reports_the_lag_and_it_returns_to_zero(
    live: httpx.AsyncClient, replica: Replica
) -> None:
    await asyncio.to_thread(replica.pause_replay)
    try:
        await create_item(live)
        paused = await readiness(live)
        assert paused["status"] == "paused" and paused["lag_bytes"] > 0, paused
        assert paused["lag_s"] is not None and paused["lag_s"] >= 0
    finally:
        await asyncio.to_thread(replica.resume_replay)

    async def caught_up() -> dict[str, Any] | None:
        status = await readiness(live)
        return status if status["status"] == "streaming" and status["lag_bytes"] == 0 else None

    deadline = time.monotonic() + 30
    while (status := await caught_up()) is None:
        assert time.monotonic() < deadline, LAGS_SEEN[-1]
        await asyncio.sleep(0.05)
    assert status["lag_s"] == 0


async def test_with_the_replica_down_reads_fall_back_to_the_primary(
    live: httpx.AsyncClient, replica: Replica
) -> None:
    """Never a 500: a read caught on a replica connection that just died is a 503 with
    Retry-After; every read after that goes to the primary until the replica is back."""
    item = await create_item(live)
    await asyncio.to_thread(replica.wait_caught_up)
    path = f"/v1/items/{item['id']}"
    assert (await live.get(path)).status_code == 200  # a replica connection in the pool
    await asyncio.to_thread(replica.stop)

    statuses = []
    for _ in range(12):
        response = await live.get(path)
        statuses.append(response.status_code)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 503:
            assert response.json()["code"] == "service_unavailable"
            assert int(response.headers["retry-after"]) >= 1
    assert statuses[-10:] == [200] * 10, statuses
    written = await create_item(live, name="Written while the replica is down")
    assert (await live.get(f"/v1/items/{written['id']}")).status_code == 200
    down = await readiness(live)
    assert down["status"] == "unreachable", down

    await asyncio.to_thread(replica.start)
    await asyncio.to_thread(replica.wait_caught_up)
    deadline = time.monotonic() + 30
    while (await readiness(live))["status"] != "streaming":
        assert time.monotonic() < deadline, LAGS_SEEN[-1]
        await asyncio.sleep(0.05)
    # Back on the replica once its retry interval has passed: paused, it shows its age.
    await asyncio.to_thread(replica.pause_replay)
    try:
        unseen = await create_item(live)

        async def replica_answers() -> bool:
            return (await live.get(f"/v1/items/{unseen['id']}")).status_code == 404

        deadline = time.monotonic() + 30
        while not await replica_answers():
            assert time.monotonic() < deadline, "reads never went back to the replica"
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(replica.resume_replay)


def test_the_harness_puts_the_primary_back_as_it_found_it(database_url: str) -> None:
    """A second replica, made and removed: the primary's pg_hba.conf is byte for byte
    what it was, and its slot is gone."""
    primary = dsn(database_url, database="postgres")
    hba = Path(fetchval(primary, "SHOW hba_file"))
    before = hba.read_bytes()
    with streaming_replica(database_url) as second:
        assert hba.read_bytes() != before
        assert fetchval(second.dsn(), "SELECT pg_is_in_recovery()") is True
        slot = second.slot
    assert hba.read_bytes() == before
    query = "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1"
    assert fetchval(primary, query, slot) == 0
    assert not second.directory.exists()
