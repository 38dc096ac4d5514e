"""`pytrs accounts`: each mail account's health and progress, from the mailbox state tables."""

from __future__ import annotations

import argparse
import asyncio
import json

from pytrs.commands.database import opened
from pytrs.commands.output import print_json
from pytrs.config import Config


def run(config: Config, args: argparse.Namespace) -> int:
    from pytrs.schema import mailbox_repo

    async def go() -> list[dict[str, object]]:
        async with opened(config) as db:
            return await mailbox_repo.states(db)

    found = {str(s["account"]): s for s in asyncio.run(go())}
    rows = []
    for account in config.mail_accounts:
        state = found.get(account.name, {})
        rows.append({
            "account": account.name, "type": account.type, "host": account.host,
            "folder": account.folder, "mode": account.mode,
            "last_success_at": state.get("last_success_at"),
            "last_error": state.get("last_error"), "last_error_at": state.get("last_error_at"),
            "messages_fetched": state.get("messages_fetched", 0),
            "next_attempt_at": state.get("next_attempt_at"), "owner": state.get("owner"),
            "skipped": json.loads(str(state["skipped"])) if state.get("skipped") else [],
        })  # fmt: skip
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
        )
        if row["last_error"]:
            print(f"  last error ({row['last_error_at']}): {row['last_error']}")
            print(f"  next attempt: {row['next_attempt_at'] or '-'}")
        if row["owner"]:
            print(f"  fetched by: {row['owner']}")
        for entry in row["skipped"]:
            print(f"  left on server (too large): UID {entry['uid']}, {entry['size']} bytes")
    return 0
