"""provisioning and generations

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

``provisioned_row`` records the rows the configuration file owns, so that a start retires only
those (not rows made by other means); ``change_generation`` counts changes to what a running
daemon caches (filters, auto-responses, the address book).

Upgrading: rows that carry the old mark (comments = "pytrs.toml": queues, system addresses,
auto-responses and those responses' queue links) were made by provisioning and become owned
here. Mail accounts and agents carried no mark: at the next start, those the file names are
taken over (as any row the file names is), and the others are left alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK = "pytrs.toml"


def upgrade() -> None:
    op.create_table(
        "provisioned_row",
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("row_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("row_key", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("kind", "row_id", name=op.f("pk_provisioned_row")),
    )
    op.create_table(
        "change_generation",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_generation")),
    )
    _adopt_marked_rows()


def _adopt_marked_rows() -> None:
    # Plain SQL that both engines run alike; the key is what provisioning matches rows by.
    for kind, key in (("queue", "name"), ("system_address", "value0"), ("auto_response", "name")):
        op.execute(
            sa.text(
                f"INSERT INTO provisioned_row (kind, row_id, row_key) "
                f"SELECT '{kind}', id, {key} FROM {kind} WHERE comments = :mark"
            ).bindparams(mark=MARK)
        )
    op.execute(
        sa.text(
            "INSERT INTO provisioned_row (kind, row_id, row_key) "
            "SELECT 'queue_auto_response', l.id, "
            "CAST(l.queue_id AS VARCHAR(20)) || '/' || CAST(l.auto_response_id AS VARCHAR(20)) "
            "FROM queue_auto_response l JOIN auto_response r ON r.id = l.auto_response_id "
            "WHERE r.comments = :mark"
        ).bindparams(mark=MARK)
    )


def downgrade() -> None:
    op.drop_table("change_generation")
    op.drop_table("provisioned_row")
