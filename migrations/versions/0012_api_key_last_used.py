"""api keys: when each was last used

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 10:30:00.000000

`GET /v1/api-keys` shows when a key was last used, to the minute: the guard writes it
at most once a minute per key, when its cached lookup is refreshed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from prodorder_api.db import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
