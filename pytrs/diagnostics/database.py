"""Diagnostic: the database is reachable and its schema at head.

Place in the flow: one of the concurrent checks of `pytrs doctor`. It opens the database as
`pytrs db check` does (never creating a missing SQLite file) and says in one line what keeps
pytrs from using it: not found, server down or login refused (the driver's reason), no schema
yet, a schema behind this version's migrations, or one newer than this version knows.
"""

from __future__ import annotations

import asyncio

from alembic.script import ScriptDirectory
from alembic.util import CommandError

from pytrs.config import Config
from pytrs.diagnostics.findings import Finding, fail, ok
from pytrs.schema import migrate
from pytrs.schema.database import (
    DatabaseNotFound,
    DatabaseUnavailable,
    create_database,
    database_file,
    location,
    probe,
)

CHECK = "database"
_UPGRADE = "run: pytrs db upgrade"


async def check_database(config: Config, seconds: float) -> list[Finding]:
    try:
        db = create_database(config.database, pool=False, create_missing=False)
    except DatabaseNotFound as exc:
        return [fail(CHECK, f"not found at {exc.path}", f"check [database] url, or {_UPGRADE}")]
    where = location(db)
    try:
        await probe(db, seconds)
        async with asyncio.timeout(seconds):
            current = await migrate.current_revision(db)
    except DatabaseUnavailable as exc:
        return [fail(CHECK, f"cannot open {where}: {exc.reason}", _unavailable_advice(config))]
    except TimeoutError:
        return [fail(CHECK, f"{where}: no answer within {seconds:g} s", "is the server up?")]
    finally:
        await db.close()
    return [_schema_finding(where, current, migrate.head_revision())]


def _schema_finding(where: str, current: str | None, head: str | None) -> Finding:
    if current == head:
        return ok(CHECK, f"{where} reachable, schema at head ({head})")
    if current is None:
        return fail(CHECK, f"{where} reachable but empty (no schema), head is {head}", _UPGRADE)
    if not _known(current):
        return fail(
            CHECK,
            f"{where} is at {current}, which this pytrs does not know (its head is {head})",
            "a newer pytrs upgraded it: run that version, or check [database] url",
        )
    return fail(CHECK, f"{where} is at {current}, head is {head}", _UPGRADE)


def _known(revision: str) -> bool:
    try:
        scripts = ScriptDirectory.from_config(migrate.alembic_config())
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


def _unavailable_advice(config: Config) -> str:
    if database_file(config.database.url) is not None:
        return "check [database] url and the file's permissions"
    return "check [database] url (host, port, user, database) and that the server runs"
