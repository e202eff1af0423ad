"""Two instances behind PgBouncer in transaction mode (SPEC §12): the races, the
idempotency collisions and the webhook claims give the same results as direct.

PgBouncer (tests/scale_harness.py) holds at most 6 server connections for the test
database while the instances hold 2 × 2 workers × 5 client connections, so the
transactions of all four processes are spread over server connections that the
others used before: what breaks asyncpg's prepared statements unless
``PRODORDER_DB_PGBOUNCER=true``. The scenarios are the direct tests' own, run here
against these instances: ``live`` and ``client`` are one client sending each request
to the next instance in turn.
"""

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from scripts.pgbouncer_harness import PgBouncer
from scripts.replica_harness import dsn
from sqlalchemy.engine import make_url

from tests.helpers import create_item, receive
from tests.scale_harness import (
    Instance,
    instances,
    log_sizes,
    logged_errors,
    own_database,
    pgbouncer,
    round_robin,
)
from tests.test_events import events_after, feed_end
from tests.test_integration_basics import test_ten_identical_posts_with_one_key_apply_once
from tests.test_order_races import (
    TEST_BUDGET,
    test_20_backflushes_of_one_shared_component,
    test_24_releases_race_for_5_units,
)
from tests.test_webhooks import Receiver, deliveries, receiver, settled, subscribe, wait_until

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def database_url(own_database: str) -> str:
    """The module's own database (scale_harness.own_database), also for the scenarios
    collected from the direct tests."""
    return own_database


# Fixtures, and the direct tests' scenarios collected here again against the instances.
__all__ = [
    "own_database",
    "pgbouncer",
    "receiver",
    "test_20_backflushes_of_one_shared_component",
    "test_24_releases_race_for_5_units",
    "test_ten_identical_posts_with_one_key_apply_once",
]

POOL = 6  # scale_harness.pgbouncer's server connections per database


@pytest.fixture(scope="module")
def through_pgbouncer(
    database_url: str, pgbouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Instance]]:
    settings = {
        "PRODORDER_DB_PGBOUNCER": "true",
        "PRODORDER_DISPATCH_INTERVAL_S": "0.2",
        "PRODORDER_WEBHOOK_RETRY_BASE_S": "0.05",
        "PRODORDER_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    workdir = tmp_path_factory.mktemp("pgbouncer-instances")
    with instances(pgbouncer.url(database_url), workdir, settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
async def live(through_pgbouncer: list[Instance]) -> AsyncIterator[httpx.AsyncClient]:
    async with round_robin([i.base_url for i in through_pgbouncer]) as http:
        yield http


@pytest.fixture
def client(live: httpx.AsyncClient) -> httpx.AsyncClient:
    return live


@pytest.fixture(autouse=True)
def clean_server(through_pgbouncer: list[Instance]) -> Iterator[None]:
    """Nothing either instance logged during the test mentions an error, a deadlock or
    a prepared statement; and the test kept within the race tests' budget."""
    logs = [i.log for i in through_pgbouncer]
    since = log_sizes(logs)
    began = time.monotonic()
    yield
    bad = logged_errors(logs, since)
    assert not bad, "the instances logged errors during the test:\n" + "\n".join(bad[:40])
    assert time.monotonic() - began < TEST_BUDGET


def _admin_console(pgb: PgBouncer, command: str) -> list[list[str]]:
    done = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(pgb.port),
            "-U",
            "postgres",
            "-A",
            "-F",
            "\t",
            "-P",
            "footer=off",
            "-c",
            command,
            "pgbouncer",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    )
    return [line.split("\t") for line in done.stdout.splitlines()]


async def test_every_transaction_went_through_pgbouncer_in_transaction_mode(
    live: httpx.AsyncClient, pgbouncer: PgBouncer, database_url: str
) -> None:
    """The instances reach PostgreSQL only through PgBouncer's few server connections,
    which their transactions share."""
    items = [await create_item(live) for _ in range(4)]
    await asyncio.gather(*(receive(live, i["id"], 3) for i in items for _ in range(5)))
    name = make_url(database_url).database
    config = dict(row[:2] for row in _admin_console(pgbouncer, "SHOW CONFIG")[1:])
    assert config["pool_mode"] == "transaction"

    def transactions() -> int:
        header, *rows = _admin_console(pgbouncer, "SHOW STATS")
        stats = [dict(zip(header, row, strict=True)) for row in rows if row[0] == name]
        return int(stats[0]["total_xact_count"]) if stats else 0

    deadline = time.monotonic() + 30  # PgBouncer refreshes its figures every second
    while (counted := await asyncio.to_thread(transactions)) < 20 + 4:
        assert time.monotonic() < deadline, f"PgBouncer counted {counted} transactions"
        await asyncio.sleep(0.1)
    # The instances' pools (2 × 2 workers × 5) are more than PgBouncer's server pool.
    conn = await asyncpg.connect(dsn(database_url))
    try:
        backends = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    assert backends <= POOL, f"{backends} backends on the test database: not all via PgBouncer"


async def test_dispatchers_of_both_instances_deliver_each_event_once(
    live: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The webhook claim (``FOR UPDATE SKIP LOCKED``) through PgBouncer: four dispatchers
    (two instances × two workers) race for the same deliveries of a slow receiver."""
    receiver.delay_s = 0.02
    webhook = await subscribe(live, receiver.url(), ["stock.changed"])
    receiver.secret = webhook["secret"]
    items = [await create_item(live) for _ in range(6)]
    start = await feed_end(live)
    await asyncio.gather(*(receive(live, i["id"], n) for n in (1, 2, 3) for i in items))
    feed = [e for e in await events_after(live, start) if e["type"] == "stock.changed"]
    assert len(feed) == 18

    await wait_until(lambda: settled(live, webhook["id"], len(feed)), within=60)

    assert receiver.succeeded() == Counter({e["id"]: 1 for e in feed})
    assert len(receiver.deliveries) == len(feed)
    assert all(d.verified for d in receiver.deliveries)
    rows = await deliveries(live, webhook["id"])
    assert all(r["status"] == "succeeded" and len(r["attempts"]) == 1 for r in rows)
    assert (await live.delete(f"/v1/webhooks/{webhook['id']}")).status_code == 204
