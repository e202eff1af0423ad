"""The contracts around the schema: the checked-in OpenAPI document, the migrations
(never drifting from the models, reversible, on both backends) and exact decimals."""

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from prodorder_api import migrate
from prodorder_api.app import create_app
from prodorder_api.db import built_on, create_engine
from prodorder_api.errors import PROBLEM_MEDIA_TYPE
from prodorder_api.items.models import Item
from prodorder_api.locations.models import DEFAULT_LOCATION_CODE, Location
from prodorder_api.models import Base
from prodorder_api.money import MAX_INPUT, parse_decimal, to_json
from prodorder_api.stock.models import StockBalance, StockMovement
from tests.conftest import postgres_server_url

ROOT = Path(__file__).resolve().parents[1]
OPENAPI_FILE = ROOT / "openapi" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CAMEL_CASE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")

# The edges of what an exact six-place column must keep: zero, one millionth either
# side of it, the largest input magnitude either side of zero, and a plain value.
EDGES = [
    Decimal("0"),
    Decimal("0.000001"),
    Decimal("-0.000001"),
    Decimal("999999999.999999"),
    Decimal("-999999999.999999"),
    Decimal("123.45"),
]


# --- OpenAPI -------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_openapi_document_on_disk_matches_the_app(openapi: dict[str, Any]) -> None:
    generated = json.dumps(openapi, indent=2, sort_keys=False) + "\n"
    checked_in = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
    assert generated == checked_in, (
        "openapi/openapi.json is out of date with the app: run `make openapi` and commit it"
    )


def test_every_operation_has_a_camel_case_id_a_tag_and_a_summary(
    openapi: dict[str, Any],
) -> None:
    seen: set[str] = set()
    for path, method, operation in _operations(openapi):
        where = f"{method.upper()} {path}"
        operation_id = operation.get("operationId", "")
        assert CAMEL_CASE.match(operation_id), f"{where}: operationId {operation_id!r}"
        assert operation_id not in seen, f"{where}: duplicate operationId {operation_id!r}"
        seen.add(operation_id)
        assert operation.get("tags"), f"{where}: no tag"
        assert operation.get("summary"), f"{where}: no summary"
    assert seen


def test_v1_operations_declare_their_problems_as_problem_json(openapi: dict[str, Any]) -> None:
    wrong: list[str] = []
    for path, method, operation in _operations(openapi):
        if not path.startswith("/v1/"):
            continue
        where = f"{method.upper()} {path}"
        problems = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
        if not problems:
            wrong.append(f"{where}: declares no 4xx problem response")
        for status, response in problems.items():
            media_types = sorted(response.get("content", {}))
            if media_types != [PROBLEM_MEDIA_TYPE]:
                wrong.append(f"{where} {status}: content is {media_types}")
                continue
            schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
            if schema != {"$ref": "#/components/schemas/Problem"}:
                wrong.append(f"{where} {status}: schema is {schema}")
    assert not wrong, "error responses must be application/problem+json only:\n" + "\n".join(wrong)


# --- Migrations ----------------------------------------------------------------


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "render_as_batch": connection.dialect.name == "sqlite",
            "include_object": built_on(connection.dialect.name),
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def _autogenerate_diff(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_schema_differences)


