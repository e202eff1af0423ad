"""The floor: the lifecycle's SQL sent over HTTP by a server with no application code.

The ceiling (``ceiling.py``) tells how fast PostgreSQL runs the service's statements
when pgbench sends them. The floor tells how much of the distance to it is the cost of
sending them from Python at all: ``floor_app`` is a bare ASGI app on the same uvicorn
settings that, for each HTTP request, runs one step's statements from the generated
pgbench scripts through asyncpg, in as many round trips as the service (BEGIN, one per
statement, COMMIT), and nothing else: no validation, no ORM, no rendering in Python.
What separates the service from the floor is our code; what separates the floor from
the ceiling is HTTP, asyncpg and the event loop.

A second floor answers what "one call per action" would give: each step's statements
become the body of a PL/pgSQL function (``functions``), called with one statement, and
pgbench calls the same functions for its ceiling (``call_scripts``).

Each HTTP client keeps one database connection, as each pgbench client does: a
client's statements carry its own ids as literals, so through a shared pool each
connection would see every client's texts and asyncpg's statement cache (100) would
overflow. The service's statements carry parameters instead, and share one cache.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.pgbench import STEPS

_INTEGERS = {"int2", "int4", "int8"}
_VARIABLE = re.compile(r"(?<!:):([A-Za-z_]\w*)")
_META = ("\\startpipeline", "\\endpipeline")


@dataclass(frozen=True)
class Command:
    """One statement of a step: ``$n`` where the script had ``:name``."""

    sql: str
    names: tuple[str, ...]
    sets: bool  # ``\\gset``: its one row's columns become the variables


def read_script(text: str) -> dict[str, list[Command]]:
    """A generated pgbench script's statements by step (``-- <step>: …`` heads them)."""
    steps: dict[str, list[Command]] = {}
    current: list[Command] | None = None
    for line in text.splitlines():
        head = line[3:].split(":", 1)[0] if line.startswith("-- ") else ""
        if head in STEPS:
            current = steps.setdefault(head, [])
            continue
        if not line.strip() or line.startswith("--") or line in ("BEGIN;", "COMMIT;"):
            continue
        if line in _META:  # an executemany's rows: sent one by one here
            continue
        if current is None:
            raise ValueError(f"a statement before the first step: {line[:80]}")
        sets = line.endswith("\\gset")
        sql = line.removesuffix("\\gset").rstrip().removesuffix(";")
        names: list[str] = []

        def placeholder(match: re.Match[str], names: list[str] = names) -> str:
            names.append(match.group(1))
            return f"${len(names)}"

        current.append(Command(_VARIABLE.sub(placeholder, sql), tuple(names), sets))
    if tuple(steps) != STEPS:
        raise ValueError(f"steps {tuple(steps)}, not {STEPS}")
    return steps


def client_key(path: Path) -> str:
    """``lifecycle-007.sql`` → ``007``: the HTTP client that replays it."""
    return path.stem.rsplit("-", 1)[1]


def load(paths: list[Path]) -> dict[str, dict[str, list[Command]]]:
    return {client_key(p): read_script(p.read_text()) for p in paths}


def function_name(client: str, step: str) -> str:
    return f"bench_floor_{client}_{step}"


def _declared(name: str) -> str:
    return f"v_{name} {'bigint' if name == 'n' else 'uuid'}"


def arguments(steps: dict[str, list[Command]], step: str) -> tuple[str, ...]:
    """The variables a step's function takes: those its statements use; create's, all
    its numbering statement sets (the new order's number and ids)."""
    if step == "create":
        (numbering,) = [c for c in steps[step] if c.sets]
        return ("n", *re.findall(r" AS (id_\d+)", numbering.sql))
    used = {n for c in steps[step] for n in c.names}
    return tuple(sorted(used, key=lambda n: (len(n), n)))


