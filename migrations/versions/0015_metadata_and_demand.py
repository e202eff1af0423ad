"""metadata on items, BOMs, production orders and lots; demand links on production orders

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import prodorder_api.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("items", "boms", "production_orders", "lots")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "metadata",
                    prodorder_api.db.JsonMap,
                    server_default=sa.text("'{}'"),
                    nullable=False,
                )
            )
        if postgresql:  # a GIN index answers `@>`; SQLite has none for JSON
            op.create_index(
                f"ix_{table}_metadata",
                table,
                ["metadata"],
                postgresql_using="gin",
                postgresql_ops={"metadata": "jsonb_path_ops"},
            )
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("demand_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("external_order_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("external_line_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("customer_ref", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ix_production_orders_external_order_id", ["external_order_id"], unique=False
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("production_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_production_orders_external_order_id")
        for column in ("customer_ref", "external_line_id", "external_order_id", "demand_source"):
            batch_op.drop_column(column)
    for table in reversed(TABLES):
        if postgresql:
            op.drop_index(f"ix_{table}_metadata", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("metadata")
