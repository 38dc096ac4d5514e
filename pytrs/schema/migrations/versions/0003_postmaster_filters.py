"""postmaster filters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Znuny's postmaster_filter table (with an id of our own) for admin-written filter rules.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "postmaster_filter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("f_name", sa.String(length=200), nullable=False),
        sa.Column("f_stop", sa.SmallInteger(), nullable=False),
        sa.Column("f_type", sa.String(length=20), nullable=False),
        sa.Column("f_key", sa.String(length=200), nullable=False),
        sa.Column("f_value", sa.Text(), nullable=False),
        sa.Column("f_not", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postmaster_filter")),
    )
    op.create_index(
        op.f("ix_postmaster_filter_f_name"), "postmaster_filter", ["f_name"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_postmaster_filter_f_name"), table_name="postmaster_filter")
    op.drop_table("postmaster_filter")
