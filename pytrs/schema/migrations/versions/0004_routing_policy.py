"""routing policy

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Znuny's dynamic_field / dynamic_field_value (external ticket numbers recognised by rules) and
article_data_mime_send_error (bounces and permanent relay refusals of our own mail), and an
index that lets copies of one mail sent to several addresses find each other.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _audit() -> list[sa.Column]:
    return [
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_index("ix_inbox_message_dedup_key", "inbox_message", ["dedup_key"], unique=False)
    op.create_table(
        "dynamic_field",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("internal_field", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("field_order", sa.Integer(), nullable=False),
        sa.Column("field_type", sa.String(length=200), nullable=False),
        sa.Column("object_type", sa.String(length=100), nullable=False),
        sa.Column("config", sa.Text(), nullable=True),
        sa.Column("valid_id", sa.SmallInteger(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["valid_id"], ["valid.id"], name=op.f("fk_dynamic_field_valid_id_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dynamic_field")),
        sa.UniqueConstraint("name", name=op.f("uq_dynamic_field_name")),
    )
    op.create_table(
        "dynamic_field_value",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("value_date", sa.DateTime(), nullable=True),
        sa.Column("value_int", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["dynamic_field.id"],
            name=op.f("fk_dynamic_field_value_field_id_dynamic_field"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dynamic_field_value")),
    )
    op.create_index(
        "ix_dynamic_field_value_field_object",
        "dynamic_field_value",
        ["field_id", "object_id"],
        unique=False,
    )
    op.create_table(
        "article_data_mime_send_error",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("article_id", _BIG_ID, nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("log_message", sa.Text(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article.id"],
            name=op.f("fk_article_data_mime_send_error_article_id_article"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_data_mime_send_error")),
    )
    op.create_index(
        op.f("ix_article_data_mime_send_error_article_id"),
        "article_data_mime_send_error",
        ["article_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_article_data_mime_send_error_article_id"),
        table_name="article_data_mime_send_error",
    )
    op.drop_table("article_data_mime_send_error")
    op.drop_index("ix_dynamic_field_value_field_object", table_name="dynamic_field_value")
    op.drop_table("dynamic_field_value")
    op.drop_table("dynamic_field")
    op.drop_index("ix_inbox_message_dedup_key", table_name="inbox_message")
