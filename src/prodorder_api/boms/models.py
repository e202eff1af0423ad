"""Bills of materials: revisions of what one product is made from, and how."""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
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
from prodorder_api.money import ZERO, Exact


class Bom(Base):
    __tablename__ = "boms"
    __table_args__ = (
        UniqueConstraint("item_id", "revision"),
        CheckConstraint("output_quantity > 0", name="output_quantity_positive"),
        Index("ix_boms_item_id", "item_id"),
        metadata_index("boms"),
        # At most one default per item, whatever races.
        Index(
            "uq_boms_default_per_item",
            "item_id",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    revision: Mapped[str] = mapped_column(String(64))
    output_quantity: Mapped[Decimal] = mapped_column(Exact)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the first production order uses the BOM; from then on it is immutable.
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JsonMap, default=dict, server_default=text("'{}'")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list["BomLine"]] = relationship(
        order_by="BomLine.position", lazy="raise", cascade="all, delete-orphan"
    )
    operations: Mapped[list["BomOperation"]] = relationship(
        order_by="BomOperation.sequence", lazy="raise", cascade="all, delete-orphan"
    )
    by_products: Mapped[list["BomByProduct"]] = relationship(
        order_by="BomByProduct.position", lazy="raise", cascade="all, delete-orphan"
    )


class BomLine(Base):
    __tablename__ = "bom_lines"
    __table_args__ = (
        UniqueConstraint("bom_id", "component_item_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("scrap_factor >= 0", name="scrap_factor_not_negative"),
        CheckConstraint("consumption IN ('backflush', 'manual')", name="consumption"),
        Index("ix_bom_lines_component_item_id", "component_item_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bom_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boms.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    component_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
    scrap_factor: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    consumption: Mapped[str] = mapped_column(String(16), default="backflush")


class BomOperation(Base):
    __tablename__ = "bom_operations"
    __table_args__ = (UniqueConstraint("bom_id", "sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bom_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boms.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(String(4000))
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("work_centers.id"))
    setup_minutes: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    run_minutes: Mapped[Decimal] = mapped_column(Exact, default=ZERO)


class BomByProduct(Base):
    __tablename__ = "bom_by_products"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bom_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("boms.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[Decimal] = mapped_column(Exact)
