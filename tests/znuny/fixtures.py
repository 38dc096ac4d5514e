"""Fixtures giving a test a fresh Znuny-7.0-shaped database on PostgreSQL or MariaDB.

Each database is built the way Znuny's installer builds one: tables (`schema.create_tables`),
initial rows (`seed.insert_seed`), then foreign keys (`schema.add_foreign_keys`). It is private
to the test (a PostgreSQL schema ``znuny_<hex>`` in database ``test``, or a MariaDB database
``znuny_<hex>``) and dropped afterwards, together with the schema named by ``own_schema`` that a
beside-Znuny test may have pytrs create for its own tables.

Loaded by ``tests/conftest.py`` (``pytest_plugins``). `znuny_database` runs a test on both.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import schema, seed

POSTGRESQL_URL = os.environ.get(
    "PYTRS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/test"
)
MARIADB_ADMIN_URL = os.environ.get("PYTRS_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1/test")

# The moment the seed rows claim to be written at: fixed, so runs compare alike.
SEEDED_AT = datetime(2026, 1, 5, 9, 0, 0)


@dataclass
class ZnunyDatabase:
    """A seeded Znuny database for one test.

    ``kind`` is "postgresql" or "mariadb"; ``url`` what pytrs's ``[database] url`` would be;
    ``schema`` where Znuny's tables are (the PostgreSQL schema, or the MariaDB database name);
    ``own_schema`` a free name for pytrs's own tables (PostgreSQL), dropped after the test;
    ``engine`` an engine whose connections see Znuny's tables unqualified."""

    kind: str
    url: str
    schema: str
    own_schema: str
    engine: AsyncEngine

    def settings(self) -> dict[str, str]:
        """The `[database]` table of a pytrs configuration running beside this Znuny."""
        if self.kind == "postgresql":
            return {"url": self.url, "mode": "znuny", "schema": self.schema,
                    "own_schema": self.own_schema}  # fmt: skip
        return {"url": self.url, "mode": "znuny"}

    @property
    def base64_bodies(self) -> bool:
        """Whether raw mails and attachments are stored as base64 text (PostgreSQL)."""
        return self.kind == "postgresql"


async def build(engine: AsyncEngine, now: datetime = SEEDED_AT) -> None:
    """Tables, initial rows, foreign keys: a fresh Znuny 7.0 installation."""
    async with engine.begin() as conn:
        await schema.create_tables(conn)
        await seed.insert_seed(conn, now)
        await schema.add_foreign_keys(conn)


def _name() -> str:
    return f"znuny_{os.getpid()}_{secrets.token_hex(4)}"


async def _answers(engine: AsyncEngine) -> str | None:
    """None when the server answers, else why not (one line)."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect means: no server to test against
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


@pytest.fixture
async def znuny_postgresql() -> AsyncIterator[ZnunyDatabase]:
    name, own = _name(), f"pytrs_{secrets.token_hex(4)}"
    admin = create_async_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    try:
        if (reason := await _answers(admin)) is not None:
            pytest.skip(f"no PostgreSQL at {POSTGRESQL_URL}: {reason}")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        engine = create_async_engine(
            POSTGRESQL_URL, connect_args={"server_settings": {"search_path": name}}
        )
        try:
            await build(engine)
            yield ZnunyDatabase("postgresql", POSTGRESQL_URL, name, own, engine)
        finally:
            await engine.dispose()
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{own}" CASCADE'))
                await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture
async def znuny_mariadb() -> AsyncIterator[ZnunyDatabase]:
    name = _name()
    admin = create_async_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        if (reason := await _answers(admin)) is not None:
            pytest.skip(f"no MariaDB at {MARIADB_ADMIN_URL}: {reason}")
        async with admin.connect() as conn:
            await conn.execute(
                text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
        url = make_url(MARIADB_ADMIN_URL).set(database=name)
        engine = create_async_engine(url)
        try:
            await build(engine)
            yield ZnunyDatabase(
                "mariadb", url.render_as_string(hide_password=False), name, name, engine
            )
        finally:
            await engine.dispose()
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await admin.dispose()


@pytest.fixture(params=["postgresql", "mariadb"])
def znuny_database(request: pytest.FixtureRequest) -> ZnunyDatabase:
    """The test runs once on a Znuny database on PostgreSQL and once on MariaDB."""
    database: ZnunyDatabase = request.getfixturevalue(f"znuny_{request.param}")
    return database


def utcnow() -> datetime:
    """Naive UTC now, as Znuny's timestamp columns hold it."""
    return datetime.now(UTC).replace(tzinfo=None)
