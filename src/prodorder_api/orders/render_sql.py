"""SQL that renders an order (``OrderOut``) and a list row (``OrderSummary``) as JSON text,
byte for byte what pydantic would serialise, on PostgreSQL.

PostgreSQL's own JSON builders put spaces after ``:`` and ``,`` (and ``jsonb`` reorders
keys), so the documents are concatenated here field by field, in the models' field
order, from fragments that format each type as pydantic does:

* decimals (``DecimalOut``): ``trim_scale`` — no exponent, no trailing zeros, ``0``;
* timestamps: UTC, ``YYYY-MM-DDTHH:MM:SS``, six fraction digits unless they are all
  zero, then ``Z``; dates ``YYYY-MM-DD``;
* strings: ``to_json``, which escapes exactly as pydantic does (``\\"``, ``\\\\``,
  ``\\n`` and the like, ``\\u00XX`` for other control characters, UTF-8 as is).

Every nullable fragment is wrapped in ``coalesce(..., 'null')``: one missed NULL would
make the whole document NULL, which ``read.py`` refuses loudly rather than sending.

History ``details`` are free-form JSON as the service stored them (``json.dumps``
style, with spaces and ``\\uXXXX`` escapes); the statement leaves a ``DETAILS`` mark in
their place and returns them beside the document, and ``read.py`` re-serialises each
one exactly as the ORM path does (``json.loads``, then pydantic).

``tests/test_order_reads.py`` compares these renderings with pydantic's for orders in
every status.
"""

from prodorder_api.orders import states

# Stands for one history entry's details. A raw control character: inside a JSON string
# ``to_json`` escapes it, so in a rendered document it can only be this mark.
DETAILS = "\x01"


def _text(column: str) -> str:
    return f"coalesce(to_json({column})::text, 'null')"


def _uuid(column: str) -> str:
    return f"""coalesce('"' || {column}::text || '"', 'null')"""


def _decimal(column: str) -> str:
    return f"""('"' || trim_scale({column})::text || '"')"""


def _int(column: str) -> str:
    return f"({column})::text"


def _bool(column: str) -> str:
    return f"CASE WHEN {column} THEN 'true' ELSE 'false' END"


# asyncpg reads PostgreSQL's infinite dates and timestamps as Python's first and last
# ones (and writes those as infinite), so they are clamped to the same values here.
_FIRST_DATE, _LAST_DATE = "date '0001-01-01'", "date '9999-12-31'"
_FIRST_TIME = "timestamptz '0001-01-01T00:00:00Z'"
_LAST_TIME = "timestamptz '9999-12-31T23:59:59.999999Z'"


def _date(column: str) -> str:
    day = f"to_char(least(greatest({column}, {_FIRST_DATE}), {_LAST_DATE}), 'YYYY-MM-DD')"
    return f"""CASE WHEN {column} IS NULL THEN 'null' ELSE '"' || {day} || '"' END"""


def _timestamp(column: str) -> str:
    moment = f"least(greatest({column}, {_FIRST_TIME}), {_LAST_TIME}) AT TIME ZONE 'UTC'"
    # The format has one '.', so the replace only ever drops an all-zero fraction.
    text = f"""replace(to_char({moment}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')"""
    return f"""CASE WHEN {column} IS NULL THEN 'null' ELSE '"' || {text} || 'Z"' END"""


def _number(column: str) -> str:
    """``MO-000042``: ``format_number``, at least six digits."""
    digits = f"({column})::text"
    return f"""('"MO-' || lpad({digits}, greatest(6, length({digits})), '0') || '"')"""


def _object(fields: list[tuple[str, str]]) -> str:
    """``'{"a":' || <a> || ',"b":' || <b> || '}'`` — compact JSON, fields in this order."""
    parts = []
    for position, (name, fragment) in enumerate(fields):
        separator = "{" if position == 0 else ","
        parts.append(f"""'{separator}"{name}":' || {fragment}""")
    return "(" + " || ".join(parts) + " || '}')"


def _array(element: str, source: str, order_by: str) -> str:
    """A JSON array of ``element`` per row of ``source``, in order; ``[]`` when none."""
    return (
        f"coalesce((SELECT '[' || string_agg({element}, ',' ORDER BY {order_by}) || ']' "
        f"FROM {source}), '[]')"
    )


