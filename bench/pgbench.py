"""The ceiling for a write scenario: pgbench sending exactly what the service sent.

The service, started with ``PRODORDER_TRACE_SQL=FILE`` (see ``db.trace_sql``), runs
one lifecycle whose requests carry the request ids ``<prefix>-create`` …
``<prefix>-complete``. From that trace this module writes a pgbench script, so the
two can never drift apart:

* every request's statements, between its own ``BEGIN;`` and ``COMMIT;``;
* parameters rendered as literals (colons escaped, since pgbench reads ``:name``
  as a variable even inside quotes);
* an ``executemany`` (asyncpg pipelines those: one round trip) as its rows inside
  ``\\startpipeline`` … ``\\endpipeline``;
* the ids the lifecycle created (order, requirements, reservations, movements,
  history, the balance row offered by ``ON CONFLICT DO NOTHING``) and the MO number
  become pgbench variables: the service's own ``SELECT nextval(…)`` also computes
  one fresh id per slot from the new number, so the script can run again and again
  without a unique violation;
* the fixture's ids (product, components, BOM, balances) are swapped for each
  pgbench client's own, exactly as the HTTP clients each have their own.

Run with ``-M prepared`` (asyncpg prepares every statement too).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEXTVAL = "SELECT nextval('production_order_number_seq')"


def _is_nextval(sql: str) -> bool:
    """The service's number query (``… FROM generate_series(1, :n)`` since plans
    firm many orders at once); a lifecycle takes one number."""
    return sql.startswith(NEXTVAL)


STEPS = ("create", "release", "start", "complete")
_PLACEHOLDER = re.compile(r"\$(\d+)")
_LONE_COLON = re.compile(r"(?<!:):(?!:)")
_ROLE = re.compile(r"@@([\w.]+)@@")


class TraceError(Exception):
    """The trace is not a clean lifecycle this generator understands."""


@dataclass
class Step:
    name: str
    events: list[dict[str, Any]]

    @property
    def statements(self) -> int:
        """SQL statements, an executemany counted once per row."""
        return sum(len(e["many"]) if "many" in e else 1 for e in self.events)

    @property
    def round_trips(self) -> int:
        """Messages waited for: BEGIN, one per execute (or pipelined executemany), COMMIT."""
        return len(self.events) + 2


@dataclass
class Lifecycle:
    steps: list[Step]
    created: dict[str, int] = field(default_factory=dict)  # uuid → slot

    @property
    def statements(self) -> int:
        return sum(s.statements for s in self.steps)

    @property
    def round_trips(self) -> int:
        return sum(s.round_trips for s in self.steps)


def read_trace(path: Path, prefix: str) -> Lifecycle:
    """The traced lifecycle's statements, one step per request."""
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if (entry.get("request_id") or "").startswith(prefix + "-"):
            by_request.setdefault(entry["request_id"], []).append(entry)
    steps = []
    for name in STEPS:
        events = _without_key_lookups(by_request.get(f"{prefix}-{name}", []))
        kinds = [e["event"] for e in events]
        if not kinds or kinds[0] != "begin" or kinds[-1] != "commit" or "rollback" in kinds:
            raise TraceError(f"{prefix}-{name}: not one committed transaction: {kinds}")
        if kinds.count("begin") != 1 or kinds.count("commit") != 1:
            raise TraceError(f"{prefix}-{name}: more than one transaction: {kinds}")
        steps.append(Step(name, [e for e in events if e["event"] == "sql"]))
    return Lifecycle(steps)


