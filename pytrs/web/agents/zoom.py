"""The ticket zoom `/tickets/{tn}`: one ticket with its fields, escalation clocks (working time
left, from `tickets.escalation_reads`), articles, routing traces, each mail's path (its
Received chain, `parsers.received`) and history, and (for agents who may act) the forms of the
actions.

Place in the flow: read-only; the actions post to `agents.actions`, downloads are served by
`agents.attachments`. Everything is read in one transaction, one query per kind of row
(`tickets.queries`, `tickets.article_reads`). HTML bodies are shown only as the parser's
sanitised HTML in a sandboxed frame (`agents.mail_frames`); `?images=<article id>` shows that
article's remote images, under a policy that allows them for this one page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.parsers.received import HEAD_BYTES, Hop, mail_path
from pytrs.schema import agent_access, standard_template_repo
from pytrs.tickets import TicketRecord, article_reads, queries
from pytrs.tickets.escalation_reads import Clock, escalations, sla_names
from pytrs.vocabulary.moments import local
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents.display import clock_text
from pytrs.web.agents.mail_frames import frame_document, has_remote_images, zoom_csp
from pytrs.web.agents.ticket_access import NOT_FOUND, readable_ticket, service
from pytrs.web.pages import render


@dataclass(frozen=True, slots=True)
class ArticleCard:
    """One article as the zoom shows it."""

    id: int
    sender_type: str
    channel: str
    visible: bool
    from_: str
    to: str
    cc: str
    subject: str
    created: datetime
    body: str
    srcdoc: str | None  # the HTML body's frame document, when there is one
    remote_images: bool  # it has remote images (blocked unless `images_shown`)
    images_shown: bool
    attachments: tuple[article_reads.Listed, ...]
    trace: tuple[tuple[str, str], ...]  # the routing trace, (key, value as text)
    has_raw: bool
    path: tuple[Hop, ...]  # the mail's Received chain, first hop first


@dataclass(frozen=True, slots=True)
class HistoryLine:
    time: datetime
    kind: str
    text: str
    who: str


async def zoom(request: Request, user: WebUser) -> Response:
    tn = request.path_params["tn"]
    shown = _article_param(request.query_params.get("images", ""))
    async with request.app.state.db.connect() as conn:
        ticket = await readable_ticket(request, conn, user, tn)
        detail = await queries.ticket_detail(conn, ticket.tn)
        if detail is None:  # deleted between the two reads
            raise HTTPException(404, NOT_FOUND)
        cards = await _cards(conn, detail.articles, shown)
        history = await queries.history(conn, ticket.id)
        clocks = (await escalations(conn, [ticket.id], int(time.time())))[ticket.id]
        timezone = request.app.state.config.scheduler.timezone
        context: dict[str, Any] = {
            "ticket": ticket, "detail": detail, "articles": cards,
            "history": [_history_line(h) for h in history],
            "can_write": user.can_write(ticket.queue_id) and not ticket.merged,
            "sla": clocks.sla, "pending_until": local(clocks.pending_until, timezone),
            "clocks": [_clock_line(c, timezone) for c in clocks.clocks if c.deadline],
            "timezone": timezone,
        }  # fmt: skip
        if context["can_write"]:
            context.update(await _action_choices(request, conn, user, ticket))
    csp = zoom_csp(remote_images=any(c.images_shown for c in cards))
    return render(request, "agents/zoom.html", context, csp=csp)


@dataclass(frozen=True, slots=True)
class ClockLine:
    """One escalation clock as the zoom shows it."""

    label: str
    deadline: str  # local time in [scheduler] timezone
    left: str  # working time left, or overdue
    escalated: bool


_CLOCK_LABELS = {"response": "First response", "update": "Update", "solution": "Solution"}


def _clock_line(clock: Clock, timezone: str) -> ClockLine:
    return ClockLine(
        _CLOCK_LABELS[clock.kind], local(clock.deadline, timezone), clock_text(clock),
        clock.escalated,
    )  # fmt: skip


def _article_param(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


async def _cards(
    conn: AsyncConnection, articles: tuple[queries.ArticleView, ...], shown: int | None
) -> list[ArticleCard]:
    ids = [a.id for a in articles]
    bodies = await article_reads.html_bodies(conn, ids)
    images = await article_reads.inline_images(conn, list(bodies))
    files = await article_reads.attachment_lists(conn, ids)
    traces = await article_reads.routing_traces(conn, {a.id: a.message_id for a in articles})
    heads = await article_reads.raw_heads(conn, ids, HEAD_BYTES)
    cards = []
    for a in articles:
        safe = bodies.get(a.id)
        show = shown == a.id and safe is not None and has_remote_images(safe)
        srcdoc = None
        if safe is not None:
            srcdoc = frame_document(safe, images.get(a.id, {}), remote_images=show)
        cards.append(ArticleCard(
            id=a.id, sender_type=a.sender_type, channel=a.channel, visible=a.visible,
            from_=a.from_, to=a.to, cc=a.cc, subject=a.subject, created=a.created, body=a.body,
            srcdoc=srcdoc, remote_images=safe is not None and has_remote_images(safe),
            images_shown=show, attachments=tuple(files.get(a.id, ())),
            trace=_trace_lines(traces.get(a.id)), has_raw=a.id in heads,
            path=mail_path(heads[a.id]) if a.id in heads else (),
        ))  # fmt: skip
    return cards


def _trace_lines(trace: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The routing trace as (key, text) lines; lists and tables as indented JSON."""
    if not trace:
        return ()
    lines = []
    for key, value in trace.items():
        if value in ("", [], {}, None):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                               indent=1)  # fmt: skip
        lines.append((key, text))
    return tuple(lines)


def _history_line(entry: queries.HistoryEntry) -> HistoryLine:
    """Znuny's `%%`-separated name made readable: its parameters, separated."""
    parts = [p for p in entry.name.split("%%") if p]
    return HistoryLine(entry.time, entry.type, " · ".join(parts), entry.who)


async def _action_choices(
    request: Request, conn: AsyncConnection, user: WebUser, ticket: TicketRecord
) -> dict[str, Any]:
    """What the action forms offer: valid states, priorities, the queues the agent may move
    the ticket to, the agents who may own it (those with `rw` on its queue, and whoever owns it
    now), and the queue's answer templates."""
    names = await service(request).names(conn)
    owners = set(await agent_access.writers_of(conn, ticket.queue_id)) | {ticket.owner}
    return {
        "states": sorted(n for n, (_i, kind) in names.states.items() if kind != "merged"),
        "pending_states": {
            n for n, (_i, kind) in names.states.items() if kind.startswith("pending")
        },
        "slas": await sla_names(conn),
        "priorities": sorted(names.priorities),
        "queues": sorted(n for n, i in names.queues.items() if user.can_write(i)),
        "agents": sorted(owners),
        "templates": await standard_template_repo.for_queue(conn, ticket.queue_id),
    }


routes: list[BaseRoute] = [
    Route("/tickets/{tn}", agent_page(zoom), methods=["GET"], name="ticket_zoom"),
]
