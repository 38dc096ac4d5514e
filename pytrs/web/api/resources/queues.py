"""API resource `queues`: the queues the agent may read, and their answer templates.

Place in the flow: the worked example of a resource module (see `operations.py`): reads only,
through `tickets/listing.py` (open-ticket counts, limited to the agent's queues) and
`schema/standard_template_repo.py`. A queue the agent may not read is answered 404, like one
that does not exist.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import standard_template_repo
from pytrs.tickets import listing
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.problems import Problem

api = Operations(tag="queues", description="Queues the token's agent may read or work in.")


class QueueOut(BaseModel):
    id: int = Field(description="The queue's id.")
    name: str = Field(description="The queue's name, as tickets are moved by.")
    permission: Literal["rw", "ro"] = Field(
        description="The agent's access: `rw` works on tickets, `ro` only reads them."
    )
    open_tickets: int = Field(description="Tickets of the queue that still want work.")


class TemplateOut(BaseModel):
    id: int
    name: str = Field(description="The template's name.")
    text: str = Field(description="The template's text, to start a reply from.")
    content_type: str = Field(description="`text/plain` or `text/html`.")


@api.get("/queues", access="agent", response=list[QueueOut], summary="The agent's queues")
async def list_queues(ctx: Context) -> list[QueueOut]:
    """Every queue the agent may read (an administrator: every queue), by name, with the
    agent's permission and the number of open tickets."""
    async with ctx.transaction() as conn:
        counts = await listing.queue_counts(conn, ctx.user.readable, listing.QueueFilter())
    return [_queue(ctx, c) for c in counts]


@api.get("/queues/{queue_id:int}", access="agent", response=QueueOut, summary="One queue")
async def get_queue(ctx: Context, queue_id: int) -> QueueOut:
    """The queue, if the agent may read it; 404 otherwise."""
    async with ctx.transaction() as conn:
        counts = await _readable(ctx, conn, queue_id)
    return _queue(ctx, counts[0])


@api.get(
    "/queues/{queue_id:int}/templates", access="agent", response=list[TemplateOut],
    summary="Answer templates of a queue",
)  # fmt: skip
async def queue_templates(ctx: Context, queue_id: int) -> list[TemplateOut]:
    """The valid answer templates assigned to the queue, by name: what a reply may start from."""
    async with ctx.transaction() as conn:
        await _readable(ctx, conn, queue_id)
        found = await standard_template_repo.for_queue(conn, queue_id)
    return [
        TemplateOut(id=t.id, name=t.name, text=t.text, content_type=t.content_type) for t in found
    ]


async def _readable(ctx: Context, conn: AsyncConnection, queue_id: int) -> list[listing.QueueCount]:
    """The queue's count row. Raises Problem 404 when it is missing or not the agent's."""
    counts = []
    if ctx.user.can_read(queue_id):
        counts = await listing.queue_counts(conn, [queue_id], listing.QueueFilter())
    if not counts:
        raise Problem(404, "not-found", f"There is no queue {queue_id}, or you may not see it.")
    return counts


def _queue(ctx: Context, count: listing.QueueCount) -> QueueOut:
    permission: Literal["rw", "ro"] = "rw" if ctx.user.can_write(count.queue_id) else "ro"
    return QueueOut(
        id=count.queue_id, name=count.name, permission=permission, open_tickets=count.tickets
    )
