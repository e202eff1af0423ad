"""Production plans: the master plan (what to make, how much, by when) and the
proposals its last MRP run made."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from prodorder_api.db import Base, UTCDateTime, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import Exact

PLAN_STATUSES = ("new", "proposed", "firmed")
PROPOSAL_KINDS = ("production", "purchase")


class ProductionPlan(Base):
    __tablename__ = "production_plans"
    __table_args__ = (CheckConstraint("status IN ('new', 'proposed', 'firmed')", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(200))
    # new: never run; proposed: the last run's proposals are stored; firmed: their
    # production proposals became planned orders (and, when asked, their purchase
    # proposals purchase orders).
    status: Mapped[str] = mapped_column(String(16), default="new")
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    firmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list["PlanLine"]] = relationship(
        order_by="PlanLine.position", lazy="raise", cascade="all, delete-orphan"
    )


class PlanLine(Base):
    """Independent demand: a product, a quantity, a due date."""

    __tablename__ = "production_plan_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_production_plan_lines_plan_id", "plan_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_plans.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    due_date: Mapped[date] = mapped_column(Date)


class PlanProposal(Base):
    """One planned order of the last run: make or buy ``quantity`` of an item by
    ``due_date``, starting on ``start_date``. A run replaces them all.

    ``pegged_to`` is the JSON array of ``{type, id, quantity}`` exactly as the API
    shows it, rendered once by the run (see ``planning.presenter``).
    """

    __tablename__ = "production_plan_proposals"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("kind IN ('production', 'purchase')", name="kind"),
        Index("ix_production_plan_proposals_plan_id_position", "plan_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("production_plans.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    start_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    level: Mapped[int] = mapped_column(Integer)
    pegged_to: Mapped[str] = mapped_column(Text)
    # The planned order ``firm`` created from it.
    production_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("production_orders.id")
    )
    # The purchase order ``firm`` with ``purchases`` put it on.
    purchase_order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("purchase_orders.id"))
