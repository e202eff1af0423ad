"""production orders that bend: hold, split, backorders, returns

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 17:00:00.000000

A held order remembers the status to resume to (`held_from`); a split-off order names
its original (`split_from`); a backorder names the order it finishes (`backorder_of`),
which names it back (`backorder_id`). Components given back from an order are
movements of the new type `return`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "'planned', 'released', 'in_progress', 'completed', 'cancelled'"
NEW_STATUSES = "'planned', 'released', 'in_progress', 'on_hold', 'completed', 'cancelled'"
OLD_TYPES = (
    "'receipt', 'adjustment', 'transfer_out', 'transfer_in', 'consumption', 'output', 'scrap'"
)
NEW_TYPES = OLD_TYPES + ", 'return'"


def upgrade() -> None:
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_from", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("split_from", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("backorder_of", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("backorder_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_production_orders_split_from_production_orders"),
            "production_orders",
            ["split_from"],
            ["id"],
        )
        batch_op.create_foreign_key(
            op.f("fk_production_orders_backorder_of_production_orders"),
            "production_orders",
            ["backorder_of"],
            ["id"],
        )
        batch_op.drop_constraint(op.f("ck_production_orders_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_production_orders_status"), f"status IN ({NEW_STATUSES})"
        )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movements_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_type"), f"type IN ({NEW_TYPES})")


def downgrade() -> None:
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_movements_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_stock_movements_type"), f"type IN ({OLD_TYPES})")
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_production_orders_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_production_orders_status"), f"status IN ({OLD_STATUSES})"
        )
        batch_op.drop_constraint(
            op.f("fk_production_orders_backorder_of_production_orders"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            op.f("fk_production_orders_split_from_production_orders"), type_="foreignkey"
        )
        batch_op.drop_column("backorder_id")
        batch_op.drop_column("backorder_of")
        batch_op.drop_column("split_from")
        batch_op.drop_column("held_from")
