"""Reading tickets through the API: the queue view's list, the search, one ticket, its history.

Place in the flow: read-only, the JSON twin of the web view's queue view, search and zoom
(`web/agents/`). The list is `tickets/listing.queue_page` and the search
`tickets/search_reads.search`, both with the caller's readable queues in every query, so no
filter, sort, cursor or search term shows a ticket of another queue; one ticket is checked by
`web/api/ticket_access.py` (missing and unreadable: the same 404).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.tickets import TicketRecord, UnknownName, api_reads, queries
from pytrs.tickets.escalation_reads import SOON_SECONDS, TicketClocks, escalations
from pytrs.tickets.listing import QueueFilter, QueueRow, Sort, decode_cursor, queue_page
from pytrs.tickets.search_reads import search
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.paging import Page, bad_cursor
from pytrs.web.api.resources.ticket_models import (
    Escalation,
    EscalationClock,
    HistoryItem,
    HistoryOut,
    SearchRow,
    TicketListQuery,
    TicketOut,
    TicketRow,
    TicketSearchQuery,
    epoch,
    links_out,
    utc,
    utc_epoch,
)
from pytrs.web.api.ticket_access import readable_ticket

api = Operations(tag="tickets")

SEARCH_MAX = 500  # results a search pages through; a query finding more should be narrower


@api.get(
    "/tickets",
    access="agent",
    query=TicketListQuery,
    response=Page[TicketRow],
    summary="Tickets of your queues, filtered and sorted",
    problems=("unknown-name",),
)
async def list_tickets(ctx: Context, query: TicketListQuery) -> Page[TicketRow]:
    """The queue view: the tickets of the queues you may read, filtered as the web view's
    queue view filters, sorted, and paged by keyset (`next_cursor`), so tickets arriving
    between two pages shift nothing. A queue you may not read is an unknown name."""
    sort = Sort(query.sort, query.order or "").resolved()
    if query.cursor and decode_cursor(query.cursor, sort) is None:
        raise bad_cursor()
    async with ctx.transaction() as conn:
        where = await _filter(ctx, conn, query)
        page = await queue_page(conn, ctx.user.readable, where, sort, query.cursor, query.limit)
    return Page(items=[ticket_row(r) for r in page.rows], next_cursor=page.next_cursor)


async def _filter(ctx: Context, conn: AsyncConnection, query: TicketListQuery) -> QueueFilter:
    """The listing's filter from the query's names. Raises UnknownName."""
    names = await ctx.tickets.names(conn)
    queue_id = state_id = owner_id = None
    if query.queue is not None:
        readable = {n: i for n, i in names.queues.items() if ctx.user.can_read(i)}
        if query.queue not in readable:
            raise UnknownName("queue", query.queue, list(readable))
        queue_id = readable[query.queue]
    if query.state is not None:
        if query.state not in names.states:
            raise UnknownName("state", query.state, list(names.states))
        state_id = names.states[query.state][0]
    if query.owner == "me":
        owner_id = ctx.user.id
    elif query.owner is not None:
        if query.owner not in names.users:
            raise UnknownName("agent", query.owner)
        owner_id = names.users[query.owner]
    return QueueFilter(
        queue_id=queue_id,
        view=query.view,
        state_id=state_id,
        owner_id=owner_id,
        unassigned=query.unassigned,
        escalating_by=int(time.time()) + SOON_SECONDS if query.escalating else 0,
    )


def ticket_row(r: QueueRow) -> TicketRow:
    return TicketRow(
        tn=r.tn,
        id=r.id,
        title=r.title,
        queue=r.queue,
        state=r.state,
        state_type=r.state_type,
        priority=r.priority,
        owner=r.owner,
        locked=r.locked,
        customer_user=r.customer,
        created=utc(r.created),
        changed=utc(r.changed),
        escalation=epoch(r.escalation_time),
    )


@api.get(
    "/tickets/search",
    access="agent",
    query=TicketSearchQuery,
    response=Page[SearchRow],
    summary="Search your tickets",
)
async def search_tickets(ctx: Context, query: TicketSearchQuery) -> Page[SearchRow]:
    """Full-text search as the web view's: a ticket number first, then tickets with every word
    in a subject, then every word anywhere (newest first within each), among the queues you
    may read. Paged by `next_cursor`, up to 500 results."""
    text = query.q.strip()
    start = _search_offset(query.cursor, text) if query.cursor else 0
    wanted = min(start + query.limit, SEARCH_MAX)
    async with ctx.transaction() as conn:
        hits = await search(conn, ctx.user.readable, text, wanted + 1) if text else []
    more = len(hits) > wanted and wanted < SEARCH_MAX
    items = [
        SearchRow.model_validate(
            {
                **ticket_row(h.ticket).model_dump(),
                "match": h.why,
                "article_id": h.article_id,
                "subject": h.subject,
                "sender": h.sender,
                "snippet": h.snippet,
            }
        )
        for h in hits[start:wanted]
    ]
    return Page(items=items, next_cursor=_search_cursor(wanted, text) if more else None)


def _query_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _search_cursor(offset: int, text: str) -> str:
    data = json.dumps([_query_key(text), offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _search_offset(cursor: str, text: str) -> int:
    """Where a search cursor continues. Raises Problem for a cursor of another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, offset = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_cursor() from None
    if key != _query_key(text) or not isinstance(offset, int) or not 0 < offset < SEARCH_MAX:
        raise bad_cursor()
    return offset


