"""The ticket actions an agent posts from the zoom: internal note, field changes (state,
priority, queue, owner, title) and merge. The reply has its own module (`agents.reply`).

Place in the flow: each action is one transaction through the ticket service, which writes
the history; the agent must be allowed to act in the ticket's queue (`rw`; 403 for `ro`, 404
for a ticket they may not see). A `TicketError` becomes a one-line flash; then the browser is
sent back to the ticket (POST → redirect → GET).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.schema import agent_access, storable
from pytrs.tickets import (
    Actor,
    Changes,
    InvalidChange,
    TicketError,
    TicketNotFound,
    TicketRecord,
    TicketUpdate,
)
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents.ticket_access import service, ticket_url, writable_ticket
from pytrs.web.pages import flash, redirect

# An action: (connection, ticket, actor, form) → (flash text, where to go next).
Action = Callable[
    [Request, WebUser, AsyncConnection, TicketRecord, Actor, FormData], Awaitable[tuple[str, str]]
]


async def run_action(request: Request, user: WebUser, action: Action, form: FormData) -> Response:
    """Run `action` on the ticket of the URL in one transaction; flash its outcome."""
    tn = request.path_params["tn"]
    try:
        async with request.app.state.db.transaction() as conn:
            ticket = await writable_ticket(request, conn, user, tn)
            actor = await service(request).agent(conn, user.login)
            text, target = await action(request, user, conn, ticket, actor, form)
    except TicketError as exc:
        flash(request, str(exc), "error")
        return redirect(ticket_url(tn))
    flash(request, text)
    return redirect(target)


def field(form: FormData, name: str) -> str:
    """A text field of the form, made storable (`storable.clean`: no NUL, which PostgreSQL
    cannot hold; nobody types one)."""
    value = form.get(name)
    return storable.clean(value) if isinstance(value, str) else ""


async def _note(
    request: Request,
    user: WebUser,
    conn: AsyncConnection,
    ticket: TicketRecord,
    actor: Actor,
    form: FormData,
) -> tuple[str, str]:
    await service(request).note(
        conn, ticket.id, actor=actor, body=field(form, "body"),
        subject=field(form, "subject").strip() or None,
    )  # fmt: skip
    return "Note added.", ticket_url(ticket.tn)


async def _update(
    request: Request,
    user: WebUser,
    conn: AsyncConnection,
    ticket: TicketRecord,
    actor: Actor,
    form: FormData,
) -> tuple[str, str]:
    wanted = {name: field(form, name).strip() or None
              for name in ("state", "priority", "queue", "owner", "title")}  # fmt: skip
    if wanted["queue"] and wanted["queue"] != ticket.queue:
        queue_id = (await service(request).names(conn)).queues.get(wanted["queue"])
        if queue_id is not None and not user.can_write(queue_id):
            raise InvalidChange(f"you may not move tickets to queue {wanted['queue']!r}")
    if wanted["owner"] and wanted["owner"] != ticket.owner:
        await _check_owner(request, conn, ticket, wanted["owner"], wanted["queue"])
    update = TicketUpdate(
        state=wanted["state"], priority=wanted["priority"], queue=wanted["queue"],
        owner=wanted["owner"], title=wanted["title"],
    )  # fmt: skip
    changes = await service(request).update(conn, ticket.id, update, actor=actor)
    target = ticket_url(ticket.tn)
    if not user.can_read(changes.ticket.queue_id):
        target = "/"  # moved out of the agent's sight
    return _changed(changes), target


async def _check_owner(
    request: Request, conn: AsyncConnection, ticket: TicketRecord, owner: str, queue: str | None
) -> None:
    """A new owner must be able to work on the ticket where it ends up (Znuny's owner lists
    offer only agents with `rw` there); an unknown name is left to the service's own error."""
    names = await service(request).names(conn)
    queue_id = names.queues.get(queue or "", ticket.queue_id)
    if owner in names.users and owner not in await agent_access.writers_of(conn, queue_id):
        raise InvalidChange(f"{owner} may not work on tickets of queue {queue or ticket.queue}")


def _changed(changes: Changes) -> str:
    if not changes:
        return "Nothing changed."
    parts = [f"{c.field} {c.old} → {c.new}" for c in changes.fields]
    return "Changed " + "; ".join(parts) + "."


async def _merge(
    request: Request,
    user: WebUser,
    conn: AsyncConnection,
    ticket: TicketRecord,
    actor: Actor,
    form: FormData,
) -> tuple[str, str]:
    number = field(form, "into").strip()
    try:
        target = await service(request).find(conn, number)
    except TicketNotFound:
        target = None
    # A ticket the agent may not act on is answered as one that does not exist.
    if target is None or not user.can_write(target.queue_id):
        raise TicketNotFound(f"no ticket with number {number[:40]!r} you may merge into")
    await service(request).merge(conn, ticket.id, into=target.id, actor=actor)
    return f"Merged into ticket {target.tn}.", ticket_url(target.tn)


def _endpoint(action: Action) -> Callable[[Request, WebUser], Awaitable[Response]]:
    async def endpoint(request: Request, user: WebUser) -> Response:
        form = await request.form()
        try:
            return await run_action(request, user, action, form)
        finally:
            await form.close()

    endpoint.__name__ = action.__name__.strip("_")
    return endpoint


routes: list[BaseRoute] = [
    Route("/tickets/{tn}/note", agent_page(_endpoint(_note)), methods=["POST"]),
    Route("/tickets/{tn}/update", agent_page(_endpoint(_update)), methods=["POST"]),
    Route("/tickets/{tn}/merge", agent_page(_endpoint(_merge)), methods=["POST"]),
]
