"""The event outbox. (Placeholder interface; filled in by the events work.)

Services register events on the session while they work (``add``); ``write_pending``
turns them into outbox rows right before the request's transaction commits.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

PENDING = "prodorder.pending_events"


def add(session: AsyncSession, type_: str, data: Any) -> None:
    """Register an event; ``data`` may be a callable, evaluated at write time."""
    session.info.setdefault(PENDING, []).append((type_, data))


async def write_pending(session: AsyncSession) -> None:
    session.info.pop(PENDING, None)
