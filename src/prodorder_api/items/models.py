import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from prodorder_api.db import Base, JsonMap, UTCDateTime, metadata_index, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import ZERO, Exact

TRACKING_MODES = ("none", "lot", "serial")


class Item(Base):
    """Anything stocked: a bought component or a made product.

    ``stock_value`` is the item's inventory value, kept beside its on-hand so the
    moving average never drifts from the ledger: it always equals the sum of the
    item's movement values. ``average_cost`` is that value over the on-hand,
    rounded to six places (unchanged while nothing is on hand).
    """

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("tracking IN ('none', 'lot', 'serial')", name="tracking"),
        CheckConstraint("lead_time_days >= 0", name="lead_time_days"),
        metadata_index("items"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    uom: Mapped[str] = mapped_column(String(16), default="pcs")
    tracking: Mapped[str] = mapped_column(String(8), default="none")
    standard_cost: Mapped[Decimal | None] = mapped_column(Exact)
    average_cost: Mapped[Decimal | None] = mapped_column(Exact)
    stock_value: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    lead_time_days: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JsonMap, default=dict, server_default=text("'{}'")
    )
    # Who a plan's firmed purchases of the item are ordered from (null: no one yet).
    default_supplier: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
