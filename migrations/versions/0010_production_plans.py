"""production plans: lines, MRP proposals, and the orders firmed from them

Revision ID: 0010
Revises: 0011
Create Date: 2026-11-25 02:59:12.655908
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "production_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("firmed_at", prodorder_api.db.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'proposed', 'firmed')", name=op.f("ck_production_plans_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_plans")),
    )
    op.create_table(
        "production_plan_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_production_plan_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_production_plan_lines_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["production_plans.id"],
            name=op.f("fk_production_plan_lines_plan_id_production_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_plan_lines")),
    )
    with op.batch_alter_table("production_plan_lines", schema=None) as batch_op:
        batch_op.create_index("ix_production_plan_lines_plan_id", ["plan_id"], unique=False)

    op.create_table(
        "production_plan_proposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("pegged_to", sa.Text(), nullable=False),
        sa.Column("production_order_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('production', 'purchase')", name=op.f("ck_production_plan_proposals_kind")
        ),
        sa.CheckConstraint(
            "quantity > 0", name=op.f("ck_production_plan_proposals_quantity_positive")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_production_plan_proposals_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["production_plans.id"],
            name=op.f("fk_production_plan_proposals_plan_id_production_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["production_order_id"],
            ["production_orders.id"],
            name=op.f("fk_production_plan_proposals_production_order_id_production_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_plan_proposals")),
    )
    with op.batch_alter_table("production_plan_proposals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_production_plan_proposals_plan_id_position", ["plan_id", "position"], unique=False
        )

    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("production_plan_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_production_orders_production_plan_id", ["production_plan_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_production_orders_production_plan_id_production_plans"),
            "production_plans",
            ["production_plan_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_production_orders_production_plan_id_production_plans"),
            type_="foreignkey",
        )
        batch_op.drop_index("ix_production_orders_production_plan_id")
        batch_op.drop_column("production_plan_id")

    with op.batch_alter_table("production_plan_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_production_plan_proposals_plan_id_position")

    op.drop_table("production_plan_proposals")
    with op.batch_alter_table("production_plan_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_production_plan_lines_plan_id")

    op.drop_table("production_plan_lines")
    op.drop_table("production_plans")
