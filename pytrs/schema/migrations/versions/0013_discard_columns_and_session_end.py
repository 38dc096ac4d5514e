"""quarantine discard columns and ended web sessions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

A discarded inbox row keeps who set it aside, when and why in columns of its own
(``discard_reason``, ``discarded_by``, ``discarded_at``) instead of a JSON note in ``trace``;
the notes written before are moved into them (and back on downgrade).

``web_session_end``: the ids of web sessions ended by logout before their absolute expiry, so
that a copy of the session cookie is refused too (``pytrs/schema/web_sessions.py``).
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_inbox = sa.table(
    "inbox_message",
    sa.column("id", sa.BigInteger()),
    sa.column("state", sa.String()),
    sa.column("trace", sa.Text()),
    sa.column("discard_reason", sa.Text()),
    sa.column("discarded_by", sa.Integer()),
    sa.column("discarded_at", sa.DateTime()),
)
_users = sa.table("users", sa.column("id", sa.Integer()), sa.column("login", sa.String()))


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key by rebuilding the table.
    with op.batch_alter_table("inbox_message") as batch:
        batch.add_column(sa.Column("discard_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("discarded_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("discarded_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_inbox_message_discarded_by_users"), "users", ["discarded_by"], ["id"]
        )
    _notes_to_columns()
    op.create_table(
        "web_session_end",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_web_session_end")),
    )
    op.create_index(
        op.f("ix_web_session_end_expires_at"), "web_session_end", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_web_session_end_expires_at"), table_name="web_session_end")
    op.drop_table("web_session_end")
    _columns_to_notes()
    with op.batch_alter_table("inbox_message") as batch:
        batch.drop_constraint(op.f("fk_inbox_message_discarded_by_users"), type_="foreignkey")
        batch.drop_column("discarded_at")
        batch.drop_column("discarded_by")
        batch.drop_column("discard_reason")


def _notes_to_columns() -> None:
    """The JSON notes ({"discarded": {"reason", "by": login, "at"}}) of discarded rows."""
    bind = op.get_bind()
    logins = {r.login: r.id for r in bind.execute(sa.select(_users.c.login, _users.c.id))}
    rows = bind.execute(
        sa.select(_inbox.c.id, _inbox.c.trace).where(_inbox.c.state == "discarded")
    ).all()
    for row in rows:
        try:
            note = json.loads(row.trace or "null")["discarded"]
            at = datetime.fromisoformat(str(note.get("at") or "")) if note.get("at") else None
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        bind.execute(
            sa.update(_inbox)
            .where(_inbox.c.id == row.id)
            .values(
                discard_reason=str(note.get("reason") or ""),
                discarded_by=logins.get(str(note.get("by") or "")),
                discarded_at=at,
                trace=None,
            )
        )


def _columns_to_notes() -> None:
    bind = op.get_bind()
    logins = {r.id: r.login for r in bind.execute(sa.select(_users.c.login, _users.c.id))}
    query = sa.select(
        _inbox.c.id, _inbox.c.discard_reason, _inbox.c.discarded_by, _inbox.c.discarded_at
    ).where(_inbox.c.state == "discarded")
    for row in bind.execute(query).all():
        at = row.discarded_at.isoformat(" ", "seconds") if row.discarded_at else ""
        by = logins.get(row.discarded_by, "")
        note = {"discarded": {"reason": row.discard_reason or "", "by": by, "at": at}}
        bind.execute(
            sa.update(_inbox)
            .where(_inbox.c.id == row.id)
            .values(trace=json.dumps(note, ensure_ascii=False))
        )
