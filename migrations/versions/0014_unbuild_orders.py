"""unbuild orders: finished goods taken apart, movement types disassembly and recovery

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = (
    "'receipt', 'adjustment', 'transfer_out', 'transfer_in', 'consumption', 'output', "
    "'scrap', 'return'"
)
NEW_TYPES = OLD_TYPES + ", 'disassembly', 'recovery'"


def upgrade() -> None:
    op.create_table(
        "unbuild_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("production_order_id", sa.Uuid(), nullable=True),
        sa.Column("bom_id", sa.Uuid(), nullable=True),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=64), nullable=True),
        sa.Column("serials", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_unbuild_orders_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["bom_id"], ["boms.id"], name=op.f("fk_unbuild_orders_bom_id_boms")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_unbuild_orders_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_unbuild_orders_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["production_order_id"],
            ["production_orders.id"],
            name=op.f("fk_unbuild_orders_production_order_id_production_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unbuild_orders")),
    )
    with op.batch_alter_table("unbuild_orders", schema=None) as batch_op:
        batch_op.create_index("ix_unbuild_orders_item_id", ["item_id"], unique=False)
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unbuild_order_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_stock_movements_unbuild_order_id", ["unbuild_order_id"], unique=False
        )
        batch_op.drop_constraint(op.f("ck_stock_movements_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_type"), f"type IN ({NEW_TYPES})")


def downgrade() -> None:
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movements_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_type"), f"type IN ({OLD_TYPES})")
        batch_op.drop_index("ix_stock_movements_unbuild_order_id")
        batch_op.drop_column("unbuild_order_id")
    with op.batch_alter_table("unbuild_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_unbuild_orders_item_id")
    op.drop_table("unbuild_orders")