@api.get(
    "/tickets/{tn}", access="ticket-read", response=TicketOut, summary="One ticket by its number"
)
async def get_ticket(ctx: Context, tn: str) -> TicketOut:
    """Every field of the ticket, its escalation times, links and number of articles. A ticket
    of a queue you may not read is answered as one that does not exist."""
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        return await ticket_out(conn, ticket, ctx.user.readable)


async def ticket_out(
    conn: AsyncConnection, ticket: TicketRecord, readable: Collection[int]
) -> TicketOut:
    """The ticket as the API shows it to a caller who reads the `readable` queues, read in
    the caller's transaction."""
    facts = await api_reads.ticket_facts(conn, ticket.id, ticket.state_type, readable)
    clocks = (await escalations(conn, [ticket.id], int(time.time())))[ticket.id]
    return TicketOut(
        tn=ticket.tn,
        id=ticket.id,
        title=ticket.title,
        queue=ticket.queue,
        queue_id=ticket.queue_id,
        state=ticket.state,
        state_type=ticket.state_type,
        priority=ticket.priority,
        lock=ticket.lock,
        owner=ticket.owner,
        responsible=ticket.responsible,
        type=ticket.type,
        customer_user=ticket.customer_user,
        customer_id=ticket.customer_id,
        created=utc(ticket.create_time),
        changed=utc(ticket.change_time),
        escalation=_escalation(facts.escalation, clocks),
        sla=clocks.sla or None,
        pending_until=epoch(clocks.pending_until),
        links=links_out(facts.links),
        articles=facts.articles,
        merged_into=facts.merged_into or None,
    )


def _escalation(first: int, clocks: TicketClocks) -> Escalation | None:
    """The ticket's escalation clocks; None when it has no deadline."""
    if not clocks.soonest:
        return None
    shown = {
        clock.kind: EscalationClock(
            deadline=utc_epoch(clock.deadline),
            seconds_left=clock.seconds_left,
            escalated=clock.escalated,
        )
        for clock in clocks.clocks
        if clock.deadline
    }
    return Escalation(
        first=epoch(first) or epoch(clocks.soonest.deadline),
        escalated=clocks.escalated,
        response=shown.get("response"),
        update=shown.get("update"),
        solution=shown.get("solution"),
    )


@api.get(
    "/tickets/{tn}/history", access="ticket-read", response=HistoryOut, summary="A ticket's history"
)
async def ticket_history(ctx: Context, tn: str) -> HistoryOut:
    """The ticket's audit trail (Znuny's ticket history), oldest first. Tickets it was merged
    or linked with that you may not see are named "(hidden)"."""
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        entries = await queries.history(conn, ticket.id)
        segments = {part for e in entries for part in e.name.split("%%")}
        hidden = await api_reads.hidden_numbers(conn, segments, ctx.user.readable)
    items = []
    for e in entries:
        name = api_reads.redacted(e.name, hidden) if hidden else e.name
        items.append(
            HistoryItem(
                time=utc(e.time),
                type=e.type,
                name=name,
                parameters=[p for p in name.split("%%") if p],
                who=e.who,
                article_id=e.article_id,
            )
        )
    return HistoryOut(tn=ticket.tn, entries=items)
