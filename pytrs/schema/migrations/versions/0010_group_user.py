"""group_user: agents' permissions on groups

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Znuny's ``group_user``: one row per user, group and permission key (``ro``, ``move_into``,
``create``, ``note``, ``owner``, ``priority``, ``rw``). A queue belongs to one group
(``queue.group_id``), so a user's permission on that group is its access to the queue; a
``rw`` member of group ``admin`` (id 2) is an administrator. Written by ``pytrs users``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_user",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("permission_key", sa.String(length=20), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_group_user_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["permission_groups.id"],
            name=op.f("fk_group_user_group_id_permission_groups"),
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "group_id", "permission_key", name=op.f("pk_group_user")
        ),
    )
    op.create_index("ix_group_user_group_id", "group_user", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_group_user_group_id", table_name="group_user")
    op.drop_table("group_user")
