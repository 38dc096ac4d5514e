"""`pytrs tickets list` and `pytrs tickets show`: the ticket desk, read-only.

Place in the flow: opens the database (probed, at head) and reads through
`pytrs.tickets.queries`; nothing here writes. A listing that matches nothing and a ticket
number that does not exist exit 1 (the answer is no); a filter naming a queue or state that
does not exist exits 2 (a mistake in the arguments), naming those that do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.commands import tickets_view as view
from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.output import fit
from pytrs.config import Config
from pytrs.schema.database import utcnow
from pytrs.tickets import queries
from pytrs.tickets.escalation_reads import SOON_SECONDS, TicketClocks, escalations
from pytrs.tickets.queries import (
    OPEN_STATE_TYPES,
    ArticleView,
    TicketDetail,
    TicketFilter,
    TicketPage,
)
from pytrs.vocabulary.moments import local

# Column widths of `tickets list`; the title takes the rest of the line.
_COLUMNS = (
    ("TICKET", 16),
    ("AGE", 8),
    ("QUEUE", 12),
    ("STATE", 16),
    ("PRIORITY", 11),
    ("CUSTOMER", 26),
    ("OWNER", 14),
)
# With --escalating, after OWNER: the working time left ("-1 h 20 m escalated" when past).
_ESCALATION_COLUMN = ("ESCALATION", 20)


def list_tickets(config: Config, args: argparse.Namespace) -> int:
    where = TicketFilter(
        queue=args.queue or "",
        state=args.state or "",
        state_types=OPEN_STATE_TYPES if args.open else (),
        exclude_state_types=OPEN_STATE_TYPES if args.closed else (),
        customer=args.customer or "",
        search=args.search or "",
        escalating_by=int(time.time()) + SOON_SECONDS if args.escalating else 0,
    )
    page, clocks = asyncio.run(_page(config, where, args.limit, args.before))
    now = utcnow()
    rows = [view.ticket_json(row, now) for row in page.rows]
    if args.escalating:
        rows = [{**row, **view.escalation_json(clocks[row["id"]])} for row in rows]
    if args.json:
        print(
            json.dumps(
                {"tickets": rows, "next_before": page.next_before}, ensure_ascii=False, indent=2
            )
        )
    elif args.jsonl:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    elif rows:
        _print_list(page, now, clocks if args.escalating else None)
    if not rows:
        print("no tickets match", file=sys.stderr)
        return EXIT_FAILED
    if page.next_before and not (args.json or args.jsonl):
        print(f"more: pytrs tickets list … --before {page.next_before}", file=sys.stderr)
    return EXIT_OK


async def _page(
    config: Config, where: TicketFilter, limit: int, before: str | None
) -> tuple[TicketPage, dict[int, TicketClocks]]:
    """A page of tickets, with their escalation clocks when the list is of escalating ones."""
    async with opened(config) as db, db.connect() as conn:
        after = None
        if before:
            after = await queries.ticket_id(conn, before)
            if after is None:
                raise CommandError(f"--before {before}: no ticket with that number")
        page = await queries.list_tickets(conn, where, limit=limit, before=after)
        clocks: dict[int, TicketClocks] = {}
        if where.escalating_by:
            ids = [row.id for row in page.rows]
            clocks = await escalations(conn, ids, int(time.time()))
        return page, clocks


def _print_list(page: TicketPage, now: datetime, clocks: dict[int, TicketClocks] | None) -> None:
    columns = _COLUMNS + ((_ESCALATION_COLUMN,) if clocks is not None else ())
    print("  ".join(fit(title, width) for title, width in columns) + "  TITLE")
    for row in page.rows:
        cells: tuple[str, ...] = (
            row.tn,
            view.age(view.seconds_since(row.created, now)),
            row.queue,
            row.state,
            row.priority,
            row.customer_user or row.customer_id,
            row.owner,
        )
        if clocks is not None:
            soonest = clocks[row.id].soonest
            cells += (view.working_left(soonest.seconds_left) if soonest else "-",)
        line = "  ".join(
            fit(view.shown(cell), width) for cell, (_, width) in zip(cells, columns, strict=True)
        )
        print(f"{line}  {fit(view.shown(row.title), 60).rstrip()}")


def show_ticket(config: Config, args: argparse.Namespace) -> int:
    if args.raw is not None and (args.json or args.history):
        raise CommandError(
            "tickets show: --raw prints the mail alone, without --json or --history", EXIT_USAGE
        )
    return asyncio.run(_show(config, args))


async def _show(config: Config, args: argparse.Namespace) -> int:
    async with opened(config) as db, db.connect() as conn:
        detail = await queries.ticket_detail(conn, args.tn)
        if detail is None:
            raise CommandError(f"no ticket with number {args.tn.strip()!r}")
        if args.raw is not None:
            return await _print_raw(conn, detail, args.raw)
        trail = await queries.history(conn, detail.ticket.id) if args.history else None
        clocks = (await escalations(conn, [detail.ticket.id], int(time.time())))[detail.ticket.id]
    now = utcnow()
    if args.json:
        shown = view.detail_json(detail, now)
        shown.update(view.escalation_json(clocks))
        if trail is not None:
            shown["history"] = [view.history_json(entry) for entry in trail]
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return EXIT_OK
    _print_detail(detail, now, clocks, config.scheduler.timezone)
    if trail is not None:
        print()
        print("history:")
        for entry in trail:
            who = entry.who or "-"
            print(
                f"  {view.when(entry.time)}  {entry.type:<22}  {who:<16}  {view.shown(entry.name)}"
            )
    return EXIT_OK


async def _print_raw(conn: AsyncConnection, detail: TicketDetail, article_id: int) -> int:
    found = await queries.article_raw(conn, article_id)
    tn = detail.ticket.tn
    if found is None or found.ticket_id != detail.ticket.id:
        raise CommandError(f"ticket {tn}: has no article {article_id}")
    if found.raw is None:
        raise CommandError(f"ticket {tn}: article {article_id} keeps no stored mail")
    sys.stdout.buffer.write(found.raw)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _print_detail(detail: TicketDetail, now: datetime, clocks: TicketClocks, timezone: str) -> None:
    t = detail.ticket
    print(f"Ticket {t.tn}: {view.shown(t.title)}")
    if detail.merged_into:
        print(f"  merged into {detail.merged_into}: its articles are there now")
    print(
        f"  queue: {t.queue}   state: {t.state}   priority: {t.priority}   "
        f"lock: {detail.lock}   type: {detail.type}"
    )
    customer = t.customer_user or "-"
    if t.customer_id and t.customer_id != t.customer_user:
        customer += f" (customer id {t.customer_id})"
    print(f"  customer: {view.shown(customer)}")
    print(f"  owner: {t.owner or '-'}   responsible: {detail.responsible or '-'}")
    age = view.age(view.seconds_since(t.created, now))
    print(
        f"  created: {view.when(t.created)} UTC ({age} ago)   changed: {view.when(t.changed)} UTC"
    )
    _print_clocks(clocks, timezone)
    for item in detail.articles:
        _print_article(item)


def _print_clocks(clocks: TicketClocks, timezone: str) -> None:
    """The SLA, the pending time and the running escalation clocks (local times)."""
    # Only what the ticket has: most tickets have neither an SLA nor a pending time.
    if clocks.sla or clocks.pending_until:
        pending = local(clocks.pending_until, timezone) if clocks.pending_until else "-"
        print(f"  sla: {view.shown(clocks.sla) or '-'}   pending until: {pending}")
    running = [clock for clock in clocks.clocks if clock.deadline]
    if not running:
        return
    print("  escalation (working time left):")
    for clock in running:
        print(
            f"    {clock.kind:<9} {local(clock.deadline, timezone)}  "
            f"{view.working_left(clock.seconds_left)}"
        )


def _print_article(item: ArticleView) -> None:
    visibility = "visible to the customer" if item.visible else "internal"
    print()
    print(
        f"--- article {item.id}: {item.sender_type}, {item.channel}, {visibility}, "
        f"{view.when(item.created)} UTC ---"
    )
    headers = {"From": item.from_, "To": item.to, "Cc": item.cc, "Subject": item.subject}
    for label, value in headers.items():
        if value:
            print(f"{label}: {view.shown(value)}")
    for part in item.attachments:
        print(f"Attachment: {view.shown(part.name)} ({part.size} bytes, {part.content_type})")
    print()
    print(view.shown(item.body).rstrip("\n"))