def functions(scripts: dict[str, dict[str, list[Command]]], returns_rows: set[str]) -> str:
    """``CREATE FUNCTION`` for every client and step. ``returns_rows``: the statements
    that return rows (they need ``INTO``). The numbering statement stays outside, as
    in the scripts: its results are the function's arguments."""
    ddl = []
    for client, steps in scripts.items():
        for step in STEPS:
            names = arguments(steps, step)
            body = []
            for command in steps[step]:
                if command.sets:
                    continue
                sql = command.sql
                for position, name in reversed(list(enumerate(command.names, 1))):
                    sql = sql.replace(f"${position}", f"v_{name}")
                body.append(sql + (" INTO v_row;" if command.sql in returns_rows else ";"))
            ddl.append(
                f"CREATE FUNCTION {function_name(client, step)}("
                + ", ".join(_declared(n) for n in names)
                + ") RETURNS text LANGUAGE plpgsql AS $floor$\n"
                "#variable_conflict use_column\nDECLARE v_row record;\nBEGIN\n"
                + "\n".join(body)
                + f"\nRETURN {'NULL' if step == 'create' else 'v_row::text'};\nEND $floor$;"
            )
    return "\n".join(ddl) + "\n"


def call(client: str, step: str, names: tuple[str, ...]) -> str:
    args = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    return f"SELECT {function_name(client, step)}({args})"


def call_scripts(scripts: dict[str, dict[str, list[Command]]], directory: Path) -> list[Path]:
    """pgbench scripts for the functions' ceiling: the numbering statement, then one
    call per step, each its own transaction, as the floor's HTTP server sends them."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for client, steps in scripts.items():
        (numbering,) = [c for c in steps["create"] if c.sets]
        lines = [numbering.sql + " \\gset"]
        for step in STEPS:
            names = arguments(steps, step)
            variables = ", ".join(f":{n}" for n in names)
            lines.append(f"SELECT {function_name(client, step)}({variables});")
        path = directory / f"functions-{client}.sql"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


async def install(conn: Any, scripts: dict[str, dict[str, list[Command]]]) -> None:
    """Create the functions on ``conn``'s database (asyncpg)."""
    returns_rows = set()
    for steps in scripts.values():
        for command in (c for commands in steps.values() for c in commands):
            if (await conn.prepare(command.sql)).get_attributes():
                returns_rows.add(command.sql)
    await conn.execute(functions(scripts, returns_rows))


class Client:
    """One client's connection and its statements, prepared once."""

    def __init__(
        self, key: str, steps: dict[str, list[Command]], conn: Any, functions: bool
    ) -> None:
        self.key, self.steps, self.conn, self.functions = key, steps, conn, functions
        self.prepared: dict[str, tuple[Any, list[str]]] = {}

    async def statement(self, sql: str) -> tuple[Any, list[str]]:
        """The prepared statement and its parameters' type names."""
        if (found := self.prepared.get(sql)) is None:
            stmt = await self.conn.prepare(sql)
            found = self.prepared[sql] = (stmt, [t.name for t in stmt.get_parameters()])
        return found

    async def run(self, sql: str, names: tuple[str, ...], values: dict[str, Any]) -> list[Any]:
        stmt, kinds = await self.statement(sql)
        args = [
            int(values[n]) if kind in _INTEGERS else str(values[n])
            for n, kind in zip(names, kinds, strict=True)
        ]
        rows: list[Any] = await stmt.fetch(*args)
        return rows

    async def step(self, step: str, values: dict[str, Any]) -> bytes:
        commands = self.steps[step]
        if self.functions:
            if step == "create":
                (numbering,) = [c for c in commands if c.sets]
                values = dict((await self.run(numbering.sql, (), {}))[0])
            names = arguments(self.steps, step)
            rows = await self.run(call(self.key, step, names), names, values)
            answer = json.dumps(values) if step == "create" else rows[0][0] or ""
            return str(answer).encode()
        document = b""
        async with self.conn.transaction():
            for command in commands:
                rows = await self.run(command.sql, command.names, values)
                if command.sets:
                    values = dict(rows[0])
                elif rows and isinstance(rows[0][-1], str):
                    document = rows[0][-1].encode()
        return json.dumps(values).encode() if step == "create" else document
