"""`pytrs inbox list|show|retry`: the inbound queue and the quarantine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy import select

from pytrs.config import Config
from pytrs.schema import inbox_repo
from pytrs.schema.database import create_database
from pytrs.schema.tables import inbox

EXIT_USAGE = 2


def run(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(_inbox_async(config, args))


async def _inbox_async(config: Config, args: argparse.Namespace) -> int:
    db = create_database(config.database, pool=False)
    try:
        if args.action == "retry":
            if not args.ids and not args.all:
                print("give inbox ids or --all", file=sys.stderr)
                return EXIT_USAGE
            count = await inbox_repo.retry(db, None if args.all else args.ids)
            print(f"{count} message(s) re-queued")
            return 0
        async with db.connect() as conn:
            if args.action == "show":
                row = (await conn.execute(select(inbox).where(inbox.c.id == args.id))).first()
                if row is None:
                    print(f"no inbox row {args.id}", file=sys.stderr)
                    return 1
                return _print_row(row._asdict(), raw_only=args.raw)
            query = select(
                inbox.c.id, inbox.c.state, inbox.c.source, inbox.c.recipient,
                inbox.c.message_id, inbox.c.attempts, inbox.c.received_at, inbox.c.ticket_id,
                inbox.c.last_error,
            ).order_by(inbox.c.id.desc()).limit(args.limit)  # fmt: skip
            if args.state != "all":
                query = query.where(inbox.c.state == args.state)
            rows = [r._asdict() for r in await conn.execute(query)]
        _print_list(rows, as_json=args.json)
        return 0
    finally:
        await db.close()


def _print_list(rows: list[dict[str, object]], *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    print(
        f"{'ID':>8}  {'STATE':<11}  {'SRC':<5}  {'TRIES':>5}  {'TICKET':>7}  RECIPIENT / MESSAGE-ID"
    )
    for r in rows:
        error = str(r["last_error"] or "").strip().splitlines()
        print(
            f"{r['id']:>8}  {r['state']:<11}  {r['source']!s:<5}  {r['attempts']:>5}  "
            f"{r['ticket_id'] or '-'!s:>7}  {r['recipient'] or '-'} {r['message_id']}"
        )
        if error:
            print(f"{'':>8}  error: {error[0][:160]}")


def _print_row(row: dict[str, object], *, raw_only: bool) -> int:
    raw = row.pop("raw")
    if raw_only:
        if raw is None:
            print("the raw message was moved to the article (see ticket_id/article_id)",
                  file=sys.stderr)  # fmt: skip
            return 1
        assert isinstance(raw, bytes)
        sys.stdout.buffer.write(raw)
        return 0
    trace = row.pop("trace")
    error = row.pop("last_error")
    for key, value in row.items():
        print(f"{key}: {value}")
    print(f"raw: {'kept in inbox' if raw is not None else 'stored with the article'}")
    if trace:
        print("trace:")
        print(json.dumps(json.loads(str(trace)), indent=2, ensure_ascii=False))
    if error:
        print("error:")
        print(error)
    return 0
