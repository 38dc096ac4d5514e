"""Changing tickets through the API: create one with its first article, change its fields,
merge it into another, link two.

Place in the flow: each operation is one transaction (`ctx.transaction()`) through the ticket
service, which writes the history; the caller must be `rw` on the ticket's queue
(`web/api/ticket_access.py`: 404 when they cannot read it, 403 when they only read it), and
on a queue a ticket is created in or moved to, and a new owner must be `rw` where the ticket
ends up, as in the web view's actions (`web/agents/actions.py`). A queue the caller may not
write is answered as an unknown name, like a queue that does not exist.
"""

from __future__ import annotations

import time
from datetime import datetime
from email.utils import formataddr

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from pytrs.schema import agent_access
from pytrs.tickets import (
    Actor,
    ArticleAttachment,
    ArticleInput,
    InvalidChange,
    NewTicket,
    TicketUpdate,
    UnknownName,
    api_reads,
)
from pytrs.tickets.model import Names
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.resources import tickets_files
from pytrs.web.api.resources.ticket_models import (
    ChangedField,
    LinkCreated,
    LinkIn,
    MergeIn,
    MergeOut,
    TicketCreate,
    TicketCreated,
    TicketPatch,
    TicketPatched,
    links_out,
)
from pytrs.web.api.resources.tickets_created import created
from pytrs.web.api.resources.tickets_read import ticket_out
from pytrs.web.api.ticket_access import other_writable, writable_ticket

api = Operations(tag="tickets")


@api.post(
    "/tickets",
    access="agent",
    body=TicketCreate,
    response=TicketCreated,
    status=201,
    idempotent=True,
    multipart=True,
    max_body=tickets_files.BODY_MAX,
    summary="Create a ticket with its first article",
    problems=("unknown-name", "invalid-change"),
)
async def create_ticket(ctx: Context, body: TicketCreate) -> Response:
    """A new ticket in a queue you may write, with its first article (as Znuny's
    GenericInterface TicketCreate): the ticket's fields by name, the article's sender,
    channel, addresses, subject and text, and files as base64 in JSON or as `attachments`
    file parts of a multipart request. Creating a ticket here sends no mail (no
    auto-response, no notification). Send an `Idempotency-Key` to retry safely: a retried
    request with the same key answers the first one's result and makes no second ticket."""
    files = tickets_files.attachments(ctx, body.attachments)
    async with ctx.transaction() as conn:
        names = await ctx.tickets.names(conn)
        queue_id = writable_queue(ctx, names, body.queue)
        if body.owner and body.owner != ctx.user.login:
            await check_owner(conn, names, body.owner, queue_id, body.queue)
        new = _new_ticket(body, files, ctx.actor)
        ticket_id, tn = await ctx.tickets.create(conn, new, actor=ctx.actor)
        [first], _more = await api_reads.article_page(conn, ticket_id, after=None, limit=1)
    return created(TicketCreated(tn=tn, id=ticket_id, article_id=first.id), f"/api/v1/tickets/{tn}")


def _new_ticket(body: TicketCreate, files: list[ArticleAttachment], actor: Actor) -> NewTicket:
    """The service's new ticket, its first article from the body's article fields."""
    article = ArticleInput(
        sender=body.sender,
        visible=body.visible,
        channel=body.channel,
        from_=body.from_ or _default_from(body, actor),
        to=body.to,
        cc=body.cc,
        subject=body.subject or body.title,
        body=body.body,
        attachments=files,
    )
    return NewTicket(
        title=body.title,
        queue=body.queue,
        customer_user=body.customer_user,
        customer_id=body.customer_id,
        state=body.state,
        priority=body.priority,
        lock=body.lock,
        owner=body.owner,
        responsible=body.responsible,
        type=body.type,
        article=article,
    )


def _default_from(body: TicketCreate, actor: Actor) -> str:
    if body.sender == "agent":
        return formataddr((actor.name or actor.login, actor.email)) if actor.email else actor.login
    return body.customer_user


def writable_queue(ctx: Context, names: Names, queue: str) -> int:
    """The id of `queue` if the caller may write it. Raises UnknownName otherwise (a queue
    they may not write is answered as one that does not exist)."""
    writable = {n: i for n, i in names.queues.items() if ctx.user.can_write(i)}
    if queue not in writable:
        raise UnknownName("queue you may write", queue, list(writable))
    return writable[queue]