def _without_key_lookups(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's events less the guard's own transactions: looking up the key
    (whenever its 0.5 s cache entry has run out, so on a loaded machine any step may
    have one) and noting its last use. They read or touch ``api_keys`` alone and come
    before the request's transaction, which is what the ceiling replays."""
    kept: list[dict[str, Any]] = []
    transaction: list[dict[str, Any]] = []
    for event in events:
        transaction.append(event)
        if event["event"] in ("commit", "rollback"):
            statements = [e["sql"] for e in transaction if e["event"] == "sql"]
            if not statements or not all(_KEY_TABLE.search(sql) for sql in statements):
                kept.extend(transaction)
            transaction = []
    return kept + transaction


_KEY_TABLE = re.compile(r"^(SELECT\b.*\bFROM api_keys\b|UPDATE api_keys\b)", re.DOTALL)


def _rows(event: dict[str, Any]) -> list[list[Any]]:
    return event["many"] if "many" in event else [event["params"]]


def _inserts(sql: str) -> bool:
    """An INSERT, or a statement with one among its parts (``db.pg_write``'s held
    writes, sent together as ``WITH w1 AS (…), … <last write>``)."""
    return sql.startswith("INSERT") or (sql.startswith("WITH") and "INSERT INTO " in sql)


def _flat(values: list[Any]) -> list[Any]:
    """A row's parameters with the elements of its arrays (``unnest`` inserts) in line."""
    flat: list[Any] = []
    for value in values:
        if isinstance(value, dict) and "array" in value:
            flat += _flat(value["array"])
        else:
            flat.append(value)
    return flat


def find_created(lifecycle: Lifecycle, fixture_ids: set[str]) -> None:
    """Number the uuids the lifecycle made: first seen in an INSERT, after nextval."""
    seen_nextval = False
    for step in lifecycle.steps:
        for event in step.events:
            if _is_nextval(event["sql"]):
                seen_nextval = True
            for row in _rows(event):
                for value in _flat(row):
                    if not isinstance(value, dict) or "uuid" not in value:
                        continue
                    uuid = value["uuid"]
                    if uuid in fixture_ids or uuid in lifecycle.created:
                        continue
                    if not _inserts(event["sql"]) or not seen_nextval:
                        raise TraceError(
                            f"{step.name}: id {uuid} is neither the fixture's nor made by "
                            f"an INSERT after {NEXTVAL}: {event['sql'][:120]}"
                        )
                    lifecycle.created[uuid] = len(lifecycle.created) + 1


# A string literal of the SQL itself, E-string or not (no backslash-escaped quotes:
# the service writes none).
_SQL_STRING = re.compile(r"(?<![\w$])([Ee]?)'((?:[^']|'')*)'")


def _hide_colons(sql: str) -> str:
    """The SQL's own string literals with colons (the order rendering writes JSON keys
    and timestamps) as E-strings spelling each colon ``\\x3a``, as ``_quote`` does for
    parameters: pgbench reads ``:name`` as a variable even inside quotes."""

    def hidden(match: re.Match[str]) -> str:
        prefix, body = match.groups()
        if ":" not in body:
            return match.group(0)
        if not prefix:
            body = body.replace("\\", "\\\\")
        return "E'" + body.replace(":", "\\x3a") + "'"

    return _SQL_STRING.sub(hidden, sql)


def _quote(text: str) -> str:
    if ":" in text or "\\" in text:
        escaped = text.replace("\\", "\\\\").replace("'", "''").replace(":", "\\x3a")
        return f"E'{escaped}'"
    return "'" + text.replace("'", "''") + "'"


class Renderer:
    """Turns traced statements into pgbench commands for one fixture."""

    def __init__(self, lifecycle: Lifecycle, number: int, roles: dict[str, str]) -> None:
        self.lifecycle = lifecycle
        self.number = number
        self.roles = roles  # traced fixture uuid → role name
        self.numbers_seen = 0
        self.in_order_insert = False

    def literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            if value == self.number and self.in_order_insert:
                self.numbers_seen += 1
                return ":n"
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str):
            return _quote(value)
        (kind, inner), *_ = value.items()
        if kind == "uuid":
            if inner in self.lifecycle.created:
                return f":id_{self.lifecycle.created[inner]}"
            if inner in self.roles:
                return f"'@@{self.roles[inner]}@@'"
        if kind == "array":
            return "ARRAY[" + ", ".join(self.literal(v) for v in inner) + "]"
        if kind == "bytes":
            return f"'\\x{inner}'::bytea"
        return _quote(str(inner))

    def statement(self, sql: str, params: list[Any]) -> str:
        sql = _hide_colons(sql)
        if _LONE_COLON.search(sql):
            raise TraceError(f"a ':' pgbench would read as a variable: {sql[:120]}")
        # The new order's row, alone or among held writes sent together.
        self.in_order_insert = "INSERT INTO production_orders " in sql
        text = _PLACEHOLDER.sub(lambda m: self.literal(params[int(m.group(1)) - 1]), sql)
        return " ".join(text.split())

    def nextval(self) -> str:
        ids = ", ".join(
            f"'{slot:08x}-0000-7000-8000-' || lpad(n::text, 12, '0') AS id_{slot}"
            for slot in self.lifecycle.created.values()
        )
        return f"SELECT n, {ids} FROM ({NEXTVAL} AS n) AS seq \\gset"

    def script(self, header: str) -> str:
        lines = [f"-- {line}" for line in header.splitlines()]
        for step in self.lifecycle.steps:
            lines += [f"-- {step.name}: {step.statements} statements", "BEGIN;"]
            for event in step.events:
                if _is_nextval(event["sql"]):
                    lines.append(self.nextval())
                elif "many" in event:
                    lines.append("\\startpipeline")
                    lines += [self.statement(event["sql"], row) + ";" for row in event["many"]]
                    lines.append("\\endpipeline")
                else:
                    lines.append(self.statement(event["sql"], event["params"]) + ";")
            lines.append("COMMIT;")
        if self.numbers_seen != 1:
            raise TraceError(
                f"the MO number {self.number} appeared {self.numbers_seen} times in the "
                "INSERT INTO production_orders"
            )
        return "\n".join(lines) + "\n"


def template(lifecycle: Lifecycle, number: int, fixture_roles: dict[str, str], header: str) -> str:
    """The script with ``@@role@@`` where each client's own ids go (see ``for_client``)."""
    by_id = {uuid: role for role, uuid in fixture_roles.items()}
    find_created(lifecycle, set(by_id))
    return Renderer(lifecycle, number, by_id).script(header)


def for_client(script_template: str, roles: dict[str, str]) -> str:
    return _ROLE.sub(lambda m: roles[m.group(1)], script_template)
