"""SLAs, business calendars and escalation clocks

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

``sla``: Znuny's service levels (escalation targets that override the queue's).
``business_calendar``: the ``[[calendars]]`` working hours and holidays, expanded, so that every
process on the database counts working time alike. ``ticket_escalation``: the scheduler's clock
per ticket, with ``next_due`` indexed so that the due scan reads only what is due. On
PostgreSQL the ticket's epoch columns become 64-bit (SQLite's integers are already).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EPOCH_COLUMNS = (
    "until_time", "escalation_time", "escalation_update_time", "escalation_response_time",
    "escalation_solution_time",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "sla",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("calendar_name", sa.String(length=100), nullable=True),
        sa.Column("first_response_time", sa.Integer(), nullable=False),
        sa.Column("first_response_notify", sa.SmallInteger(), nullable=True),
        sa.Column("update_time", sa.Integer(), nullable=False),
        sa.Column("update_notify", sa.SmallInteger(), nullable=True),
        sa.Column("solution_time", sa.Integer(), nullable=False),
        sa.Column("solution_notify", sa.SmallInteger(), nullable=True),
        sa.Column("valid_id", sa.SmallInteger(), nullable=False),
        sa.Column("comments", sa.String(length=250), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["valid_id"], ["valid.id"], name=op.f("fk_sla_valid_id_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_name")),
    )
    op.create_table(
        "business_calendar",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_business_calendar")),
    )
    op.create_table(
        "ticket_escalation",
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("next_due", BigId, nullable=True),
        *[
            sa.Column(f"{kind}_{part}", BigId, nullable=False)
            for kind in ("response", "update", "solution")
            for part in ("time", "notify")
        ],
        *[
            sa.Column(f"{kind}_stage", sa.SmallInteger(), nullable=False)
            for kind in ("response", "update", "solution")
        ],
        sa.Column("pending_time", BigId, nullable=False),
        sa.Column("pending_stage", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_ticket_escalation_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_escalation")),
    )
    op.create_index(
        op.f("ix_ticket_escalation_next_due"), "ticket_escalation", ["next_due"], unique=False
    )
    if op.get_bind().dialect.name != "sqlite":  # 64-bit on PostgreSQL and MariaDB
        for column in EPOCH_COLUMNS:
            op.alter_column(
                "ticket", column, type_=sa.BigInteger(), existing_type=sa.Integer(),
                existing_nullable=False,
            )  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # 64-bit on PostgreSQL and MariaDB
        for column in EPOCH_COLUMNS:
            op.alter_column(
                "ticket", column, type_=sa.Integer(), existing_type=sa.BigInteger(),
                existing_nullable=False,
            )  # fmt: skip
    op.drop_index(op.f("ix_ticket_escalation_next_due"), table_name="ticket_escalation")
    op.drop_table("ticket_escalation")
    op.drop_table("business_calendar")
    op.drop_table("sla")
