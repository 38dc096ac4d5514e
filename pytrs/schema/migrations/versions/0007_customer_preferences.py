"""customer preferences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Znuny's customer_preferences (with an id of our own): the customer's language picks the
language of auto-responses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=250), nullable=False),
        sa.Column("preferences_key", sa.String(length=150), nullable=False),
        sa.Column("preferences_value", sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_preferences")),
    )
    op.create_index(
        "ix_customer_preferences_user_id", "customer_preferences", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_customer_preferences_user_id", table_name="customer_preferences")
    op.drop_table("customer_preferences")
