"""purchase orders and their lines; receipts against them; items' default supplier;
plan proposals firmed into purchase orders

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE SEQUENCE purchase_order_number_seq START 1")
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("production_plan_id", sa.Uuid(), nullable=True),
        sa.Column(
            "metadata", prodorder_api.db.JsonMap, server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("received_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'received', 'cancelled')", name=op.f("ck_purchase_orders_status")
        ),
        sa.ForeignKeyConstraint(
            ["production_plan_id"],
            ["production_plans.id"],
            name=op.f("fk_purchase_orders_production_plan_id_production_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_purchase_orders_number")),
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index("ix_purchase_orders_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_purchase_orders_supplier", ["supplier"], unique=False)
    if postgresql:  # a GIN index answers `@>`; SQLite has none for JSON
        op.create_index(
            "ix_purchase_orders_metadata",
            "purchase_orders",
            ["metadata"],
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        )
    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purchase_order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("unit_cost", prodorder_api.money.Exact(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("received_quantity", prodorder_api.money.Exact(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "received_quantity >= 0", name=op.f("ck_purchase_order_lines_received_not_negative")
        ),
        sa.CheckConstraint(
            "unit_cost >= 0", name=op.f("ck_purchase_order_lines_unit_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_purchase_order_lines_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["purchase_order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
    )
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_purchase_order_lines_purchase_order_id", ["purchase_order_id"], unique=False
        )
        batch_op.create_index("ix_purchase_order_lines_item_id", ["item_id"], unique=False)
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purchase_order_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_stock_movements_purchase_order_id", ["purchase_order_id"], unique=False
        )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_supplier", sa.String(length=200), nullable=True))
    with op.batch_alter_table("production_plan_proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purchase_order_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_production_plan_proposals_purchase_order_id_purchase_orders"),
            "purchase_orders",
            ["purchase_order_id"],
            ["id"],
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("production_plan_proposals", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_production_plan_proposals_purchase_order_id_purchase_orders"),
            type_="foreignkey",
        )
        batch_op.drop_column("purchase_order_id")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("default_supplier")
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_movements_purchase_order_id")
        batch_op.drop_column("purchase_order_id")
    with op.batch_alter_table("purchase_order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_purchase_order_lines_item_id")
        batch_op.drop_index("ix_purchase_order_lines_purchase_order_id")
    op.drop_table("purchase_order_lines")
    if postgresql:
        op.drop_index("ix_purchase_orders_metadata", table_name="purchase_orders")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_purchase_orders_supplier")
        batch_op.drop_index("ix_purchase_orders_status_id")
    op.drop_table("purchase_orders")
    if postgresql:
        op.execute("DROP SEQUENCE purchase_order_number_seq")
