"""system data

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Znuny's system_data key/value table (the generated loop-marker key lives there when the
configuration names none).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "system_data",
        sa.Column("data_key", sa.String(length=160), nullable=False),
        sa.Column("data_value", sa.Text(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("data_key", name=op.f("pk_system_data")),
    )


def downgrade() -> None:
    op.drop_table("system_data")