async def check_owner(
    conn: AsyncConnection, names: Names, owner: str, queue_id: int, queue: str
) -> None:
    """A new owner must be able to work on the ticket where it ends up (Znuny's owner lists
    offer only agents with `rw` there); an unknown login is left to the service's error."""
    if owner in names.users and owner not in await agent_access.writers_of(conn, queue_id):
        raise InvalidChange(f"{owner} may not work on tickets of queue {queue}")


@api.patch(
    "/tickets/{tn}",
    access="ticket-write",
    body=TicketPatch,
    response=TicketPatched,
    summary="Change a ticket's fields",
    problems=("unknown-name", "invalid-change", "ticket-merged"),
)
async def update_ticket(ctx: Context, tn: str, body: TicketPatch) -> TicketPatched:
    """Change state, pending time, SLA, priority, queue, owner, responsible, lock, title,
    type or customer by name; fields left out (or null) stay. A pending state needs a
    `pending_until` unless the ticket has one. Each change writes the ticket's history as in
    the web view. Answers the ticket after the change and the fields that changed."""
    wanted = body.model_dump(exclude_none=True)
    if body.pending_until is not None:
        wanted["pending_until"] = _pending_until(body.pending_until)
    async with ctx.transaction() as conn:
        ticket = await writable_ticket(ctx, conn, tn)
        names = await ctx.tickets.names(conn)
        queue_id = ticket.queue_id
        if "queue" in wanted and wanted["queue"] != ticket.queue:
            queue_id = writable_queue(ctx, names, wanted["queue"])
        if "owner" in wanted and wanted["owner"] != ticket.owner:
            queue = wanted.get("queue", ticket.queue)
            await check_owner(conn, names, wanted["owner"], queue_id, queue)
        changes = await ctx.tickets.update(conn, ticket.id, TicketUpdate(**wanted), actor=ctx.actor)
        after = await ctx.tickets.get(conn, ticket.id, lock=False)
        shown = await ticket_out(conn, after, ctx.user.readable)
    return TicketPatched(
        ticket=shown,
        changed=[ChangedField(field=c.field, old=c.old, new=c.new) for c in changes.fields],
    )


def _pending_until(moment: datetime) -> int:
    """Epoch seconds of a pending time. Raises InvalidChange for one not in the future."""
    epoch = int(moment.timestamp())
    if epoch <= int(time.time()):
        raise InvalidChange(f"pending_until {moment.isoformat()} is not in the future")
    return epoch


@api.post(
    "/tickets/{tn}/merge",
    access="ticket-write",
    body=MergeIn,
    response=MergeOut,
    summary="Merge a ticket into another",
    problems=("unknown-name", "invalid-change", "ticket-merged"),
)
async def merge_ticket(ctx: Context, tn: str, body: MergeIn) -> MergeOut:
    """Znuny's TicketMerge: the ticket's articles move to the target, it gets a note saying
    so, `Merged` history on both, state `merged`, and the target becomes its parent. You need
    rw on both tickets' queues; a target you may not see is answered as a missing one
    (422 unknown-name: the path's ticket is there)."""
    async with ctx.transaction() as conn:
        ticket = await writable_ticket(ctx, conn, tn)
        target = await other_writable(ctx, conn, body.into.strip(), "to merge into")
        await ctx.tickets.merge(conn, ticket.id, into=target.id, actor=ctx.actor)
        after = await ctx.tickets.get(conn, ticket.id, lock=False)
        return MergeOut(ticket=await ticket_out(conn, after, ctx.user.readable), into=target.tn)


@api.post(
    "/tickets/{tn}/links",
    access="ticket-write",
    body=LinkIn,
    response=LinkCreated,
    summary="Link a ticket to another",
    problems=("unknown-name", "invalid-change"),
)
async def link_ticket(ctx: Context, tn: str, body: LinkIn) -> LinkCreated:
    """Link the ticket to another one you may write (one you may not see is answered as a
    missing one, 422 unknown-name): `Normal`, or `ParentChild` with this
    ticket as the parent. Each new link writes `TicketLinkAdd` history on both; linking twice
    changes nothing (`created` false)."""
    async with ctx.transaction() as conn:
        ticket = await writable_ticket(ctx, conn, tn)
        other = await other_writable(ctx, conn, body.other.strip(), "to link to")
        created = await ctx.tickets.link(conn, ticket.id, other.id, actor=ctx.actor, kind=body.kind)
        found = await api_reads.ticket_links(conn, ticket.id, ctx.user.readable)
    return LinkCreated(
        created=created,
        links=links_out(found),
    )
