"""Production orders: what to make, how much, from which BOM, and how it went."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from prodorder_api.db import Base, JsonMap, UTCDateTime, metadata_index, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import ZERO, Exact, div
from prodorder_api.orders.states import STATUSES


class ProductionOrder(Base):
    __tablename__ = "production_orders"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status"),
        Index("ix_production_orders_status_id", "status", "id"),
        Index("ix_production_orders_item_id", "item_id"),
        Index("ix_production_orders_reference", "reference"),
        Index("ix_production_orders_updated_at", "updated_at"),
        Index("ix_production_orders_production_plan_id", "production_plan_id"),
        Index("ix_production_orders_external_order_id", "external_order_id"),
        metadata_index("production_orders"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    bom_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boms.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    output_location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    due_date: Mapped[date | None] = mapped_column(Date)
    planned_start: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reference: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(String(4000))
    # The demand the order is for: a webshop's or ERP's order (and line, customer).
    demand_source: Mapped[str | None] = mapped_column(String(200))
    external_order_id: Mapped[str | None] = mapped_column(String(200))
    external_line_id: Mapped[str | None] = mapped_column(String(200))
    customer_ref: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JsonMap, default=dict, server_default=text("'{}'")
    )
    # Set on the orders a production plan's ``firm`` created.
    production_plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("production_plans.id"))
    # On hold: the status to resume to. Split off or backordered: the order it came from;
    # completed with a backorder: the order made for the rest.
    held_from: Mapped[str | None] = mapped_column(String(16))
    split_from: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("production_orders.id"))
    backorder_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("production_orders.id"))
    backorder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    produced_quantity: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    scrapped_quantity: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    # Costing: material_cost is Σ consumption value, labour_cost Σ time booked;
    # output_value and scrap_value are what has been relieved from them.
    material_cost: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    labour_cost: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    output_value: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    scrap_value: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    requirements: Mapped[list["OrderRequirement"]] = relationship(
        order_by="OrderRequirement.position", lazy="raise", cascade="all, delete-orphan"
    )
    reservations: Mapped[list["OrderReservation"]] = relationship(
        lazy="raise", cascade="all, delete-orphan"
    )
    operations: Mapped[list["OrderOperation"]] = relationship(
        order_by="OrderOperation.sequence", lazy="raise", cascade="all, delete-orphan"
    )
    labour: Mapped[list["OrderLabour"]] = relationship(
        order_by="OrderLabour.at", lazy="raise", cascade="all, delete-orphan"
    )
    history: Mapped[list["OrderEvent"]] = relationship(
        order_by="OrderEvent.id", lazy="raise", cascade="all, delete-orphan"
    )

    @property
    def remaining_quantity(self) -> Decimal:
        """Units still to report: quantity − produced − scrapped, never below 0."""
        return max(self.quantity - self.produced_quantity - self.scrapped_quantity, ZERO)

    @property
    def unrelieved_cost(self) -> Decimal:
        return self.material_cost + self.labour_cost - self.output_value - self.scrap_value

    @property
    def unit_cost(self) -> Decimal | None:
        """What one unit produced cost so far: output value ÷ produced, to six places."""
        if self.produced_quantity <= 0:
            return None
        return div(self.output_value, self.produced_quantity)


class OrderRequirement(Base):
    """One component of an order: from its BOM line, or issued from outside the BOM."""

    __tablename__ = "order_requirements"
    __table_args__ = (UniqueConstraint("order_id", "component_item_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_orders.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    component_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    required_quantity: Mapped[Decimal] = mapped_column(Exact)
    consumed_quantity: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    consumption: Mapped[str] = mapped_column(String(16))
    in_bom: Mapped[bool] = mapped_column(default=True)


class OrderReservation(Base):
    """Stock held for an order on one balance (item, location, lot).

    The balance's ``reserved`` is the sum of these over all orders; both change
    together, in the ledger's one transaction.
    """

    __tablename__ = "order_reservations"
    __table_args__ = (UniqueConstraint("order_id", "item_id", "location_id", "lot_code"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_orders.id", ondelete="CASCADE")
    )
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    lot_code: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(Exact)


class OrderOperation(Base):
    __tablename__ = "order_operations"
    __table_args__ = (UniqueConstraint("order_id", "sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_orders.id", ondelete="CASCADE")
    )
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(String(4000))
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("work_centers.id"))
    planned_minutes: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    actual_minutes: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    completed_quantity: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderEvent(Base):
    """The order's history: every transition and stock action, with its time."""

    __tablename__ = "order_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_orders.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, object] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderLabour(Base):
    """Time booked on an operation: a labour cost entry at the rate of that moment."""

    __tablename__ = "order_labour"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_orders.id", ondelete="CASCADE"), index=True
    )
    operation_sequence: Mapped[int] = mapped_column(Integer)
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("work_centers.id"))
    minutes: Mapped[Decimal] = mapped_column(Exact)
    quantity: Mapped[Decimal | None] = mapped_column(Exact)
    cost_per_hour: Mapped[Decimal] = mapped_column(Exact)
    value: Mapped[Decimal] = mapped_column(Exact)
    note: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
