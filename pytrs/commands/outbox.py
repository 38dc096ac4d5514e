"""`pytrs outbox list|show|retry|flush|suppressed|unsuppress`: the durable outbox, for operators.

Place in the flow: the postmaster queues mail in ``outbox_message`` and the outbox sender
delivers it (``outbound.sender``); these commands let an operator see what is waiting, why a
mail failed and to whom, send failed mail again once the cause is fixed, send deferred mail
now once the relay is back (``flush``, the daemon's own sender code: see ``outbox_flush``), and
lift address suppressions left by hard bounces. They change rows only through ``outbox_repo``
and ``outbox_admin``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.commands import args as arg_types
from pytrs.commands import outbox_flush
from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_USAGE, CommandError
from pytrs.commands.output import add_json_options, print_json
from pytrs.config import Config
from pytrs.schema import outbox_admin, outbox_repo
from pytrs.schema.database import Database
from pytrs.schema.outbox_repo import FAILED, PENDING, SENDING, SENT, Requeue
from pytrs.schema.tables import outbox
from pytrs.vocabulary.times import when


def add_parser(sub: argparse._SubParsersAction) -> None:
    box = sub.add_parser("outbox", help="outbound mail: the queue, failures, suppressions")
    actions = box.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list outbox rows, newest first")
    listing.add_argument("--state", choices=(PENDING, SENDING, SENT, FAILED, "all"), default="all")
    listing.add_argument("--limit", type=arg_types.limit, default=50, help="at most this many rows")
    add_json_options(listing)
    show = actions.add_parser("show", help="one row with its per-recipient results")
    show.add_argument("id", type=arg_types.row_id)
    show.add_argument("--raw", action="store_true", help="print the stored message only")
    retry = actions.add_parser("retry", help="send failed mail again")
    retry.add_argument("ids", type=arg_types.row_id, nargs="*")
    retry.add_argument("--all-failed", action="store_true", help="every failed row")
    flush = actions.add_parser(
        "flush", help="send deferred mail now (after the relay is fixed)",
        description="Make deferred mail due now and send it from this process with the "
        "configured relay and DKIM keys. Exit 0 when all of it was sent, 1 when some is "
        "still deferred or failed.",
    )  # fmt: skip
    flush.add_argument("--ids", type=arg_types.row_id, nargs="+", metavar="ID",
                       help="only these outbox rows")  # fmt: skip
    flush.add_argument("--no-send", action="store_true",
                       help="only make them due; a running daemon sends them")  # fmt: skip
    flush.add_argument("--json", action="store_true", help="one JSON document")
    held = actions.add_parser("suppressed", help="addresses not sent to (hard bounces)")
    add_json_options(held)
    lift = actions.add_parser("unsuppress", help="send to these addresses again")
    lift.add_argument("addresses", nargs="+", metavar="ADDRESS")


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "retry" and bool(args.ids) == args.all_failed:
        raise CommandError("outbox retry: give outbox ids or --all-failed (not both)", EXIT_USAGE)
    if args.action == "flush":
        return asyncio.run(
            outbox_flush.flush(config, args.ids, send=not args.no_send, as_json=args.json)
        )
    return asyncio.run(_outbox_async(config, args))


async def _outbox_async(config: Config, args: argparse.Namespace) -> int:
    async with opened(config) as db:
        if args.action == "retry":
            return await _retry(db, None if args.all_failed else args.ids)
        if args.action == "unsuppress":
            return await _unsuppress(db, args.addresses)
        async with db.connect() as conn:
            if args.action == "show":
                return await _show(conn, args.id, raw_only=args.raw)
            if args.action == "suppressed":
                _print_suppressions(await outbox_repo.active_suppressions(conn), args)
                return 0
            rows = await outbox_admin.listing(conn, args.state, args.limit)
    if not print_json(rows, args):
        _print_list(rows)
    return 0


def _print_list(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'ID':>8}  {'STATE':<7}  {'KIND':<14}  {'TICKET':>7}  {'TRIES':>5}  "
        f"{'NEXT ATTEMPT (UTC)':<19}  {'CREATED (UTC)':<19}  RECIPIENTS"
    )
    for r in rows:
        # Sent and failed rows are not tried again; their next_attempt_at means nothing.
        due = when(r["next_attempt_at"]) if r["state"] == PENDING else "-"
        print(
            f"{r['id']:>8}  {r['state']:<7}  {r['kind']:<14}  {r['ticket_id'] or '-'!s:>7}  "
            f"{r['attempts']:>5}  {due:<19}  {when(r['created_at']):<19}  "
            f"{', '.join(r['recipients'])}"
        )
        error = str(r["last_error"] or "").strip().splitlines()
        if error:
            print(f"{'':>8}  error: {error[0][:160]}")


async def _show(conn: AsyncConnection, row_id: int, *, raw_only: bool) -> int:
    row = (await conn.execute(select(outbox).where(outbox.c.id == row_id))).first()
    if row is None:
        print(f"outbox {row_id}: no such row", file=sys.stderr)
        return 1
    if raw_only:
        if row.raw is None:
            print(f"outbox {row_id}: {_no_bytes(row.state, row.article_id)}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(row.raw)
        return 0
    recipients = json.loads(row.recipients)
    blocked = await outbox_repo.suppressed(conn, recipients)
    _print_row(row._asdict(), recipients, blocked)
    return 0


def _print_row(
    row: dict[str, Any], recipients: list[str], blocked: dict[str, outbox_repo.Suppression]
) -> None:
    raw, results, error = row.pop("raw"), row.pop("results"), row.pop("last_error")
    for key in ("recipients", "claim_token"):
        row.pop(key)
    for key, value in row.items():
        print(f"{key}: {when(value) if isinstance(value, datetime) else value}")
    gone = _no_bytes(row["state"], row["article_id"])
    print(f"raw: {f'kept ({len(raw)} bytes)' if raw is not None else gone}")
    done = json.loads(results) if results else {}
    print("recipients:")
    for address in recipients:
        result = done.get(address, {})
        print(f"  {address}: {result.get('status', 'not tried')}  {result.get('reply', '')}")
        held = blocked.get(address.lower())
        if held:
            print(f"    suppressed until {when(held.until)} UTC: {held.reason}")
    if error:
        print("error:")
        print(error)


def _no_bytes(state: str, article_id: int | None) -> str:
    if state == SENT:
        where = f"article {article_id}" if article_id else "the article"
        return f"message bytes not kept once sent ({where} keeps its copy)"
    return "message bytes not kept"


async def _retry(db: Database, ids: list[int] | None) -> int:
    found = await outbox_repo.requeue_failed(db, ids)
    missing = sorted(set(ids or ()) - {item.id for item in found})
    for row_id in missing:
        print(f"outbox {row_id}: no such row", file=sys.stderr)
    refused = [item for item in found if not item.requeued]
    for item in refused:
        print(f"outbox {item.id}: {outbox_admin.refusal(item)}", file=sys.stderr)
    requeued = [item for item in found if item.requeued]
    for item in requeued:
        print(f"outbox {item.id}: queued again for {', '.join(item.recipients)}")
    await _warn_suppressed(db, requeued)
    print(f"{len(requeued)} message(s) re-queued")
    return 1 if missing or refused else 0


async def _warn_suppressed(db: Database, requeued: list[Requeue]) -> None:
    # The sender refuses suppressed addresses again at once; say so now, not after the fact.
    addresses = {address for item in requeued for address in item.recipients}
    async with db.connect() as conn:
        blocked = await outbox_repo.suppressed(conn, addresses)
    for address, entry in sorted(blocked.items()):
        print(
            f"note: {address} is suppressed until {when(entry.until)} UTC and will be refused "
            f"again; `pytrs outbox unsuppress {address}` lifts it",
            file=sys.stderr,
        )


def _print_suppressions(entries: list[outbox_repo.Suppression], args: argparse.Namespace) -> None:
    items = [
        {"address": e.address, "until": e.until, "reason": e.reason, "ticket_id": e.ticket_id}
        for e in entries
    ]
    if print_json(items, args):
        return
    print(f"{'ADDRESS':<40}  {'UNTIL (UTC)':<19}  {'TICKET':>7}  REASON")
    for e in entries:
        reason = (e.reason.strip().splitlines() or [""])[0][:120]
        print(f"{e.address:<40}  {when(e.until):<19}  {e.ticket_id or '-'!s:>7}  {reason}")


async def _unsuppress(db: Database, addresses: list[str]) -> int:
    status = 0
    async with db.transaction() as conn:
        for address in addresses:
            if await outbox_repo.lift_suppression(conn, address):
                print(f"{address}: suppression lifted")
            else:
                print(f"{address}: not suppressed", file=sys.stderr)
                status = 1
    return status
