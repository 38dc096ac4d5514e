"""Schema migrations: `pytrs db upgrade` and `pytrs db check`, and the models/migrations diff.

Alembic runs on a connection of the configured database, so SQLite pragmas and the PostgreSQL
schema apply to migrations exactly as to the daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from pytrs.schema import fulltext, shape
from pytrs.schema.database import Database, StorageError, lock_schema
from pytrs.schema.tables import Base

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest migration in migrations/versions. Every command checks the schema against it;
# reading it from Alembic's script directory imported Alembic and every migration, a third
# of a command's start. tests/test_schema.py checks it against Alembic's head.
HEAD_REVISION = "0016"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # only to migrate (see HEAD_REVISION)

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return HEAD_REVISION


def alembic_head_revision() -> str | None:
    """The head as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# The advisory lock space of `upgrade` ("pytm").
_UPGRADE_LOCK_SPACE = 0x7079746D


async def upgrade(db: Database, revision: str = "head") -> None:
    """Apply every migration up to `revision`.

    Safe when several processes run it at once (each unit's `ExecStartPre=pytrs db upgrade`
    when daemons on one PostgreSQL start together): the first takes a lock for the schema and
    migrates in one transaction; the others wait for it, then find the schema at `revision`
    and do nothing. On SQLite the transaction's BEGIN IMMEDIATE does the same.
    """

    from alembic import command

    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)

    async with db.engine.begin() as conn:
        await lock_schema(conn, _UPGRADE_LOCK_SPACE)
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    def read(conn: Connection) -> str | None:
        # Alembic's version table, read as its MigrationContext reads it (one row, no branches).
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


async def is_at_head(db: Database) -> tuple[bool, str | None, str | None]:
    """(at head?, current revision, head revision)."""
    current, head = await current_revision(db), head_revision()
    return current == head, current, head


class SchemaNotAtHead(StorageError):
    """The database was never upgraded, or not to this version's migrations."""

    def __init__(self, current: str | None, head: str | None) -> None:
        self.current, self.head = current, head
        super().__init__(
            f"database schema is not at head (it is at {current or 'nothing'}, head is {head}): "
            "run `pytrs db upgrade`"
        )


class NotAttached(SchemaNotAtHead):
    """Beside Znuny: pytrs's own tables are missing or of another version."""

    def __init__(self, current: str | None, head: str | None, own_schema: str) -> None:
        super().__init__(current, head)
        self.args = (
            f"pytrs's own tables beside Znuny (schema {own_schema!r}) are "
            + (f"at {current}, head is {head}" if current else "not there")
            + ": run `pytrs db attach`",
        )


class ShapeMismatch(SchemaNotAtHead):
    """Beside Znuny: Znuny's tables lack what pytrs cannot do without."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(HEAD_REVISION, HEAD_REVISION)
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        self.args = (
            "Znuny's tables do not fit pytrs: "
            + "; ".join(problems[:3])
            + more
            + ": see `pytrs db check`",
        )


async def require_head(db: Database) -> None:
    """Raise SchemaNotAtHead unless every migration is applied: reading or writing tables of
    another version would fail half-way with the driver's "no such table".

    Beside Znuny, raise NotAttached unless `pytrs db attach` made the own tables of this
    version, and ShapeMismatch when Znuny's tables lack what pytrs needs; else remember their
    shape for the repositories (`schema/shape.py`)."""
    at_head, current, head = await is_at_head(db)
    if db.znuny:
        if not at_head:
            raise NotAttached(current, head, db.own_schema)
        _, differences = await shape.load(db)
        severe = [str(d) for d in differences if d.severity == shape.SEVERE]
        if severe:
            raise ShapeMismatch(severe)
        return
    if not at_head:
        raise SchemaNotAtHead(current, head)


def include_name(name: str | None, kind: str, _parents: Any) -> bool:
    """Whether Alembic compares `name`: the full-text index (schema/fulltext.py) is made by
    raw SQL of each engine and is not among the models."""
    return not (kind == "table" and fulltext.is_index_table(name))


async def diff_models(db: Database) -> list[Any]:
    """Differences between the models and the migrated database (empty when they agree)."""

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def compare(conn: Connection) -> list[Any]:
        opts = {"compare_type": True, "include_name": include_name}
        ctx = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(ctx, Base.metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(compare)


async def autogenerate(db: Database, message: str) -> None:
    """Developer tool: write a new migration from the model changes."""

    from alembic import command

    def run(conn: Connection) -> None:
        command.revision(alembic_config(conn), message=message, autogenerate=True)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
