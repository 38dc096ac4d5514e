"""ticket links

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09

Znuny's link tables: ``link_object`` (the kinds of linked things: ``Ticket``), ``link_type``
(``Normal``, ``ParentChild``), ``link_state`` (``Valid``) and ``link_relation``, one row per
link. Merging a ticket links the target to the source as parent and child; a follow-up opened
as a new ticket is linked to the closed one as ``Normal``.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
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
    small_id = sa.SmallInteger().with_variant(sa.Integer(), "sqlite")
    link_object = op.create_table(
        "link_object",
        sa.Column("id", small_id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_object")),
        sa.UniqueConstraint("name", name=op.f("uq_link_object_name")),
    )
    tables = {}
    for name in ("link_type", "link_state"):
        tables[name] = op.create_table(
            name,
            sa.Column("id", small_id, nullable=False),
            sa.Column("name", sa.String(length=50), nullable=False),
            sa.Column("valid_id", sa.SmallInteger(), nullable=False),
            *_audit(),
            sa.ForeignKeyConstraint(
                ["valid_id"], ["valid.id"], name=op.f(f"fk_{name}_valid_id_valid")
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
            sa.UniqueConstraint("name", name=op.f(f"uq_{name}_name")),
        )
    op.create_table(
        "link_relation",
        sa.Column("source_object_id", sa.SmallInteger(), nullable=False),
        sa.Column("source_key", sa.String(length=50), nullable=False),
        sa.Column("target_object_id", sa.SmallInteger(), nullable=False),
        sa.Column("target_key", sa.String(length=50), nullable=False),
        sa.Column("type_id", sa.SmallInteger(), nullable=False),
        sa.Column("state_id", sa.SmallInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["source_object_id"], ["link_object.id"],
                                name=op.f("fk_link_relation_source_object_id_link_object")),
        sa.ForeignKeyConstraint(["target_object_id"], ["link_object.id"],
                                name=op.f("fk_link_relation_target_object_id_link_object")),
        sa.ForeignKeyConstraint(["type_id"], ["link_type.id"],
                                name=op.f("fk_link_relation_type_id_link_type")),
        sa.ForeignKeyConstraint(["state_id"], ["link_state.id"],
                                name=op.f("fk_link_relation_state_id_link_state")),
        sa.UniqueConstraint(
            "source_object_id", "source_key", "target_object_id", "target_key", "type_id",
            "state_id", name="uq_link_relation_link",
        ),
    )  # fmt: skip
    op.create_index("ix_link_relation_source", "link_relation", ["source_object_id", "source_key"])
    op.create_index("ix_link_relation_target", "link_relation", ["target_object_id", "target_key"])
    now = datetime.now(UTC).replace(tzinfo=None)
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    op.bulk_insert(link_object, [{"id": 1, "name": "Ticket"}])
    op.bulk_insert(
        tables["link_type"],
        [{"id": 1, "name": "Normal", "valid_id": 1, **audit},
         {"id": 2, "name": "ParentChild", "valid_id": 1, **audit}],
    )  # fmt: skip
    op.bulk_insert(tables["link_state"], [{"id": 1, "name": "Valid", "valid_id": 1, **audit}])


def downgrade() -> None:
    op.drop_index("ix_link_relation_target", table_name="link_relation")
    op.drop_index("ix_link_relation_source", table_name="link_relation")
    op.drop_table("link_relation")
    op.drop_table("link_state")
    op.drop_table("link_type")
    op.drop_table("link_object")
