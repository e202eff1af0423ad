"""The event outbox and its commit-safe feed.

Services register events on the session while they work (``add``); ``write_pending``
turns them into outbox rows right before the request's transaction commits, so an
event exists exactly when its change does. ``data`` may be a callable: an order's
events are rendered at write time, after every change the request made.

Ids are time-ordered but are not commit order: a transaction that wrote an event
first may commit last. So the feed is ordered by ``position``, which ``sequence``
gives only to committed events, in id order, one sequencer at a time (PostgreSQL:
a transaction-scoped advisory lock; SQLite: every write transaction holds the
database lock). A transaction that has not committed is invisible to the sequencer,
and each sequencer's positions become visible all at once when it commits, so the
positions a reader sees are always 1..N without a gap: paging with ``after`` never
skips an event that committed late. The dispatcher sequences on every tick, and the
feed sequences lazily before it reads.
"""

from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from prodorder_api.db import serialise, utcnow
from prodorder_api.errors import ValidationFailed
from prodorder_api.events.models import Event
from prodorder_api.ids import new_id

PENDING: Final = "prodorder.pending_events"
# pg_advisory_xact_lock key of the sequencer ("prodseq" in ASCII).
SEQUENCER_LOCK: Final = 0x70726F64736571
SEQUENCE_BATCH: Final = 1000
# Rows per INSERT of the outbox: 4 parameters each, far below any parameter limit.
INSERT_CHUNK: Final = 500

Data = dict[str, Any] | Callable[[], dict[str, Any]]


def add(session: AsyncSession | Session, type_: str, data: Data) -> None:
    """Register an event; ``data`` may be a callable, evaluated at write time."""
    session.info.setdefault(PENDING, []).append((type_, data))


def pending(session: AsyncSession | Session) -> list[tuple[str, Data]]:
    return list(session.info.get(PENDING, ()))


async def write_pending(session: AsyncSession) -> None:
    """Turn the registered events into outbox rows, in the current transaction: one
    multi-row ``INSERT`` however many (per ``INSERT_CHUNK``)."""
    if session.info.get(PENDING):
        await session.run_sync(_write)


def _rows(session: Session) -> list[dict[str, Any]]:
    """The registered events as outbox rows, rendered now; they are no longer pending.

    Core rows, not ORM objects: the ORM's flush of new objects sends an executemany,
    one INSERT per event.
    """
    session.flush()  # defaults and ids in place: data reads as GET will
    registered: list[tuple[str, Data]] = session.info.pop(PENDING, None) or []
    _forget(session)
    now = utcnow()
    return [
        {
            "id": new_id(),
            "type": type_,
            "created_at": now,
            "data": data() if callable(data) else data,
        }
        for type_, data in registered
    ]


def _write(session: Session) -> None:
    """The registered events into the outbox (also for a commit outside a request,
    see ``_write_on_commit``)."""
    rows = _rows(session)
    # An executemany that insertmanyvalues sends as one multi-row INSERT (see
    # ``db.create_engine``); unlike ``insert().values([...])`` its SQL is cached by shape.
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(Event), rows[start : start + INSERT_CHUNK])


@event.listens_for(Session, "before_commit")
def _write_on_commit(session: Session) -> None:
    """A commit outside ``ApiRoute`` (CLI, scripts) still writes its events."""
    if session.info.get(PENDING):
        _write(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """Events of a rolled-back change never appear."""
    if not previous_transaction.nested:
        _forget(session)


def _forget(session: AsyncSession | Session) -> None:
    """Drop the pending events and any bookkeeping kept beside them (``PENDING.*``)."""
    for key in [k for k in session.info if isinstance(k, str) and k.startswith(PENDING)]:
        del session.info[key]


# Positions a batch in id order, gap-free after the highest position so far, in one
# statement. A full batch took 1,004 statements (probe, lock, ids, top, and an ORM
# executemany of one UPDATE per event) and takes 3 now (probe, lock, this).
_POSITION_BATCH: Final = text(
    """
    UPDATE events AS e SET position = t.top + t.n
    FROM (
        SELECT id,
               row_number() OVER (ORDER BY id) AS n,
               (SELECT coalesce(max(position), 0) FROM events) AS top
        FROM events
        WHERE position IS NULL
        ORDER BY id
        LIMIT :batch
    ) AS t
    WHERE e.id = t.id
    """
)


async def sequence(session: AsyncSession, batch: int = SEQUENCE_BATCH) -> int:
    """Position committed, unpositioned events in id order; returns how many.

    Run it in a transaction of its own or at the start of one: on PostgreSQL the lock
    is held until that transaction ends, and the positions count once it commits.
    """
    unpositioned = select(Event.id).where(Event.position.is_(None))
    if await session.scalar(unpositioned.limit(1)) is None:
        return 0  # the common case needs no lock
    await serialise(session, SEQUENCER_LOCK)
    result = await session.execute(_POSITION_BATCH, {"batch": batch})
    return int(getattr(result, "rowcount", 0) or 0)


async def last_position(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(Event.position), 0))) or 0)


def encode_cursor(position: int) -> str:
    return str(position)


def decode_cursor(cursor: str | None, field: str = "after") -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdecimal() or len(cursor) > 18:
        raise ValidationFailed(["query", field], "not a cursor this API returned")
    return int(cursor)


async def feed(
    session: AsyncSession, after: int, limit: int, types: Sequence[str] | None = None
) -> tuple[list[Event], str | None]:
    """Events after ``after``, oldest first, and the cursor to continue from."""
    await sequence(session)
    stmt = select(Event).where(Event.position > after)
    if types:
        stmt = stmt.where(Event.type.in_(sorted(set(types))))
    rows = list(await session.scalars(stmt.order_by(Event.position).limit(limit)))
    if not rows:
        return rows, None
    return rows, encode_cursor(int(rows[-1].position or 0))
