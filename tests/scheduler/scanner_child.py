"""A due scanner in a process of its own, for the concurrency and crash tests.

`python -m tests.scheduler.scanner_child '<database json>' <now> run` waits for a line on
stdin, runs one due scan at `now` (batches of 10) and prints what it fired as JSON.
With `hold` instead of `run`, it claims and processes one batch of 50 in a transaction, prints
"claimed <n>" and waits, uncommitted, to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notifier
from pytrs.schema.database import create_database
from pytrs.tickets.service import TicketService

from .conftest import scheduler_config


async def main(database: dict[str, object], now: int, mode: str) -> None:
    config = scheduler_config(database)
    db = create_database(config.database)
    service = TicketService.from_config(config)
    scanner = DueScanner(db, service, Notifier(config, service.composer), batch_size=10)
    try:
        if mode == "hold":
            scanner.batch_size = 50
            async with db.transaction() as conn:
                outcome, _ids = await scanner.scan_batch(conn, now)
                print(f"claimed {outcome.claimed}", flush=True)
                await asyncio.Event().wait()  # until SIGKILL
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outcome = await scanner.run(now=now)
        fired = {f"{k} {e}": n for (k, e), n in outcome.fired.items()}
        print(json.dumps({"claimed": outcome.claimed, "fired": fired}), flush=True)
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
