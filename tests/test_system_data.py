"""The installation's generated loop-marker key: created once, shared by every daemon, never
replacing a configured key."""

from __future__ import annotations

import asyncio
from typing import Any

from pytrs.schema.database import create_database
from pytrs.schema.system_data import LOOP_SECRET_KEY, ensure_secret, with_runtime_secrets

from .conftest import make_config


async def test_generated_secret_is_created_once_and_shared(
    database_settings: dict[str, Any], db: Any
) -> None:
    config = make_config(database_settings)
    others = [create_database(config.database) for _ in range(3)]
    try:
        found = await asyncio.gather(*(ensure_secret(o, LOOP_SECRET_KEY) for o in others))
    finally:
        for other in others:
            await other.close()
    assert len(set(found)) == 1 and len(found[0]) >= 40
    filled = await with_runtime_secrets(db, config)
    assert filled.outbound.loop_secret == found[0]
    assert await ensure_secret(db, LOOP_SECRET_KEY) == found[0]  # stable across restarts


async def test_configured_secret_wins(database_settings: dict[str, Any], db: Any) -> None:
    config = make_config(database_settings, outbound={"loop_secret": "k" * 32})
    assert await with_runtime_secrets(db, config) is config
