"""items, locations and the stock ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:05:08.368261
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money
from prodorder_api.ids import new_id

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uom", sa.String(length=16), nullable=False),
        sa.Column("tracking", sa.String(length=8), nullable=False),
        sa.Column("standard_cost", prodorder_api.money.Exact(), nullable=True),
        sa.Column("average_cost", prodorder_api.money.Exact(), nullable=True),
        sa.Column("stock_value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("tracking IN ('none', 'lot', 'serial')", name=op.f("ck_items_tracking")),
        sa.CheckConstraint("lead_time_days >= 0", name=op.f("ck_items_lead_time_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("sku", name=op.f("uq_items_sku")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "locations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    op.create_table(
        "lots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_lots_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("item_id", "code", name=op.f("uq_lots_item_id_code")),
    )
    op.create_table(
        "serial_numbers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_serial_numbers_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_serial_numbers_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_numbers")),
        sa.UniqueConstraint("item_id", "serial", name=op.f("uq_serial_numbers_item_id_serial")),
    )
    op.create_table(
        "stock_balances",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=64), nullable=False),
        sa.Column("on_hand", prodorder_api.money.Exact(), nullable=False),
        sa.Column("reserved", prodorder_api.money.Exact(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_balances_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_stock_balances_reserved_within_on_hand")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_stock_balances_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_stock_balances_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_balances_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_balances")),
        sa.UniqueConstraint(
            "item_id",
            "location_id",
            "lot_code",
            name=op.f("uq_stock_balances_item_id_location_id_lot_code"),
        ),
    )
    with op.batch_alter_table("stock_balances", schema=None) as batch_op:
        batch_op.create_index("ix_stock_balances_location_id", ["location_id"], unique=False)

    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=64), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("unit_cost", prodorder_api.money.Exact(), nullable=False),
        sa.Column("value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("production_order_id", sa.Uuid(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "type IN ('receipt', 'adjustment', 'transfer_out', 'transfer_in', 'consumption', 'output', 'scrap')",
            name=op.f("ck_stock_movements_type"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_stock_movements_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_movements_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index("ix_stock_movements_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_stock_movements_item_id_id", ["item_id", "id"], unique=False)
        batch_op.create_index("ix_stock_movements_location_id", ["location_id"], unique=False)
        batch_op.create_index(
            "ix_stock_movements_production_order_id", ["production_order_id"], unique=False
        )

    # The default location, named wherever a location is optional.
    locations = sa.table(
        "locations",
        sa.column("id", sa.Uuid()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", prodorder_api.db.UTCDateTime()),
    )
    op.bulk_insert(
        locations,
        [
            {
                "id": new_id(),
                "code": "MAIN",
                "name": "Main warehouse",
                "created_at": prodorder_api.db.utcnow(),
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_movements_production_order_id")
        batch_op.drop_index("ix_stock_movements_location_id")
        batch_op.drop_index("ix_stock_movements_item_id_id")
        batch_op.drop_index("ix_stock_movements_created_at")

    op.drop_table("stock_movements")
    with op.batch_alter_table("stock_balances", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_balances_location_id")

    op.drop_table("stock_balances")
    op.drop_table("serial_numbers")
    op.drop_table("lots")
    op.drop_table("locations")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_updated_at"))

    op.drop_table("items")
