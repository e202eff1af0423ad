"""Unbuild orders: finished goods taken apart into their components again."""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from prodorder_api.db import Base, UTCDateTime, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import Exact


class UnbuildOrder(Base):
    """One unbuild, done when made: its movements (``unbuild_order_id``) are the rest."""

    __tablename__ = "unbuild_orders"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_unbuild_orders_item_id", "item_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    # The order whose actual consumption is reversed; null: the item's default BOM.
    production_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("production_orders.id")
    )
    bom_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("boms.id"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    lot_code: Mapped[str | None] = mapped_column(String(64))
    serials: Mapped[list[str] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(2000))
    # What the goods taken apart were worth (and by-products taken back out): Σ of
    # the recovered components' values, exactly.
    value: Mapped[Decimal] = mapped_column(Exact)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