def _allowed_actions(status: str) -> str:
    """``states.ALLOWED`` as JSON arrays, one branch per status."""
    branches = " ".join(
        "WHEN '{}' THEN '[{}]'".format(status, ",".join(f'"{a}"' for a in actions))
        for status, actions in states.ALLOWED.items()
    )
    return f"CASE {status} {branches} END"


def _unit_cost(value: str, quantity: str) -> str:
    """``money.div(value, quantity)``: the quotient rounded half to even at six places.

    Both are exact six-place decimals, so in millionths the quotient is the integer
    fraction x / y below; ``div`` truncates towards zero, the remainder decides the
    rounding (away from zero past half, to the even neighbour at exactly half).
    """
    x = f"({value} * 1000000000000)"
    y = f"({quantity} * 1000000)"
    whole, rest = f"div({x}, {y})", f"abs(mod({x}, {y}))"
    rounded = (
        f"({whole} + CASE WHEN 2 * {rest} > {y} "
        f"OR (2 * {rest} = {y} AND mod({whole}, 2) <> 0) THEN sign({x}) ELSE 0 END)"
    )
    return f"CASE WHEN {quantity} <= 0 THEN 'null' ELSE {_decimal(rounded + ' * 0.000001')} END"


_RESERVATION = _object(
    [
        ("location_id", _uuid("v.location_id")),
        ("lot_code", _text("nullif(v.lot_code, '')")),  # stored '' for untracked stock
        ("quantity", _decimal("v.quantity")),
    ]
)

# Each requirement with the reservations held for its component: their sum and list.
# Within a component they are ordered by location and lot code (the order of the unique
# index they are read through once the table is large).
_REQUIREMENTS = _array(
    _object(
        [
            ("component_item_id", _uuid("r.component_item_id")),
            ("required_quantity", _decimal("r.required_quantity")),
            ("reserved_quantity", _decimal("coalesce(held.total, 0)")),
            ("consumed_quantity", _decimal("r.consumed_quantity")),
            ("consumption", _text("r.consumption")),
            ("in_bom", _bool("r.in_bom")),
            ("reservations", "coalesce(held.list, '[]')"),
        ]
    ),
    "order_requirements AS r LEFT JOIN LATERAL ("
    f"SELECT sum(v.quantity) AS total, '[' || string_agg({_RESERVATION}, ',' "
    "ORDER BY v.location_id, v.lot_code COLLATE \"C\") || ']' AS list "
    "FROM order_reservations AS v "
    "WHERE v.order_id = o.id AND v.item_id = r.component_item_id"
    ") AS held ON true WHERE r.order_id = o.id",
    "r.position, r.id",
)

_OPERATIONS = _array(
    _object(
        [
            ("sequence", _int("p.sequence")),
            ("name", _text("p.name")),
            ("instructions", _text("p.instructions")),
            ("work_center_id", _uuid("p.work_center_id")),
            ("planned_minutes", _decimal("p.planned_minutes")),
            ("actual_minutes", _decimal("p.actual_minutes")),
            ("completed_quantity", _decimal("p.completed_quantity")),
            ("status", _text("p.status")),
            ("started_at", _timestamp("p.started_at")),
            ("completed_at", _timestamp("p.completed_at")),
        ]
    ),
    "order_operations AS p WHERE p.order_id = o.id",
    "p.sequence, p.id",
)

# SQLAlchemy's JSON type stores Python's None as JSON 'null' (not SQL NULL).
_HAS_DETAILS = "(h.details IS NOT NULL AND h.details::text <> 'null')"

_HISTORY_ENTRY = _object(
    [
        ("action", _text("h.action")),
        ("from_status", _text("h.from_status")),
        ("to_status", _text("h.to_status")),
        ("at", _timestamp("h.at")),
        ("details", f"CASE WHEN {_HAS_DETAILS} THEN chr(1) ELSE 'null' END"),
    ]
)

