"""Opening the database for a command: never created by mistake, checked before any work.

Place in the flow: every subcommand that touches the database goes through `opened`, so that
a mistyped SQLite path says "database not found" instead of leaving an empty file, a server
that is down or a missing PostgreSQL database is one clear line, and a database that was never
upgraded is reported as such rather than as the driver's "no such table" half-way through.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pytrs.config import Config
from pytrs.schema import migrate
from pytrs.schema.database import Database, create_database, probe


@contextlib.asynccontextmanager
async def opened(
    config: Config, *, create_missing: bool = False, at_head: bool = True
) -> AsyncIterator[Database]:
    """The configured database, reachable and (unless `at_head=False`) fully migrated.

    Raises DatabaseNotFound, DatabaseUnavailable or SchemaNotAtHead. Only `pytrs db upgrade`
    passes `create_missing=True`.
    """
    db = create_database(config.database, pool=False, create_missing=create_missing)
    try:
        await probe(db)
        if at_head:
            await migrate.require_head(db)
        yield db
    finally:
        await db.close()
