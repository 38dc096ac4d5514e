"""outbox and responders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Everything issue 6 (responders) stores: pytrs's durable outbox (outbox_message), Znuny's
auto-response tables (auto_response_type with its shipped rows, auto_response,
queue_auto_response), Znuny's ticket_loop_protection counter, and address_suppression for
hard-bounced addresses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pytrs.vocabulary import znuny

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SMALL_ID = sa.SmallInteger().with_variant(sa.Integer(), "sqlite")


def _audit() -> list[sa.Column]:
    return [
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("create_by", sa.Integer(), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("change_by", sa.Integer(), nullable=False),
    ]


def _valid(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["valid_id"], ["valid.id"], name=f"fk_{table}_valid_id_valid")


def upgrade() -> None:
    _outbox()
    op.create_table(
        "ticket_loop_protection",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("sent_to", sa.String(length=250), nullable=False),
        sa.Column("sent_date", sa.String(length=150), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_loop_protection")),
    )
    op.create_index(
        "ix_ticket_loop_protection_sent_to_date",
        "ticket_loop_protection",
        ["sent_to", "sent_date"],
        unique=False,
    )
    _auto_responses()
    op.create_table(
        "address_suppression",
        sa.Column("address", sa.String(length=250), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("suppressed_until", sa.DateTime(), nullable=False),
        sa.Column("ticket_id", _BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_address_suppression")),
    )
    _seed_auto_response_types()


def _outbox() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("ticket_id", _BIG_ID, nullable=True),
        sa.Column("article_id", _BIG_ID, nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("envelope_from", sa.String(length=250), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"], ["article.id"], name=op.f("fk_outbox_message_article_id_article")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_outbox_message_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    op.create_index(
        "ix_outbox_message_due", "outbox_message", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_message_message_id"), "outbox_message", ["message_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_message_ticket_id"), "outbox_message", ["ticket_id"], unique=False
    )


def _auto_responses() -> None:
    op.create_table(
        "auto_response_type",
        sa.Column("id", _SMALL_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("comments", sa.String(length=250), nullable=True),
        sa.Column("valid_id", sa.SmallInteger(), nullable=False),
        *_audit(),
        _valid("auto_response_type"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_response_type")),
        sa.UniqueConstraint("name", name=op.f("uq_auto_response_type_name")),
    )
    op.create_table(
        "auto_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("text0", sa.Text(), nullable=True),
        sa.Column("text1", sa.Text(), nullable=True),
        sa.Column("type_id", sa.SmallInteger(), nullable=False),
        sa.Column("system_address_id", sa.SmallInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=250), nullable=True),
        sa.Column("comments", sa.String(length=250), nullable=True),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("valid_id", sa.SmallInteger(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["system_address_id"],
            ["system_address.id"],
            name=op.f("fk_auto_response_system_address_id_system_address"),
        ),
        sa.ForeignKeyConstraint(
            ["type_id"],
            ["auto_response_type.id"],
            name=op.f("fk_auto_response_type_id_auto_response_type"),
        ),
        _valid("auto_response"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_response")),
        sa.UniqueConstraint("name", name=op.f("uq_auto_response_name")),
    )
    op.create_table(
        "queue_auto_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("auto_response_id", sa.Integer(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["auto_response_id"],
            ["auto_response.id"],
            name=op.f("fk_queue_auto_response_auto_response_id_auto_response"),
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name=op.f("fk_queue_auto_response_queue_id_queue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_auto_response")),
        sa.UniqueConstraint(
            "queue_id",
            "auto_response_id",
            name=op.f("uq_queue_auto_response_queue_id_auto_response_id"),
        ),
    )


def _seed_auto_response_types() -> None:
    """Znuny's shipped auto-response types under their fixed ids (see pytrs.vocabulary.znuny)."""
    bind = op.get_bind()
    table = sa.table(
        "auto_response_type",
        *(sa.column(name) for name in ("id", "name", "comments", "valid_id")),
        *(sa.column(name) for name in ("create_time", "create_by", "change_time", "change_by")),
    )
    now = sa.func.now()
    for row in znuny.auto_response_type_rows(None):
        bind.execute(table.insert().values({**row, "create_time": now, "change_time": now}))
    if bind.dialect.name == "postgresql":
        # Explicit ids do not advance a serial's sequence; later inserts would collide.
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('auto_response_type', 'id'), "
                "(SELECT max(id) FROM auto_response_type))"
            )
        )


def downgrade() -> None:
    op.drop_table("address_suppression")
    op.drop_table("queue_auto_response")
    op.drop_table("auto_response")
    op.drop_table("auto_response_type")
    op.drop_index("ix_ticket_loop_protection_sent_to_date", table_name="ticket_loop_protection")
    op.drop_table("ticket_loop_protection")
    op.drop_index(op.f("ix_outbox_message_ticket_id"), table_name="outbox_message")
    op.drop_index(op.f("ix_outbox_message_message_id"), table_name="outbox_message")
    op.drop_index("ix_outbox_message_due", table_name="outbox_message")
    op.drop_table("outbox_message")