# OrderOut's fields in order, each as SQL over ``o`` (the order) and ``hist`` (its
# rendered history).
ORDER_FIELDS: list[tuple[str, str]] = [
    ("id", _uuid("o.id")),
    ("number", _number("o.number")),
    ("status", _text("o.status")),
    ("allowed_actions", _allowed_actions("o.status")),
    ("item_id", _uuid("o.item_id")),
    ("quantity", _decimal("o.quantity")),
    ("bom_id", _uuid("o.bom_id")),
    ("location_id", _uuid("o.location_id")),
    ("output_location_id", _uuid("o.output_location_id")),
    ("produced_quantity", _decimal("o.produced_quantity")),
    ("scrapped_quantity", _decimal("o.scrapped_quantity")),
    ("requirements", _REQUIREMENTS),
    ("operations", _OPERATIONS),
    ("due_date", _date("o.due_date")),
    ("planned_start", _date("o.planned_start")),
    ("released_at", _timestamp("o.released_at")),
    ("started_at", _timestamp("o.started_at")),
    ("completed_at", _timestamp("o.completed_at")),
    ("cancelled_at", _timestamp("o.cancelled_at")),
    ("reference", _text("o.reference")),
    ("priority", _int("o.priority")),
    ("notes", _text("o.notes")),
    ("production_plan_id", _uuid("o.production_plan_id")),
    ("material_cost", _decimal("o.material_cost")),
    ("labour_cost", _decimal("o.labour_cost")),
    ("output_value", _decimal("o.output_value")),
    ("scrap_value", _decimal("o.scrap_value")),
    ("unit_cost", _unit_cost("o.output_value", "o.produced_quantity")),
    ("version", _int("o.version")),
    ("history", "coalesce(hist.list, '[]')"),
    ("created_at", _timestamp("o.created_at")),
    ("updated_at", _timestamp("o.updated_at")),
]

# One row for the order: its version (the ETag), the document, and the details the
# document's DETAILS marks stand for, in order. $1 is the order id.
ORDER = (
    f"SELECT o.version, {_object(ORDER_FIELDS)} AS body, hist.details "
    "FROM production_orders AS o LEFT JOIN LATERAL ("
    f"SELECT '[' || string_agg({_HISTORY_ENTRY}, ',' ORDER BY h.id) || ']' AS list, "
    f"array_agg(h.details::text ORDER BY h.id) FILTER (WHERE {_HAS_DETAILS}) AS details "
    "FROM order_history AS h WHERE h.order_id = o.id"
    ") AS hist ON true WHERE o.id = $1"
)

# The order's version alone: whether a document kept of it is still its own
# (``read.document``). A primary-key lookup, ~3x cheaper for PostgreSQL than running
# ORDER even with its document skipped (executor start-up: pgbench, 103k against 31k
# executions/s).
VERSION = "SELECT version FROM production_orders WHERE id = $1"

# ORDER, with the request's outbox events inserted beside it (one statement less an
# action): $2 … $5 are their ids, types, times and data, where a NULL data stands for
# this document, its DETAILS marks replaced by the details as stored (the feed reads
# ``data`` back as JSON, so their spacing does not matter there).
ORDER_WITH_EVENTS = (
    f"WITH doc AS ({ORDER}), ev AS ("
    "INSERT INTO events (id, type, created_at, data) "
    "SELECT v.id, v.type, v.created_at, coalesce(v.data, (SELECT ("
    "SELECT string_agg(p.piece || coalesce(doc.details[p.n], ''), '' ORDER BY p.n) "
    "FROM unnest(string_to_array(doc.body, chr(1))) WITH ORDINALITY AS p(piece, n)"
    ")::json FROM doc)) "
    "FROM unnest($2::uuid[], $3::varchar(64)[], $4::timestamptz[], $5::json[]) "
    "AS v(id, type, created_at, data)) "
    "SELECT * FROM doc"
)

# OrderSummary's fields in order, over ``production_orders`` (unaliased, so that the
# list's SQLAlchemy statement can select it beside its own filters).
SUMMARY_FIELDS: list[tuple[str, str]] = [
    ("id", _uuid("production_orders.id")),
    ("number", _number("production_orders.number")),
    ("status", _text("production_orders.status")),
    ("item_id", _uuid("production_orders.item_id")),
    ("quantity", _decimal("production_orders.quantity")),
    ("bom_id", _uuid("production_orders.bom_id")),
    ("produced_quantity", _decimal("production_orders.produced_quantity")),
    ("scrapped_quantity", _decimal("production_orders.scrapped_quantity")),
    ("due_date", _date("production_orders.due_date")),
    ("planned_start", _date("production_orders.planned_start")),
    ("reference", _text("production_orders.reference")),
    ("priority", _int("production_orders.priority")),
    ("production_plan_id", _uuid("production_orders.production_plan_id")),
    ("version", _int("production_orders.version")),
    ("created_at", _timestamp("production_orders.created_at")),
    ("updated_at", _timestamp("production_orders.updated_at")),
]

SUMMARY = _object(SUMMARY_FIELDS)
