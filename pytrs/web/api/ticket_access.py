"""Which ticket an API path names, if the token's user may see it: the one check every ticket,
article and attachment operation makes first.

Place in the flow: inside the operation's transaction, before anything about the ticket is
read or changed. A ticket of a queue the user may not read answers exactly as a number that
does not exist (the same 404 problem, word for word), so the API never tells whether a ticket
exists; `ro` users read, and only `rw` users act (403 `forbidden`). The web view's twin is
`web/agents/ticket_access.py`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.tickets import TicketNotFound, TicketRecord
from pytrs.web.api.operations import Context
from pytrs.web.api.problems import Problem

NOT_FOUND = "There is no such ticket, or you may not see it."  # as problems.from_ticket_error
READ_ONLY = "You may read this ticket but not change it: your access to its queue is read-only."


def not_found() -> Problem:
    """The one answer for a ticket that is missing or out of the caller's sight."""
    return Problem(404, "not-found", NOT_FOUND)


async def readable_ticket(ctx: Context, conn: AsyncConnection, tn: str) -> TicketRecord:
    """Ticket number `tn` if the caller may read it. Raises Problem 404 otherwise."""
    try:
        ticket = await ctx.tickets.find(conn, tn)
    except TicketNotFound:
        raise not_found() from None
    if not ctx.user.can_read(ticket.queue_id):
        raise not_found()
    return ticket


async def writable_ticket(ctx: Context, conn: AsyncConnection, tn: str) -> TicketRecord:
    """Ticket number `tn` if the caller may act on it: 404 when it cannot be read, 403 when it
    can only be read."""
    ticket = await readable_ticket(ctx, conn, tn)
    if not ctx.user.can_write(ticket.queue_id):
        raise Problem(403, "forbidden", READ_ONLY)
    return ticket


async def other_writable(ctx: Context, conn: AsyncConnection, tn: str, role: str) -> TicketRecord:
    """The other ticket of a merge or link, named in the body (`role` says how in the detail,
    e.g. "to merge into"): missing or unreadable is the same 422 `unknown-name` (the path's
    ticket exists, so not a 404, which would say that it does not), read-only is 403."""
    try:
        other = await ctx.tickets.find(conn, tn)
    except TicketNotFound:
        other = None
    if other is None or not ctx.user.can_read(other.queue_id):
        detail = f"There is no ticket {tn[:40]!r} {role} that you may see; check the number."
        raise Problem(422, "unknown-name", detail)
    if not ctx.user.can_write(other.queue_id):
        raise Problem(403, "forbidden", f"You may read ticket {other.tn} but not change it.")
    return other
