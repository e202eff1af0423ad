"""The stock ledger: immutable movements, and balances kept in the same transaction.

Only ``stock.ledger.apply`` writes these tables (lots and serials aside, which it
also maintains), so ``on_hand == Σ movements.quantity`` per balance always holds.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from prodorder_api.db import Base, JsonMap, UTCDateTime, metadata_index, utcnow
from prodorder_api.ids import new_id
from prodorder_api.money import ZERO, Exact

MOVEMENT_TYPES = (
    "receipt",
    "adjustment",
    "transfer_out",
    "transfer_in",
    "consumption",
    "output",
    "scrap",
    "return",
    "disassembly",
    "recovery",
)
NO_LOT = ""  # balances and movements of untracked items; shown as null


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("item_id", "code"), metadata_index("lots"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    code: Mapped[str] = mapped_column(String(64))
    expiry_date: Mapped[date | None] = mapped_column(Date)
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JsonMap, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockBalance(Base):
    __tablename__ = "stock_balances"
    __table_args__ = (
        UniqueConstraint("item_id", "location_id", "lot_code"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        Index("ix_stock_balances_location_id", "location_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    lot_code: Mapped[str] = mapped_column(String(64), default=NO_LOT)
    on_hand: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    reserved: Mapped[Decimal] = mapped_column(Exact, default=ZERO)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


class StockMovement(Base):
    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(
            "type IN (" + ", ".join(f"'{t}'" for t in MOVEMENT_TYPES) + ")", name="type"
        ),
        Index("ix_stock_movements_item_id_id", "item_id", "id"),
        # Lot tracing looks up one (item, lot)'s movements at every level.
        Index("ix_stock_movements_item_id_lot_code", "item_id", "lot_code"),
        Index("ix_stock_movements_location_id", "location_id"),
        Index("ix_stock_movements_production_order_id", "production_order_id"),
        Index("ix_stock_movements_unbuild_order_id", "unbuild_order_id"),
        Index("ix_stock_movements_purchase_order_id", "purchase_order_id"),
        Index("ix_stock_movements_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("locations.id"))
    lot_code: Mapped[str] = mapped_column(String(64), default=NO_LOT)
    quantity: Mapped[Decimal] = mapped_column(Exact)
    type: Mapped[str] = mapped_column(String(16))
    unit_cost: Mapped[Decimal] = mapped_column(Exact)
    # Signed inventory value of the movement; Σ per item == items.stock_value.
    value: Mapped[Decimal] = mapped_column(Exact)
    production_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Set on an unbuild's disassembly and recovery movements.
    unbuild_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Set on a receipt against a purchase order.
    purchase_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SerialNumber(Base):
    """One unit of a serial-tracked item. ``location_id`` is null once it left stock."""

    __tablename__ = "serial_numbers"
    __table_args__ = (UniqueConstraint("item_id", "serial"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    serial: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(slots=True)
class Movement:
    """A ``stock_movements`` row as the ledger writes it: plain values, no ORM object.
    The ledger inserts its movements with one statement past the unit of work, so the
    ORM's instrumentation bought nothing: building six ``StockMovement`` objects was
    ~10 % of a completion's CPU."""

    id: uuid.UUID
    item_id: uuid.UUID
    location_id: uuid.UUID
    lot_code: str
    quantity: Decimal
    type: str
    unit_cost: Decimal
    value: Decimal
    production_order_id: uuid.UUID | None
    unbuild_order_id: uuid.UUID | None
    purchase_order_id: uuid.UUID | None
    reference: str | None
    reason: str | None
    created_at: datetime
