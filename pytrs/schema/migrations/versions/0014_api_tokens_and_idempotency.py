"""API tokens and remembered creates

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``api_token``: the JSON API's bearer tokens, kept as SHA-256 hashes, each acting as one agent
with a scope (read, write or admin). ``api_idempotency``: the answer to each create made with
an ``Idempotency-Key``, so that a retried create makes one ticket.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("expires_time", sa.DateTime(), nullable=True),
        sa.Column("last_used_time", sa.DateTime(), nullable=True),
        sa.Column("revoked_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_token_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_index(op.f("ix_api_token_user_id"), "api_token", ["user_id"], unique=False)
    op.create_table(
        "api_idempotency",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_idempotency_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "idempotency_key", name=op.f("pk_api_idempotency")),
    )
    op.create_index(
        op.f("ix_api_idempotency_create_time"), "api_idempotency", ["create_time"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_idempotency_create_time"), table_name="api_idempotency")
    op.drop_table("api_idempotency")
    if op.get_bind().dialect.name != "mysql":  # MariaDB's foreign key needs it until the end
        op.drop_index(op.f("ix_api_token_user_id"), table_name="api_token")
    op.drop_table("api_token")
