import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from prodorder_api.db import Base, UTCDateTime, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import Exact


class WorkCenter(Base):
    """A machine, line or team that operations are done at; its rate values labour."""

    __tablename__ = "work_centers"
    __table_args__ = (
        CheckConstraint("cost_per_hour >= 0", name="cost_per_hour_not_negative"),
        CheckConstraint("minutes_per_day > 0", name="minutes_per_day_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    cost_per_hour: Mapped[Decimal] = mapped_column(Exact)
    minutes_per_day: Mapped[Decimal] = mapped_column(Exact)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
