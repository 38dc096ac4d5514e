"""`pytrs db attach`: pytrs's own tables beside an existing Znuny's (`[database] mode = "znuny"`).

Place in the flow: the znuny-mode twin of `pytrs db upgrade`, run once before the first start
(and again after an upgrade of pytrs). It creates, in `[database] own_schema`, only what pytrs
keeps for itself — the inbox, the outbox, mailbox cursors, suppressions, escalation clocks,
the full-text index of articles, its mirror of `[[mail_accounts]]` and the side table of
response languages — and never alters a table of Znuny's. The connection's search path puts
that schema first (`schema/database.py`), so pytrs finds its own tables there and Znuny's in
Znuny's schema; an `alembic_version` there tells every later start that the attachment is
current (`migrate.require_head`).

Tables, not migrations: Znuny's tables are not pytrs's to migrate, and pytrs's own tables are
created as the models describe them at the current head.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Connection

from pytrs.schema import fulltext
from pytrs.schema.database import (
    Database,
    DatabaseUnavailable,
    location,
    lock_schema,
)
from pytrs.schema.shape import OWN_TABLES, Difference, compare
from pytrs.schema.tables import Base

# Tables only a Znuny-attached database has: what pytrs's models keep in a column Znuny's
# tables lack. Keyed by the shared row's id; no foreign key, so that Znuny may delete its rows.
SIDE = MetaData()
auto_response_language = Table(
    "auto_response_language",
    SIDE,
    Column("auto_response_id", Integer, primary_key=True),
    Column("language", String(20), nullable=False),
)

# Znuny's tables that must be there before anything is attached to them.
ZNUNY_MARKERS = ("ticket", "article", "queue", "ticket_history")

# The advisory lock space of `attach` ("pyta"): two attaches at once take turns.
_ATTACH_LOCK_SPACE = 0x70797461


class NotZnuny(DatabaseUnavailable):
    """`db attach` was pointed at a database without Znuny's tables."""


@dataclass(frozen=True, slots=True)
class Attached:
    """What `attach` did: the tables it created, and how Znuny's tables differ."""

    created: tuple[str, ...]
    differences: tuple[Difference, ...]


async def attach(db: Database, head: str) -> Attached:
    """Create pytrs's own tables in `db.own_schema` and record `head` there.

    Raises NotZnuny when Znuny's tables are not in the search path, DatabaseUnavailable when the
    engine cannot hold them apart (SQLite).
    """
    if not db.holds_schemas:
        raise DatabaseUnavailable(
            location(db),
            "pytrs db attach needs a database that holds schemas (Znuny's PostgreSQL): "
            "see [database] url",
        )

    def run(conn: Connection) -> Attached:
        missing = [name for name in ZNUNY_MARKERS if not inspect(conn).has_table(name)]
        if missing:
            raise NotZnuny(
                location(db),
                f"no Znuny tables ({', '.join(missing)}) in the search path: point "
                "[database] url and schema at Znuny's database",
            )
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.own_schema}"'))
        created = _create_own_tables(conn, db.own_schema)
        _record_head(conn, head)
        _, differences = compare(conn)
        return Attached(tuple(created), tuple(differences))

    async with db.engine.begin() as conn:
        await lock_schema(conn, _ATTACH_LOCK_SPACE)
        return await conn.run_sync(run)


def _create_own_tables(conn: Connection, schema: str) -> list[str]:
    """Create the own tables `schema` does not have yet; return their names."""
    inspector = inspect(conn)
    # Asked of `schema` itself: Znuny has a `mail_account` too, which the search path finds.
    wanted = [Base.metadata.tables[name] for name in sorted(OWN_TABLES)]
    wanted += list(SIDE.tables.values())
    missing = [t for t in wanted if not inspector.has_table(t.name, schema=schema)]
    # Unqualified: created in the first schema of the search path, which is `schema` now that
    # it exists; their foreign keys find Znuny's tables (ticket, queue …) further along.
    Base.metadata.create_all(
        conn, tables=[t for t in missing if t.metadata is Base.metadata], checkfirst=False
    )
    SIDE.create_all(conn, tables=[t for t in missing if t.metadata is SIDE], checkfirst=False)
    names = [t.name for t in missing]
    if not inspector.has_table(fulltext.INDEX, schema=schema):
        for statement in fulltext.create_statements(conn):
            conn.execute(text(statement))
        names.append(fulltext.INDEX)
    return names


def _record_head(conn: Connection, head: str) -> None:
    conn.execute(
        text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    )
    conn.execute(text("DELETE FROM alembic_version"))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head})
