"""Daemons sharing one database start together (found by the chaos test, tests/chaos/): each
provisions the same file at the same moment, and none may fail on the rows another is creating.
Before provisioning took a lock, two of three daemons started at once on a fresh PostgreSQL
database exited with "duplicate key value violates unique constraint uq_queue_name"."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from pytrs.provisioning import provision
from pytrs.schema.database import Database, create_database

from .conftest import make_config

STARTS = 4  # daemons starting at once, each with its own engine
AUTO_REPLY = {"queue": "Support", "type": "auto reply", "subject": "Re: hi", "body": "Got it."}
COUNTED = (
    "queue WHERE name = 'Support'",
    "system_address",
    "auto_response",
    "users WHERE login = 'jdoe'",
)


async def test_daemons_starting_together_all_provision_the_same_rows_once(
    database_settings: dict[str, Any], db: Database
) -> None:
    config = make_config(
        database_settings,
        queues=[{"name": "Support", "first_response_minutes": 1, "notify_before_percent": 50}],
        system_addresses=[{"address": "support@example.com", "queue": "Support"}],
        agents=[{"login": "jdoe", "email": "jdoe@agents.example", "queues": ["Support"]}],
        auto_responses=[AUTO_REPLY],
    )
    databases = [create_database(config.database) for _ in range(STARTS)]
    try:
        for _round in range(3):  # the first start creates the rows, the later ones update them
            await asyncio.gather(*(provision(database, config) for database in databases))
    finally:
        for database in databases:
            await database.close()
    async with db.connect() as conn:
        counts = [
            (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in COUNTED
        ]
    assert counts == [1] * len(COUNTED)
