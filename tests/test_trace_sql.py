"""PRODORDER_TRACE_SQL: the statement trace `make bench` turns into pgbench scripts."""

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from bench.pgbench import _LONE_COLON, _hide_colons
from sqlalchemy import text

from prodorder_api.db import TRACE_SQL_ENV, _traced, create_engine


async def test_an_untraced_engine_has_no_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACE_SQL_ENV, raising=False)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    try:
        assert not engine.sync_engine.dispatch.before_cursor_execute
        assert not engine.sync_engine.dispatch.commit
    finally:
        await engine.dispose()


async def test_a_traced_engine_writes_transactions_and_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_SQL_ENV, str(trace))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id TEXT, q TEXT)"))
            await conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", [("a", "1"), ("b", "2")])
            await conn.execute(text("SELECT q FROM t WHERE id = :id"), {"id": "a"})
    finally:
        await engine.dispose()

    entries = [json.loads(line) for line in trace.read_text().splitlines()]
    # The dialect's own first-connect queries come before; the transaction is ours.
    entries = entries[[e["event"] for e in entries].index("begin") :]
    assert [e["event"] for e in entries] == ["begin", "sql", "sql", "sql", "commit"]
    assert entries[2]["many"] == [["a", "1"], ["b", "2"]]
    assert entries[3] == entries[3] | {"sql": "SELECT q FROM t WHERE id = ?", "params": ["a"]}


def test_parameters_keep_their_sql_type() -> None:
    some_id = uuid.uuid4()
    values = [some_id, Decimal("2.50"), datetime(2026, 1, 2, 3, 4, tzinfo=UTC), date(2026, 1, 2)]
    assert [_traced(v) for v in [*values, None, True, 7, "x", b"\x01", [1]]] == [
        {"uuid": str(some_id)},
        {"decimal": "2.50"},
        {"timestamp": "2026-01-02T03:04:00+00:00"},
        {"date": "2026-01-02"},
        None,
        True,
        7,
        "x",
        {"bytes": "01"},
        {"array": [1]},
    ]


@pytest.mark.postgres_only
async def test_the_pgbench_script_hides_the_colons_of_the_sqls_own_strings(
    database_url: str,
) -> None:
    """A statement may write JSON keys and timestamps in string literals; pgbench would
    read each ``:key`` as a variable, so the generator spells those colons ``\\x3a``
    in E-strings, and the statement must still mean the same."""
    probe = "SELECT 'k:v', '{\"a\":1}'::json::text, E'tab\\t:', timestamptz '2026-01-02T03:04:05Z'"
    hidden = _hide_colons(probe)
    assert _LONE_COLON.search(probe) and not _LONE_COLON.search(hidden)
    assert _hide_colons("SELECT 'a''b', E'x\\\\y' , 'c'") == "SELECT 'a''b', E'x\\\\y' , 'c'"
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            assert await driver.fetchrow(hidden) == await driver.fetchrow(probe)
    finally:
        await engine.dispose()