async def test_models_and_migrations_never_drift(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        differences = await _autogenerate_diff(engine)
    finally:
        await engine.dispose()
    assert differences == [], (
        "the models differ from what the migrations build; write a migration "
        f"(alembic revision --autogenerate) for: {differences}"
    )


def _postgres_admin(server: str, sql: str) -> None:
    async def run() -> None:
        dsn = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def scratch_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, not the migrated one the other tests share."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    server = postgres_server_url()
    name = f"prodorder_scratch_{uuid.uuid4().hex[:12]}"
    _postgres_admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _postgres_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _snapshot(url: str) -> dict[str, Any]:
    """Tables, schema revision, MAIN locations and autogenerate's differences."""

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(tables)
            revision = mains = None
            if "alembic_version" in names:
                revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            if "locations" in names:
                mains = await conn.scalar(
                    select(func.count())
                    .select_from(Location)
                    .where(Location.code == DEFAULT_LOCATION_CODE)
                )
        differences = await _autogenerate_diff(engine) if "locations" in names else None
    finally:
        await engine.dispose()
    return {
        "tables": names - {"alembic_version"},
        "revision": revision,
        "mains": mains,
        "differences": differences,
    }


def test_upgrade_downgrade_upgrade_on_a_fresh_database(scratch_database_url: str) -> None:
    # Sync test: migrations/env.py runs its own event loop with asyncio.run.
    url = scratch_database_url
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    model_tables = set(Base.metadata.tables)

    migrate.upgrade(url)
    first = asyncio.run(_snapshot(url))
    assert first["tables"] == model_tables
    assert first["revision"] == head
    assert first["mains"] == 1

    migrate.downgrade(url, "base")
    down = asyncio.run(_snapshot(url))
    assert down["tables"] == set(), "downgrade to base left tables behind"
    assert down["revision"] is None

    migrate.upgrade(url)
    again = asyncio.run(_snapshot(url))
    assert again["tables"] == model_tables
    assert again["revision"] == head
    assert again["mains"] == 1, "the MAIN location must exist exactly once"
    assert again["differences"] == []


# --- Exact decimals in the database --------------------------------------------


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back: the shared database stays clean."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                yield conn
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def _main_location_id(conn: AsyncConnection) -> uuid.UUID:
    location_id = await conn.scalar(
        select(Location.id).where(Location.code == DEFAULT_LOCATION_CODE)
    )
    assert location_id is not None
    return location_id


async def _new_item(conn: AsyncConnection) -> uuid.UUID:
    item_id = uuid.uuid4()
    await conn.execute(insert(Item).values(id=item_id, sku=f"EXACT-{item_id.hex[:12]}", name="x"))
    return item_id


def _exactly(value: Decimal | None, expected: Decimal) -> None:
    assert value is not None
    assert isinstance(value, Decimal), type(value)
    assert value == expected
    assert to_json(value) == to_json(expected)


async def test_exact_columns_round_trip_the_edges_through_the_orm(
    connection: AsyncConnection,
) -> None:
    session = AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    items = [
        Item(sku=f"EDGE-{uuid.uuid4().hex[:12]}", name="edge", standard_cost=v, stock_value=v)
        for v in EDGES
    ]
    session.add_all(items)
    await session.flush()
    ids = [item.id for item in items]
    session.expunge_all()

    for item_id, expected in zip(ids, EDGES, strict=True):
        loaded = await session.get(Item, item_id)
        assert loaded is not None
        _exactly(loaded.standard_cost, expected)
        _exactly(loaded.stock_value, expected)
    await session.close()


async def test_exact_columns_round_trip_the_edges_through_core(
    connection: AsyncConnection,
) -> None:
    item_id = await _new_item(connection)
    location_id = await _main_location_id(connection)
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "item_id": item_id,
            "location_id": location_id,
            "quantity": value,
            "type": "adjustment",
            "unit_cost": abs(value),
            "value": value,
        }
        for value in EDGES
    ]
    await connection.execute(insert(StockMovement), rows)

    for row in rows:
        stored = (
            await connection.execute(
                select(StockMovement.quantity, StockMovement.unit_cost, StockMovement.value).where(
                    StockMovement.id == row["id"]
                )
            )
        ).one()
        _exactly(stored.quantity, row["quantity"])
        _exactly(stored.unit_cost, row["unit_cost"])
        _exactly(stored.value, row["value"])

    if connection.dialect.name == "sqlite":  # kept as integers of millionths, never floats
        raw = await connection.execute(
            text("SELECT quantity, typeof(quantity) FROM stock_movements WHERE item_id = :item"),
            {"item": item_id.hex},
        )
        assert sorted(raw.all()) == sorted((int(v.scaleb(6)), "integer") for v in EDGES)


async def test_sums_in_sql_are_exact(connection: AsyncConnection) -> None:
    item_id = await _new_item(connection)
    location_id = await _main_location_id(connection)
    quantities = [
        *EDGES,
        *[Decimal("0.1")] * 10,  # a float sum gives 0.9999999999999999
        Decimal("999999999.999999"),
        Decimal("0.000001"),  # ... + 0.000001 is 1e9 exactly; doubles lose the millionth
    ]
    await connection.execute(
        insert(StockMovement),
        [
            {
                "item_id": item_id,
                "location_id": location_id,
                "quantity": q,
                "type": "adjustment",
                "unit_cost": Decimal(0),
                "value": q,
            }
            for q in quantities
        ],
    )
    total = await connection.scalar(
        select(func.sum(StockMovement.quantity)).where(StockMovement.item_id == item_id)
    )
    _exactly(total, Decimal("1000000124.45"))
    assert total == sum(quantities)

    tenths = await connection.scalar(
        select(func.sum(StockMovement.quantity)).where(
            StockMovement.item_id == item_id, StockMovement.quantity == Decimal("0.1")
        )
    )
    _exactly(tenths, Decimal("1"))


