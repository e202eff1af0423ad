"""boms and production orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:11:52.069124
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # MO numbers: unique and increasing without serialising order creation.
        op.execute("CREATE SEQUENCE production_order_number_seq START 1")
    op.create_table(
        "boms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=False),
        sa.Column("output_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("output_quantity > 0", name=op.f("ck_boms_output_quantity_positive")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_boms_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_boms")),
        sa.UniqueConstraint("item_id", "revision", name=op.f("uq_boms_item_id_revision")),
    )
    with op.batch_alter_table("boms", schema=None) as batch_op:
        batch_op.create_index("ix_boms_item_id", ["item_id"], unique=False)
        batch_op.create_index(
            "uq_boms_default_per_item",
            ["item_id"],
            unique=True,
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        )

    op.create_table(
        "bom_by_products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bom_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bom_id"], ["boms.id"], name=op.f("fk_bom_by_products_bom_id_boms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_bom_by_products_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bom_by_products")),
    )
    op.create_table(
        "bom_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bom_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("component_item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("scrap_factor", prodorder_api.money.Exact(), nullable=False),
        sa.Column("consumption", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "consumption IN ('backflush', 'manual')", name=op.f("ck_bom_lines_consumption")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_bom_lines_quantity_positive")),
        sa.CheckConstraint(
            "scrap_factor >= 0", name=op.f("ck_bom_lines_scrap_factor_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["bom_id"], ["boms.id"], name=op.f("fk_bom_lines_bom_id_boms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["component_item_id"], ["items.id"], name=op.f("fk_bom_lines_component_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bom_lines")),
        sa.UniqueConstraint(
            "bom_id", "component_item_id", name=op.f("uq_bom_lines_bom_id_component_item_id")
        ),
    )
    with op.batch_alter_table("bom_lines", schema=None) as batch_op:
        batch_op.create_index("ix_bom_lines_component_item_id", ["component_item_id"], unique=False)

    op.create_table(
        "bom_operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bom_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.String(length=4000), nullable=True),
        sa.Column("work_center_id", sa.Uuid(), nullable=True),
        sa.Column("setup_minutes", prodorder_api.money.Exact(), nullable=False),
        sa.Column("run_minutes", prodorder_api.money.Exact(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bom_id"], ["boms.id"], name=op.f("fk_bom_operations_bom_id_boms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bom_operations")),
        sa.UniqueConstraint("bom_id", "sequence", name=op.f("uq_bom_operations_bom_id_sequence")),
    )
    op.create_table(
        "production_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("bom_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("output_location_id", sa.Uuid(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("planned_start", sa.Date(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.String(length=4000), nullable=True),
        sa.Column("produced_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("scrapped_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("material_cost", prodorder_api.money.Exact(), nullable=False),
        sa.Column("output_value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("scrap_value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("released_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("started_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("completed_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('planned', 'released', 'in_progress', 'completed', 'cancelled')",
            name=op.f("ck_production_orders_status"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_production_orders_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["bom_id"], ["boms.id"], name=op.f("fk_production_orders_bom_id_boms")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_production_orders_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_production_orders_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["output_location_id"],
            ["locations.id"],
            name=op.f("fk_production_orders_output_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_production_orders_number")),
    )
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.create_index("ix_production_orders_item_id", ["item_id"], unique=False)
        batch_op.create_index("ix_production_orders_reference", ["reference"], unique=False)
        batch_op.create_index("ix_production_orders_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_production_orders_updated_at", ["updated_at"], unique=False)

    op.create_table(
        "order_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["production_orders.id"],
            name=op.f("fk_order_history_order_id_production_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_history")),
    )
    with op.batch_alter_table("order_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_history_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.String(length=4000), nullable=True),
        sa.Column("work_center_id", sa.Uuid(), nullable=True),
        sa.Column("planned_minutes", prodorder_api.money.Exact(), nullable=False),
        sa.Column("actual_minutes", prodorder_api.money.Exact(), nullable=False),
        sa.Column("completed_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("completed_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["production_orders.id"],
            name=op.f("fk_order_operations_order_id_production_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_operations")),
        sa.UniqueConstraint(
            "order_id", "sequence", name=op.f("uq_order_operations_order_id_sequence")
        ),
    )
    op.create_table(
        "order_requirements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("component_item_id", sa.Uuid(), nullable=False),
        sa.Column("required_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("consumed_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("consumption", sa.String(length=16), nullable=False),
        sa.Column("in_bom", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_item_id"],
            ["items.id"],
            name=op.f("fk_order_requirements_component_item_id_items"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["production_orders.id"],
            name=op.f("fk_order_requirements_order_id_production_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_requirements")),
        sa.UniqueConstraint(
            "order_id",
            "component_item_id",
            name=op.f("uq_order_requirements_order_id_component_item_id"),
        ),
    )
    op.create_table(
        "order_reservations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=64), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_order_reservations_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_order_reservations_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["production_orders.id"],
            name=op.f("fk_order_reservations_order_id_production_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_reservations")),
        sa.UniqueConstraint(
            "order_id",
            "item_id",
            "location_id",
            "lot_code",
            name=op.f("uq_order_reservations_order_id_item_id_location_id_lot_code"),
        ),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE production_order_number_seq")
    op.drop_table("order_reservations")
    op.drop_table("order_requirements")
    op.drop_table("order_operations")
    with op.batch_alter_table("order_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_history_order_id"))

    op.drop_table("order_history")
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_production_orders_updated_at")
        batch_op.drop_index("ix_production_orders_status_id")
        batch_op.drop_index("ix_production_orders_reference")
        batch_op.drop_index("ix_production_orders_item_id")

    op.drop_table("production_orders")
    op.drop_table("bom_operations")
    with op.batch_alter_table("bom_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_bom_lines_component_item_id")

    op.drop_table("bom_lines")
    op.drop_table("bom_by_products")
    with op.batch_alter_table("boms", schema=None) as batch_op:
        batch_op.drop_index("uq_boms_default_per_item")
        batch_op.drop_index("ix_boms_item_id")

    op.drop_table("boms")
