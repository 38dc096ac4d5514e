"""`pytrs inbox list|show|retry|discard`: the inbound queue and the quarantine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.output import fit, print_json
from pytrs.config import Config
from pytrs.postmaster import inbox_view
from pytrs.schema import inbox_admin
from pytrs.schema.inbox_repo import DISCARDED, QUARANTINED
from pytrs.vocabulary import znuny

# Column widths of `inbox list`: long values are cut so that the columns never shift.
_COLUMNS = (("ID", 8), ("STATE", 11), ("SRC", 5), ("TRIES", 5), ("TICKET", 16), ("FROM", 30))


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "retry" and bool(args.ids) == args.all:
        raise CommandError("inbox retry: give inbox ids or --all (not both)", EXIT_USAGE)
    if args.action == "discard":
        args.reason, problem = inbox_view.discard_reason(args.reason)
        if problem:
            raise CommandError(f"inbox {problem}", EXIT_USAGE)
    return asyncio.run(_inbox_async(config, args))


async def _inbox_async(config: Config, args: argparse.Namespace) -> int:
    async with opened(config) as db:
        if args.action == "retry":
            before = await inbox_admin.requeue(db, None if args.all else args.ids)
            return _report_retry(before, args.ids)
        if args.action == "discard":
            before = await inbox_admin.discard(db, args.ids, args.reason, znuny.USER_ROOT)
            return _report(before, args.ids, "discarded", "nothing to discard")
        async with db.connect() as conn:
            if args.action == "show":
                row = await inbox_admin.row(conn, args.id)
                if row is None:
                    raise CommandError(f"inbox {args.id}: no such row")
                if args.raw:
                    return _print_raw(row, await _article_raw(conn, row))
                _print_row(row)
                return EXIT_OK
            rows = await inbox_view.listing(conn, args.state, args.limit)
    if not print_json(rows, args):
        _print_list(rows)
    return EXIT_OK


def _report_retry(before: dict[int, str], ids: list[int]) -> int:
    return _report(before, ids, "re-queued", "nothing to retry")


def _report(before: dict[int, str], ids: list[int], done: str, nothing: str) -> int:
    """One line on stderr per named row that was not quarantined, then the count changed."""
    refused = False
    for row_id in dict.fromkeys(ids):
        state = before.get(row_id)
        if state != QUARANTINED:
            refused = True
            why = f"is {state}, not quarantined: {nothing}" if state else "no such row"
            print(f"inbox {row_id}: {why}", file=sys.stderr)
    count = sum(1 for state in before.values() if state == QUARANTINED)
    print(f"{count} message(s) {done}")
    return EXIT_FAILED if refused else EXIT_OK


async def _article_raw(conn: Any, row: dict[str, Any]) -> bytes | None:
    if row["raw"] is not None or not row["article_id"]:
        return None
    return await inbox_admin.article_raw(conn, row["article_id"])


def _print_raw(row: dict[str, Any], from_article: bytes | None) -> int:
    # A processed row gives its raw copy to the article (article_data_mime_plain).
    raw = row["raw"] if row["raw"] is not None else from_article
    if raw is None:
        raise CommandError(f"inbox {row['id']}: no raw copy, neither in the row nor in an article")
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _print_list(rows: list[dict[str, Any]]) -> None:
    print("  ".join(fit(title, width) for title, width in _COLUMNS) + "  SUBJECT")
    for r in rows:
        ticket = r["tn"] or (f"id {r['ticket_id']}" if r["ticket_id"] else "-")
        cells = (r["id"], r["state"], r["source"], r["attempts"], ticket, r["from"])
        line = "  ".join(fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
        print(f"{line}  {fit(r['subject'], 60).rstrip()}")
        error = str(r["last_error"] or "").strip().splitlines()
        if error:
            print(f"{'':>8}  error: {error[0][:160]}")


_DISCARD_COLUMNS = ("discard_reason", "discarded_by", "discarded_at", "discarded_by_login")


def _print_row(row: dict[str, Any]) -> None:
    raw, trace, error = row.pop("raw"), row.pop("trace"), row.pop("last_error")
    discard = {key: row.pop(key) for key in _DISCARD_COLUMNS}
    for key, value in row.items():
        print(f"{key}: {value}")
    if row["state"] == DISCARDED:
        by = discard["discarded_by_login"] or discard["discarded_by"] or "-"
        print(f"discarded: {discard['discarded_at'] or '-'} by {by}")
        print(f"discard reason: {discard['discard_reason'] or '-'}")
    print(f"raw: {'kept in inbox' if raw is not None else 'stored with the article'}")
    if trace:
        print("trace:")
        print(json.dumps(json.loads(str(trace)), indent=2, ensure_ascii=False))
    if error:
        print("error:")
        print(error)
