"""`pytrs db upgrade | check | attach`: the schema pytrs runs on, made and checked.

Place in the flow: run before the first start and after each upgrade of pytrs (systemd's
`ExecStartPre=`). In pytrs's own database (`[database] mode = "pytrs"`) `upgrade` applies the
migrations and `check` compares both the revision and the tables' columns with the models, so
that a database stamped by hand is not taken for a migrated one. Beside an existing Znuny
(`mode = "znuny"`) `attach` creates pytrs's own tables in their own schema and `check` names every
difference between the columns pytrs uses and Znuny's; `upgrade` refuses there, and refuses a
database that already holds Znuny's tables in pytrs mode, rather than half-migrating it.
"""

from __future__ import annotations

import sys

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, CommandError
from pytrs.config import Config
from pytrs.schema import migrate, shape
from pytrs.schema.attach import ZNUNY_MARKERS, attach
from pytrs.schema.database import Database


async def upgrade(config: Config) -> int:
    if config.database.mode == "znuny":
        raise CommandError(
            "pytrs db upgrade migrates pytrs's own database; beside Znuny ([database] mode = "
            '"znuny") run `pytrs db attach`',
            EXIT_FAILED,
        )
    async with opened(config, create_missing=True, at_head=False) as db:
        if await _holds_znuny(db):
            raise CommandError(
                "this database holds Znuny's tables and no pytrs schema: to run beside Znuny "
                'set [database] mode = "znuny" and run `pytrs db attach`; to copy it into a '
                "database of pytrs's own, run `pytrs import znuny URL` there",
                EXIT_FAILED,
            )
        await migrate.upgrade(db)
    print(f"database at {migrate.head_revision()}")
    return EXIT_OK


async def attach_own_tables(config: Config) -> int:
    if config.database.mode != "znuny":
        raise CommandError(
            'pytrs db attach is for running beside Znuny: set [database] mode = "znuny" '
            "(pytrs's own database is made by `pytrs db upgrade`)",
            EXIT_FAILED,
        )
    async with opened(config, at_head=False) as db:
        done = await attach(db, migrate.HEAD_REVISION)
    created = ", ".join(done.created) or "none (all there)"
    print(f"pytrs's own tables in schema {config.database.own_schema!r}: created {created}")
    return _report(list(done.differences))


async def check(config: Config) -> int:
    async with opened(config, at_head=False) as db:
        at_head, current, head = await migrate.is_at_head(db)
        if db.znuny:
            print(f"own tables at {current or 'nothing'}; head is {head}")
            if not at_head:
                print("pytrs: run `pytrs db attach`", file=sys.stderr)
                return EXIT_FAILED
            _, differences = await shape.load(db)
            return _report(differences)
        print(f"database at {current or 'nothing'}; head is {head}")
        if not at_head:
            print("pytrs: database schema is not at head: run `pytrs db upgrade`", file=sys.stderr)
            return EXIT_FAILED
        drift = await migrate.diff_models(db)
    for item in drift:
        print(f"pytrs: differs from the models: {_describe(item)}", file=sys.stderr)
    if drift:
        print(
            "pytrs: the tables are not what this version's migrations make "
            "(stamped by hand, or changed outside pytrs)",
            file=sys.stderr,
        )
    return EXIT_FAILED if drift else EXIT_OK


def _report(differences: list[shape.Difference]) -> int:
    """Print each difference (severe ones on stderr); EXIT_FAILED when one stops pytrs."""
    severe = [d for d in differences if d.severity == shape.SEVERE]
    for difference in differences:
        if difference.severity == shape.SEVERE:
            print(f"pytrs: {difference}", file=sys.stderr)
        else:
            print(f"note: {difference}")
    if severe:
        print(
            f"pytrs: {len(severe)} difference(s) pytrs cannot work with: fix Znuny's schema "
            "(Znuny >= 7.0 is needed) or [database] schema",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print("Znuny's tables fit pytrs")
    return EXIT_OK


async def _holds_znuny(db: Database) -> bool:
    def read(conn: Connection) -> bool:
        inspector = inspect(conn)
        return not inspector.has_table("alembic_version") and all(
            inspector.has_table(name) for name in ZNUNY_MARKERS
        )

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


def _describe(item: object) -> str:
    """One Alembic comparison entry (`("add_column", None, "users", Column(…))` …) as words."""
    if isinstance(item, list):  # modify_* entries come as lists of tuples
        return "; ".join(_describe(part) for part in item)
    if isinstance(item, tuple) and item:
        kind, *rest = item
        names = [getattr(r, "name", r) for r in rest if r is not None and not isinstance(r, dict)]
        return f"{kind} " + " ".join(str(n) for n in names[:3])
    return str(item)
