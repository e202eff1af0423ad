"""A report's period: whole UTC days, ``from`` and ``to`` both included.

As timestamps: ``from`` 00:00 ≤ t < 00:00 of the day after ``to``. The calendar's
last day, 9999-12-31, has no day after it (``date + timedelta`` overflows), and no
stored timestamp is later than it either, so ``to=9999-12-31`` leaves the period
open at the end: exactly the same rows, without the overflow.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

TO_DESCRIPTION = (
    "Last day (UTC), included. `9999-12-31`, the calendar's last day, sets no end: "
    "everything from `from` on."
)


def within(
    column: QueryableAttribute[Any], date_from: date | None, date_to: date | None
) -> list[ColumnElement[bool]]:
    """The conditions that keep ``column`` in the period (none for an open one)."""
    bounds: list[ColumnElement[bool]] = []
    if date_from is not None:
        bounds.append(column >= datetime.combine(date_from, time(), UTC))
    if date_to is not None and date_to < date.max:
        bounds.append(column < datetime.combine(date_to + timedelta(days=1), time(), UTC))
    return bounds
