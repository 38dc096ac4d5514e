"""`pytrs accounts`: each mail account's health and progress, from the mailbox state tables."""

from __future__ import annotations

import argparse
import asyncio

from pytrs.commands.database import opened
from pytrs.commands.output import print_json
from pytrs.config import Config


def run(config: Config, args: argparse.Namespace) -> int:
    from pytrs.schema import mailbox_repo

    async def go() -> list[dict[str, object]]:
        async with opened(config) as db:
            return await mailbox_repo.health(db, config)

    rows = asyncio.run(go())
    if print_json(rows, args):
        return 0
    if not rows:
        print("no [[mail_accounts]] configured")
    for row in rows:
        print(
            f"{row['account']}  ({row['type']} {row['host']} {row['folder']}, mode {row['mode']})"
        )
        print(
            f"  fetched: {row['messages_fetched']}   last success: {row['last_success_at'] or '-'}"
            f"   waiting in the inbox: {row['backlog']}"
        )
        if row["last_error"]:
            print(f"  last error ({row['last_error_at']}): {row['last_error']}")
            print(f"  next attempt: {row['next_attempt_at'] or '-'}")
        if row["owner"]:
            print(f"  fetched by: {row['owner']}")
        for entry in row["skipped"]:  # type: ignore[attr-defined]
            print(f"  left on server (too large): UID {entry['uid']}, {entry['size']} bytes")
    return 0
