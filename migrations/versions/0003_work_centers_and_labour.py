"""work centers and labour

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:20:30.196566
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db
import prodorder_api.money

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_centers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cost_per_hour", prodorder_api.money.Exact(), nullable=False),
        sa.Column("minutes_per_day", prodorder_api.money.Exact(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "cost_per_hour >= 0", name=op.f("ck_work_centers_cost_per_hour_not_negative")
        ),
        sa.CheckConstraint(
            "minutes_per_day > 0", name=op.f("ck_work_centers_minutes_per_day_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_centers")),
        sa.UniqueConstraint("code", name=op.f("uq_work_centers_code")),
    )
    op.create_table(
        "order_labour",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("operation_sequence", sa.Integer(), nullable=False),
        sa.Column("work_center_id", sa.Uuid(), nullable=True),
        sa.Column("minutes", prodorder_api.money.Exact(), nullable=False),
        sa.Column("quantity", prodorder_api.money.Exact(), nullable=True),
        sa.Column("cost_per_hour", prodorder_api.money.Exact(), nullable=False),
        sa.Column("value", prodorder_api.money.Exact(), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("at", prodorder_api.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["production_orders.id"],
            name=op.f("fk_order_labour_order_id_production_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_center_id"],
            ["work_centers.id"],
            name=op.f("fk_order_labour_work_center_id_work_centers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_labour")),
    )
    with op.batch_alter_table("order_labour", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_labour_order_id"), ["order_id"], unique=False)

    with op.batch_alter_table("bom_operations", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_bom_operations_work_center_id_work_centers"),
            "work_centers",
            ["work_center_id"],
            ["id"],
        )

    with op.batch_alter_table("order_operations", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_order_operations_work_center_id_work_centers"),
            "work_centers",
            ["work_center_id"],
            ["id"],
        )

    # Existing orders booked no labour: 0, then no default (the model sets it).
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "labour_cost", prodorder_api.money.Exact(), nullable=False, server_default="0"
            )
        )
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.alter_column("labour_cost", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.drop_column("labour_cost")

    with op.batch_alter_table("order_operations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_order_operations_work_center_id_work_centers"), type_="foreignkey"
        )

    with op.batch_alter_table("bom_operations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_bom_operations_work_center_id_work_centers"), type_="foreignkey"
        )

    with op.batch_alter_table("order_labour", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_labour_order_id"))

    op.drop_table("order_labour")
    op.drop_table("work_centers")
