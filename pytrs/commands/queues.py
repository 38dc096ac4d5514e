"""`pytrs queues`: each valid queue with its system addresses and its open tickets.

Place in the flow: read-only, through `pytrs.tickets.queries.queue_overview` (one grouped
count over the ticket table's queue/state index). Open tickets are counted by state type —
new, open, pending (reminder or auto) — and the age of the oldest of them is shown as Znuny
shows ages.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from pytrs.commands import tickets_view as view
from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_OK
from pytrs.commands.output import fit
from pytrs.config import Config
from pytrs.schema.database import utcnow
from pytrs.tickets import queries

_COLUMNS = (("QUEUE", 20), ("NEW", 6), ("OPEN", 6), ("PENDING", 7), ("OLDEST", 9))


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "queues", help="each queue: its addresses, open/new/pending tickets, oldest open age"
    )
    parser.add_argument("--json", action="store_true", help="a JSON list")


def run(config: Config, args: argparse.Namespace) -> int:
    overview = asyncio.run(_overview(config))
    now = utcnow()
    rows = [view.queue_json(item, now) for item in overview]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    print("  ".join(fit(title, width) for title, width in _COLUMNS) + "  ADDRESSES")
    for row in rows:
        cells = (row["queue"], row["new"], row["open"], row["pending"], row["oldest_open_age"])
        line = "  ".join(fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
        print(f"{line}  {', '.join(row['addresses']) or '-'}")
    return EXIT_OK


async def _overview(config: Config) -> tuple[queries.QueueOverview, ...]:
    async with opened(config) as db, db.connect() as conn:
        return await queries.queue_overview(conn)
