"""bench/floor.py: the benchmark's floors replay a generated pgbench script's steps,
statement by statement or as one PL/pgSQL call a step, and must do what it says."""

import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from bench import floor

SCRIPT = """\
-- lifecycle: generated for a test
-- create: 2 statements
BEGIN;
SELECT n, '00000001-0000-7000-8000-' || lpad(n::text, 12, '0') AS id_1 FROM (SELECT nextval('{t}_seq') AS n) AS seq \\gset
INSERT INTO {t} (id, n, status) VALUES (:id_1, :n, 'planned');
COMMIT;
-- release: 2 statements
BEGIN;
SELECT id FROM {t} WHERE id = :id_1 FOR UPDATE;
WITH w AS (UPDATE {t} SET status = 'released' WHERE id = :id_1) SELECT 1;
COMMIT;
-- start: 2 statements
BEGIN;
UPDATE {t} SET status = 'in_progress' WHERE id = :id_1;
WITH doc AS (SELECT n, status FROM {t} WHERE id = :id_1) SELECT n, json_build_object('status', status)::text FROM doc;
COMMIT;
-- complete: 2 statements
BEGIN;
UPDATE {t} SET status = 'completed' WHERE id = :id_1;
SELECT n, json_build_object('status', status)::text FROM {t} WHERE id = :id_1;
COMMIT;
"""  # noqa: E501


def test_a_script_becomes_steps_of_parameterised_statements() -> None:
    steps = floor.read_script(SCRIPT.format(t="orders"))
    assert list(steps) == ["create", "release", "start", "complete"]
    numbering, insert = steps["create"]
    assert numbering.sets and numbering.names == () and "nextval" in numbering.sql
    assert not insert.sets and insert.names == ("id_1", "n")
    assert insert.sql.endswith("VALUES ($1, $2, 'planned')")
    assert "::text" in steps["start"][1].sql  # a cast is not a variable
    assert floor.arguments(steps, "create") == ("n", "id_1")
    assert floor.arguments(steps, "complete") == ("id_1",)
    with pytest.raises(ValueError, match="steps"):
        floor.read_script(SCRIPT.format(t="orders").split("-- start")[0])


def test_the_functions_ceiling_calls_one_function_a_step(tmp_path: Path) -> None:
    scripts = {"007": floor.read_script(SCRIPT.format(t="orders"))}
    (path,) = floor.call_scripts(scripts, tmp_path)
    first, *calls = path.read_text().splitlines()
    assert first.endswith(" \\gset") and "nextval" in first
    assert calls == [
        "SELECT bench_floor_007_create(:n, :id_1);",
        "SELECT bench_floor_007_release(:id_1);",
        "SELECT bench_floor_007_start(:id_1);",
        "SELECT bench_floor_007_complete(:id_1);",
    ]


@pytest.mark.postgres_only
@pytest.mark.parametrize("functions", [False, True], ids=["statements", "functions"])
async def test_a_floor_client_runs_each_step_on_the_database(
    database_url: str, functions: bool
) -> None:
    table = f"floor_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            f"CREATE SEQUENCE {table}_seq; CREATE TABLE {table} "
            "(id uuid PRIMARY KEY, n bigint NOT NULL, status text NOT NULL)"
        )
        scripts = {"000": floor.read_script(SCRIPT.format(t=table))}
        if functions:
            await floor.install(conn, scripts)
        client = floor.Client("000", scripts["000"], conn, functions)
        answers = []
        for _ in range(2):
            values: dict[str, object] = {}
            for step in ("create", "release", "start", "complete"):
                answer = await client.step(step, values)
                if step == "create":
                    values = json.loads(answer)
                answers.append(answer)
        rows = await conn.fetch(f"SELECT id::text, n, status FROM {table} ORDER BY n")
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}; DROP SEQUENCE IF EXISTS {table}_seq")
        if functions:
            for step in ("create", "release", "start", "complete"):
                await conn.execute(f"DROP FUNCTION IF EXISTS {floor.function_name('000', step)}")
        await conn.close()

    assert [tuple(r) for r in rows] == [
        ("00000001-0000-7000-8000-000000000001", 1, "completed"),
        ("00000001-0000-7000-8000-000000000002", 2, "completed"),
    ]
    assert b'"id_1": "00000001-0000-7000-8000-000000000002"' in answers[4]
    # Each step answers with its last row: the order's state after that step.
    assert b"in_progress" in answers[2] and b"completed" in answers[3]
