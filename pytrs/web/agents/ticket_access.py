"""Which ticket a URL names, if the signed-in agent may see it: the one check every ticket
page, action and download makes first.

Place in the flow: inside the page's transaction, before anything about the ticket is read
or changed. A ticket of a queue the agent may not read answers exactly as a number that does
not exist (404, the same page), so a URL never tells whether a ticket exists; `ro` agents
read, and only `rw` agents act (403).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.exceptions import HTTPException
from starlette.requests import Request

from pytrs.tickets import TicketNotFound, TicketRecord, TicketService
from pytrs.web.access import WebUser

NOT_FOUND = "There is no such ticket, or you may not see it."


def service(request: Request) -> TicketService:
    found: TicketService = request.app.state.tickets
    return found


async def readable_ticket(
    request: Request, conn: AsyncConnection, user: WebUser, tn: str
) -> TicketRecord:
    """Ticket number `tn` if `user` may read it. Raises HTTPException 404 otherwise."""
    try:
        ticket = await service(request).find(conn, tn)
    except TicketNotFound:
        raise HTTPException(404, NOT_FOUND) from None
    if not user.can_read(ticket.queue_id):
        raise HTTPException(404, NOT_FOUND)
    return ticket


async def writable_ticket(
    request: Request, conn: AsyncConnection, user: WebUser, tn: str
) -> TicketRecord:
    """Ticket number `tn` if `user` may act on it: 404 when it cannot be read, 403 when it
    can only be read."""
    ticket = await readable_ticket(request, conn, user, tn)
    if not user.can_write(ticket.queue_id):
        raise HTTPException(403, "You may read this ticket but not change it.")
    return ticket


def ticket_url(tn: str) -> str:
    return f"/tickets/{tn}"