async def _count(conn: AsyncConnection, *conditions: Any) -> int:
    return int(await conn.scalar(select(func.count()).where(*conditions)) or 0)


async def test_comparisons_in_sql_are_exact(connection: AsyncConnection) -> None:
    location_id = await _main_location_id(connection)
    # (on_hand, reserved, available): 0.3 - 0.2 is 0.09999999999999998 in doubles.
    cases = [
        (Decimal("0.3"), Decimal("0.2"), Decimal("0.1")),
        (Decimal("999999999.999999"), Decimal("999999999.999998"), Decimal("0.000001")),
        (Decimal("0.000001"), Decimal("0"), Decimal("0.000001")),
        (Decimal("123.45"), Decimal("123.45"), Decimal("0")),
    ]
    for on_hand, reserved, available in cases:
        item_id = await _new_item(connection)
        await connection.execute(
            insert(StockBalance).values(
                item_id=item_id, location_id=location_id, on_hand=on_hand, reserved=reserved
            )
        )
        where_item = StockBalance.item_id == item_id
        free = StockBalance.on_hand - StockBalance.reserved

        assert await _count(connection, where_item, free >= available) == 1
        assert await _count(connection, where_item, free >= available + Decimal("0.000001")) == 0
        assert await _count(connection, where_item, free == available) == 1
        positive = StockBalance.on_hand > StockBalance.reserved
        assert await _count(connection, where_item, positive) == int(available > 0)
        _exactly(await connection.scalar(select(free).where(where_item)), available)

        # The guarded update that takes stock: exactly what is available, never more.
        too_much = available + Decimal("0.000001")
        take = (
            update(StockBalance)
            .where(where_item, free >= too_much)
            .values(on_hand=StockBalance.on_hand - too_much)
        )
        assert (await connection.execute(take)).rowcount == 0
        take = (
            update(StockBalance)
            .where(where_item, free >= available)
            .values(on_hand=StockBalance.on_hand - available)
        )
        assert (await connection.execute(take)).rowcount == 1
        _exactly(await connection.scalar(select(StockBalance.on_hand).where(where_item)), reserved)


# --- money.parse_decimal and money.to_json (no database) ------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, "0"),
        ("0", "0"),
        ("-0", "0"),
        ("-0.000000", "0"),
        (12, "12"),
        ("12.5", "12.5"),
        (12.5, "12.5"),
        (0.1, "0.1"),
        (1e-6, "0.000001"),
        (-0.000001, "-0.000001"),
        ("0.000001", "0.000001"),
        ("  7.25 ", "7.25"),
        ("999999999.999999", "999999999.999999"),
        ("-999999999.999999", "-999999999.999999"),
        (999999999.999999, "999999999.999999"),
        ("1E+3", "1000"),
        ("1.500000", "1.5"),
        (Decimal("2.50"), "2.5"),
    ],
)
def test_parse_decimal_keeps_what_the_client_wrote(raw: Any, expected: str) -> None:
    value = parse_decimal(raw)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert to_json(value) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        True,
        False,
        "",
        "   ",
        "abc",
        "1,5",
        "0x10",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        float("nan"),
        float("inf"),
        "0.0000001",
        0.0000001,
        "1.1234567",
        "1000000000",
        "-1000000000",
        1e9,
        str(MAX_INPUT + Decimal("0.5")),
        "1" * 41,
        [1],
        {"value": 1},
    ],
)
def test_parse_decimal_refuses_anything_inexact_or_out_of_range(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_decimal(raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("0.000000"), "0"),
        (Decimal("0E-6"), "0"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("12.500"), "12.5"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("-0.000001"), "-0.000001"),
        (Decimal("999999999.999999"), "999999999.999999"),
        (Decimal("-999999999.999999"), "-999999999.999999"),
        (Decimal("999999999999.999999"), "999999999999.999999"),
    ],
)
def test_to_json_is_canonical(value: Decimal, expected: str) -> None:
    assert to_json(value) == expected


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_every_six_place_decimal_survives_json_and_back(millionths: int) -> None:
    value = Decimal(millionths).scaleb(-6)
    text_form = to_json(value)
    assert "e" not in text_form.lower()
    assert parse_decimal(text_form) == value
    assert to_json(parse_decimal(text_form)) == text_form
    assert to_json(parse_decimal(float(text_form))) == text_form
