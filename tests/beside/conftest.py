"""pytrs beside a Znuny-7.0-shaped PostgreSQL schema (`[database] mode = "znuny"`).

Znuny's tables come from `tests/znuny/` (the `znuny_postgresql` fixture, dropped after the
test together with the own schema); pytrs's own tables are attached in a schema of their own
and the shape is read, as a daemon's start does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytrs.config.model import DatabaseConfig
from pytrs.schema import attach, migrate
from pytrs.schema.database import Database, create_database

from ..znuny.fixtures import ZnunyDatabase


@dataclass
class Beside:
    """`db`: pytrs's Database beside Znuny; `settings`: its `[database]` table (for
    `make_config`); `znuny`: the fixture's database (its engine sees Znuny's tables only)."""

    db: Database
    settings: dict[str, Any]
    znuny: ZnunyDatabase


@pytest.fixture
async def beside(znuny_postgresql: ZnunyDatabase) -> AsyncIterator[Beside]:
    settings: dict[str, Any] = znuny_postgresql.settings()
    db = create_database(DatabaseConfig(**settings, pool_size=2))
    try:
        await attach.attach(db, migrate.HEAD_REVISION)
        await migrate.require_head(db)  # reads the shape, as a daemon's start does
        yield Beside(db, settings, znuny_postgresql)
    finally:
        await db.close()
