"""A sender in a process of its own, for the crash tests.

`python -m tests.outbound.sender_child '<json>'` runs an OutboxSender with the JSON
configuration until it is killed. With ``--fork`` it is a fork server instead, for a test that
kills senders again and again without paying a Python start-up per kill: each "start" line on
stdin forks a fresh sender process (its own pid, so its own claims), each "kill" line kills
that process with SIGKILL and reaps it; every line is echoed once done.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from pytrs.config import parse_config
from pytrs.outbound.sender import OutboxSender
from pytrs.schema.database import create_database


async def main(settings: dict[str, object]) -> None:
    config = parse_config(settings, environ={})
    db = create_database(config.database)
    try:
        await OutboxSender(config, db).run()
    finally:
        await db.close()


def serve(settings: dict[str, object]) -> None:
    """Fork a sender per "start", SIGKILL it per "kill", until stdin ends."""
    pid = 0
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            pid = os.fork()
            if pid == 0:
                # Forked before any event loop, thread or connection exists: a clean sender.
                try:
                    asyncio.run(main(settings))
                finally:
                    os._exit(0)
        elif command == "kill" and pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pid = 0
        print(command, flush=True)
    if pid:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    if sys.argv[2:] == ["--fork"]:
        serve(json.loads(sys.argv[1]))
    else:
        asyncio.run(main(json.loads(sys.argv[1])))
