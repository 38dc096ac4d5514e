"""A sender in a process of its own, for the crash tests: `python -m tests.responders.sender_child
'<json>'` runs an OutboxSender with the JSON configuration until it is killed."""

from __future__ import annotations

import asyncio
import json
import sys

from pytrs.config import parse_config
from pytrs.responders.sender import OutboxSender
from pytrs.schema.database import create_database


async def main(settings: dict[str, object]) -> None:
    config = parse_config(settings, environ={})
    db = create_database(config.database)
    try:
        await OutboxSender(config, db).run()
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
