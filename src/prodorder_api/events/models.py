import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from prodorder_api.db import Base, UTCDateTime, utcnow
from prodorder_api.ids import new_id


class Event(Base):
    """The transactional outbox: written in the same transaction as the change.

    ``position`` is given after commit, in commit-safe order, by the sequencer (see
    ``events.service``); the feed and the webhooks only ever see positioned events,
    so a reader paging with ``after`` never skips one committed late.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("uq_events_position", "position", unique=True),
        Index(
            "ix_events_unpositioned",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where="position IS NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    position: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
