"""standard templates

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Znuny's ``standard_template`` (answer, forward, create and note templates; the web view uses
those of type ``Answer``) and ``queue_standard_template`` (the templates each queue offers).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _audit() -> list[sa.Column[object]]:
    return [
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "standard_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=250), nullable=True),
        sa.Column("template_type", sa.String(length=100), nullable=False),
        sa.Column("comments", sa.String(length=250), nullable=True),
        sa.Column("valid_id", sa.SmallInteger(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["valid_id"], ["valid.id"], name=op.f("fk_standard_template_valid_id_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standard_template")),
        sa.UniqueConstraint("name", name=op.f("uq_standard_template_name")),
    )
    op.create_table(
        "queue_standard_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("standard_template_id", sa.Integer(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name=op.f("fk_queue_standard_template_queue_id_queue")
        ),
        sa.ForeignKeyConstraint(
            ["standard_template_id"],
            ["standard_template.id"],
            name=op.f("fk_queue_standard_template_standard_template_id_standard_template"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_standard_template")),
        sa.UniqueConstraint("queue_id", "standard_template_id", name="uq_queue_standard_template"),
    )
    op.create_index(
        "ix_queue_standard_template_template",
        "queue_standard_template",
        ["standard_template_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_queue_standard_template_template", table_name="queue_standard_template")
    op.drop_table("queue_standard_template")
    op.drop_table("standard_template")
