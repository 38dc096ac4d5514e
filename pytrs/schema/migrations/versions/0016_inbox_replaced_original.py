"""quarantine: a replaced inbox row keeps its original mail

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

``pytrs inbox replace|edit`` puts a corrected copy of a quarantined mail in ``raw`` and queues
it again; the bytes as received move once to ``original_raw`` (a second replace keeps the first
original), and ``replaced_by``/``replaced_at`` say who replaced it last, and when.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key by rebuilding the table.
    with op.batch_alter_table("inbox_message") as batch:
        batch.add_column(sa.Column("original_raw", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("replaced_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("replaced_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_inbox_message_replaced_by_users"), "users", ["replaced_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_message") as batch:
        batch.drop_constraint(op.f("fk_inbox_message_replaced_by_users"), type_="foreignkey")
        batch.drop_column("replaced_at")
        batch.drop_column("replaced_by")
        batch.drop_column("original_raw")
