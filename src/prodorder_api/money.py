"""Exact decimals: quantities and amounts, in the API and in both databases.

Every quantity and amount has at most six decimal places. PostgreSQL keeps them
in NUMERIC; SQLite has no decimal type (NUMERIC there is a binary float and TEXT
compares as strings), so there they are integers of millionths, which SQLite
adds, compares and sums exactly. Guarded ``UPDATE ... WHERE on_hand >= :q``
statements and SQL aggregates are therefore exact on both backends.
"""

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

PLACES = 6
QUANTUM = Decimal(1).scaleb(-PLACES)  # 0.000001
SCALE = 10**PLACES
# Largest magnitude any stored quantity or amount may reach: millionths of it
# still fit a signed 64-bit SQLite integer (9.22e18).
MAX_MAGNITUDE = Decimal(10) ** 12
# Inputs (a quantity, a unit cost) stay well below that so sums of them do too.
MAX_INPUT = Decimal(10) ** 9

# Enough precision that a product of two in-range decimals is never rounded early.
EXACT_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
_CTX = EXACT_CONTEXT
ZERO = Decimal(0)


def quantize(value: Decimal) -> Decimal:
    """Round to six places, half to even (banker's rounding, as accountants do)."""
    return value.quantize(QUANTUM, context=_CTX)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Exact product rounded to six places."""
    return quantize(_CTX.multiply(a, b))


def div(a: Decimal, b: Decimal) -> Decimal:
    """Quotient rounded to six places."""
    return quantize(_CTX.divide(a, b))


def places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_json(value: Decimal) -> str:
    """Canonical JSON string: no exponent, no trailing zeros, ``"0"`` for zero."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


# ASCII digits only: Decimal() would also take "1_000" and other scripts' digits.
_DECIMAL_TEXT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$")


def parse_decimal(raw: Any) -> Decimal:
    """Turn a JSON number or string into a Decimal, refusing anything inexact.

    Request bodies are parsed with JSON numbers as Decimal (``routing.py``), so they
    arrive with every digit the client wrote. A float (from other callers) goes
    through ``repr``, the shortest string that reads back as the same float.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError("must be a decimal number or a string holding one")
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    elif isinstance(raw, str):
        text = raw.strip()
        if len(text) > 40 or not _DECIMAL_TEXT.match(text):
            raise ValueError("must be a decimal number or a string holding one")
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError("must be a decimal number or a string holding one") from exc
    else:
        raise ValueError("must be a decimal number or a string holding one")
    if not value.is_finite():
        raise ValueError("must be a finite number")
    # Both checks are free of any decimal context: ``abs()`` or ``+`` would round to it,
    # and the body parser keeps exponents (1e1000000) that overflow it (decimal.Overflow).
    if value.copy_abs() >= MAX_INPUT:
        raise ValueError(f"must be less than {MAX_INPUT:,} in magnitude")
    if places(value) > PLACES:
        raise ValueError(f"must have at most {PLACES} decimal places")
    return value + ZERO  # in range now; normalises -0 and 0E+9 to 0


_IMPLS: dict[type[Dialect], TypeEngine[Any]] = {}


class Exact(TypeDecorator[Decimal]):
    """An exact six-place decimal column: NUMERIC on PostgreSQL, millionths on SQLite.

    Sums, differences and comparisons in SQL are exact on both; products are not
    (millionths times millionths), so multiply in Python with :func:`mul`.
    """

    impl = Numeric(24, PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # SQLAlchemy asks for this at every execution, once per parameter of this type
        # (``_unwrapped_dialect_impl``, for the driver's input sizes); the adapted type
        # depends on the dialect's class alone, so it is made once per class (a new one
        # each time took ~6 % of a lifecycle's CPU in-process).
        found = _IMPLS.get(type(dialect))
        if found is None:
            base = BigInteger() if dialect.name == "sqlite" else Numeric(24, PLACES, asdecimal=True)
            found = _IMPLS[type(dialect)] = dialect.type_descriptor(base)
        return found

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        scaled = value.scaleb(PLACES)
        if scaled != scaled.to_integral_value():  # never rounded silently, on either backend
            raise ValueError(f"{value} has more than {PLACES} decimal places")
        return int(scaled) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-PLACES) + ZERO
        return Decimal(value) + ZERO

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        return self
