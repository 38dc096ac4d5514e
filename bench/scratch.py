"""Databases the benchmarks run on: a PostgreSQL schema of their own, a throw-away database,
and planner statistics as a running daemon leaves them.

Imported by the bench scripts (run as `python bench/NAME.py`, which puts this directory on the
path); not part of pytrs.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pytrs.schema.database import Database, refresh_planner_statistics


async def pg_schema(pg_url: str, schema: str, *, drop: bool) -> None:
    """Make sure `schema` exists in the database at `pg_url` (emptied first when `drop`)."""
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            if drop:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def scratch_database(engine: str, pg_url: str, prefix: str) -> AsyncIterator[dict[str, str]]:
    """`[database]` settings of a database used once: an SQLite file in a new temporary
    directory, or a new PostgreSQL schema named `<prefix>_<random>`, dropped afterwards."""
    if engine == "sqlite":
        yield {"url": f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"}
        return
    schema = f"{prefix}_{secrets.token_hex(4)}"
    await pg_schema(pg_url, schema, drop=False)
    try:
        yield {"url": pg_url, "schema": schema}
    finally:
        admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            await admin.dispose()


async def settle_statistics(db: Database, *, sqlite: bool) -> None:
    """Planner statistics as the daemon leaves them at its start (SQLite), and on PostgreSQL
    the visibility map too (index-only scans), as a database running for a while has them."""
    await refresh_planner_statistics(db)
    if not sqlite:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
