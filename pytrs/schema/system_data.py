"""Installation-wide facts in Znuny's `system_data` table, and the runtime configuration they fill.

Place in the flow: the daemon calls `with_runtime_secrets` at start, before any service is
built. When `[outbound]` names no loop-marker key, pytrs uses one generated once per
installation and kept in the database, so that every daemon sharing the database (and every
restart) signs and recognises the same X-PyTRS-Loop markers and reply tokens, and a fresh
installation can send auto-responses without a secret file. A configured key always wins.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets

from sqlalchemy import select

from pytrs.config import Config
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.tables import system_data

LOOP_SECRET_KEY = "pytrs.outbound.loop_secret"


async def ensure_secret(db: Database, key: str, size: int = 32) -> str:
    """The secret stored under `key`, created (random, url-safe text) on first use.

    Concurrent first starts agree: the insert does nothing on a clash and everyone reads back
    the row that won.
    """
    now = utcnow()
    candidate = base64.urlsafe_b64encode(secrets.token_bytes(size)).decode("ascii").rstrip("=")
    async with db.transaction() as conn:
        await conn.execute(
            conflict_insert(conn, system_data)
            .values(
                data_key=key, data_value=candidate, create_time=now, create_by=1,
                change_time=now, change_by=1,
            )
            .on_conflict_do_nothing(index_elements=["data_key"])
        )  # fmt: skip
        stored = await conn.execute(
            select(system_data.c.data_value).where(system_data.c.data_key == key)
        )
        return str(stored.scalar_one())


async def with_runtime_secrets(db: Database, config: Config) -> Config:
    """`config` with `[outbound] loop_secret` filled from the database when none is set."""
    out = config.outbound
    if out.loop_secret or out.loop_secret_file:
        return config
    secret = await ensure_secret(db, LOOP_SECRET_KEY)
    return dataclasses.replace(config, outbound=dataclasses.replace(out, loop_secret=secret))
