"""A migrated database for every test without running Alembic for every test.

Running every migration took 0.2 s per test on SQLite and 0.5 s on PostgreSQL, a good part of
the suite. The first test to need a database migrates one with `migrate.upgrade`, as
`pytrs db upgrade` does, and every later one gets a copy of the result:

- on SQLite, a copy of the migrated file;
- on PostgreSQL, the statements that migration sent, recorded as the driver received them
  and sent again through asyncpg, in one transaction, to the test's own schema (the
  statements name no schema: the connection's search_path does);
- on MariaDB, the same recorded statements sent again to the test's own database (a MariaDB
  "schema"), one by one: its DDL commits as it goes, so there is no one transaction.

`tests/test_migrated_template.py` checks that a copy is at head and matches the models as a
real upgrade does. Tests of the migrations themselves call `migrate.upgrade`.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from pytrs.config import parse_config
from pytrs.schema import migrate
from pytrs.schema.database import Database, create_database


@dataclass
class Recorded:
    """What one real upgrade sent to PostgreSQL: (statement, parameters, executemany)."""

    statements: list[tuple[str, Any, bool]] = field(default_factory=list)

    def record(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        self.statements.append((statement, parameters, many))


_sqlite_template: Path | None = None
_postgresql_template: dict[str, Recorded] = {}  # by server URL
_mysql_template: dict[str, Recorded] = {}  # by server URL


def create_schema_sql(name: str, url: str) -> str:
    """The statement making a test's schema on the server of `url` (MariaDB: a database)."""
    if make_url(url).get_backend_name() == "mysql":
        return f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    return f'CREATE SCHEMA "{name}"'


def drop_schema_sql(name: str, url: str) -> str:
    """The statement dropping a test's schema, with all in it, if it is there."""
    if make_url(url).get_backend_name() == "mysql":
        return f"DROP DATABASE IF EXISTS `{name}`"
    return f'DROP SCHEMA IF EXISTS "{name}" CASCADE'


async def upgrade(database: Database) -> None:
    """`migrate.upgrade(database)` for a new, empty test database, done as a copy."""
    url = database.engine.url
    if url.get_backend_name() == "sqlite":
        target = Path(url.database) if url.database else None
        if target is None or (target.exists() and target.stat().st_size):
            await migrate.upgrade(database)  # in memory, or not new
            return
        shutil.copyfile(await _sqlite_file(), target)
        return
    if url.get_backend_name() == "mysql":
        await _upgrade_mysql(database)
        return
    recorded = await _postgresql_statements(url.render_as_string(hide_password=False))
    async with database.engine.connect() as conn:
        # asyncpg itself: statements without parameters go in one message, where SQLAlchemy
        # would prepare and run each (two round trips each, as long as migrating).
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            if await driver.fetchval("SELECT to_regclass('alembic_version')") is None:
                await _replay(driver, recorded.statements)
                return
    await migrate.upgrade(database)  # not new: upgraded as it would be


async def _replay(driver: Any, statements: list[tuple[str, Any, bool]]) -> None:
    script: list[str] = []
    for statement, parameters, many in statements:
        if not parameters:
            script.append(statement)
            continue
        if script:
            await driver.execute(";\n".join(script))
            script = []
        if many:
            await driver.executemany(statement, parameters)
        else:
            await driver.execute(statement, *parameters)
    if script:
        await driver.execute(";\n".join(script))


async def _sqlite_file() -> Path:
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="pytrs-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        file = folder / "template.db"
        database = _database({"url": f"sqlite+aiosqlite:///{file}"})
        try:
            await migrate.upgrade(database)
        finally:
            await database.close()  # the last connection's close checkpoints the WAL
        _sqlite_template = file
    return _sqlite_template


async def _postgresql_statements(url: str) -> Recorded:
    # Not `_record_upgrade`: PostgreSQL needs every statement replayed, the SELECTs too (the
    # seed migration moves its sequences past the seeded ids with `SELECT setval(…)`).
    if url not in _postgresql_template:
        schema = f"pytrs_template_{secrets.token_hex(6)}"
        admin = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            recorded = Recorded()
            database = _database({"url": url, "schema": schema})
            event.listen(database.engine.sync_engine, "before_cursor_execute", recorded.record)
            try:
                await migrate.upgrade(database)
            finally:
                await database.close()
                async with admin.connect() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            await admin.dispose()
        # A statement naming the schema could not be sent to another one.
        assert not any(schema in statement for statement, _, _ in recorded.statements)
        _postgresql_template[url] = recorded
    return _postgresql_template[url]


async def _upgrade_mysql(database: Database) -> None:
    url = database.engine.url
    server = url.set(database="").render_as_string(hide_password=False)
    async with database.engine.connect() as conn:
        if await migrate_needed(conn):
            if server not in _mysql_template:
                _mysql_template[server] = await _record_upgrade(server)
            for statement, parameters, many in _mysql_template[server].statements:
                if many:
                    await conn.exec_driver_sql(statement, list(parameters))
                else:
                    await conn.exec_driver_sql(statement, parameters)
            await conn.commit()
            return
    await migrate.upgrade(database)


async def migrate_needed(conn: Any) -> bool:
    found = await conn.scalar(
        text("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
    )
    return not found


async def _record_upgrade(server: str) -> Recorded:
    name = f"pytrs_template_{secrets.token_hex(6)}"
    admin = create_async_engine(make_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(create_schema_sql(name, server)))
        recorded = Recorded()
        database = _database({"url": server, "schema": name})
        event.listen(database.engine.sync_engine, "before_cursor_execute", recorded.record)
        try:
            await migrate.upgrade(database)
        finally:
            await database.close()
            async with admin.connect() as conn:
                await conn.execute(text(drop_schema_sql(name, server)))
    finally:
        await admin.dispose()
    # Only what made the schema: the statements naming it, or only reading, are left out (the
    # lock of `migrate.upgrade`, Alembic's look at the tables there are).
    recorded.statements = [
        s for s in recorded.statements
        if not s[0].lstrip().upper().startswith(("SELECT", "SHOW", "DESCRIBE", "DO "))
    ]  # fmt: skip
    assert not any(name in statement for statement, _, _ in recorded.statements)
    return recorded


def _database(settings: dict[str, Any]) -> Database:
    return create_database(parse_config({"database": settings}, environ={}).database)
