"""Purchase orders and their lines: what was ordered from a supplier, and what of it
has arrived."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from prodorder_api.db import Base, JsonMap, UTCDateTime, metadata_index, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import ZERO, Exact
from prodorder_api.purchasing.states import STATUSES


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status"),
        Index("ix_purchase_orders_status_id", "status", "id"),
        Index("ix_purchase_orders_supplier", "supplier"),
        metadata_index("purchase_orders"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Null: a plan's firm made it for items with no ``default_supplier``.
    supplier: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    # Set on the purchase orders a production plan's ``firm`` created.
    production_plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("production_plans.id"))
    # ``metadata`` in the table; SQLAlchemy's declarative classes reserve that name.
    meta: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JsonMap, default=dict, server_default=text("'{}'")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list["PurchaseOrderLine"]] = relationship(
        order_by="PurchaseOrderLine.position", lazy="raise", cascade="all, delete-orphan"
    )


class PurchaseOrderLine(Base):
    """``quantity`` of an item ordered at ``unit_cost``, due on ``due_date``; a receipt
    adds to ``received_quantity``, which may pass the quantity (over-delivery)."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("received_quantity >= 0", name="received_not_negative"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_not_negative"),
        Index("ix_purchase_order_lines_purchase_order_id", "purchase_order_id"),
        Index("ix_purchase_order_lines_item_id", "item_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    purchase_order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    unit_cost: Mapped[Decimal] = mapped_column(Exact)
    due_date: Mapped[date] = mapped_column(Date)
    received_quantity: Mapped[Decimal] = mapped_column(Exact, default=ZERO)

    @property
    def remaining_quantity(self) -> Decimal:
        """Still to come: quantity − received, never below 0."""
        return max(self.quantity - self.received_quantity, ZERO)
