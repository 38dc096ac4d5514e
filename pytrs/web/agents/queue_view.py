"""The queue view `/`: the tickets of the agent's queues, filtered, sorted and paged.

Place in the flow: the page an agent lands on. The filters are a GET form (bookmarkable, no
CSRF needed as nothing changes); the reads are `tickets/listing.py` with the agent's readable
queues, so a ticket of another queue never appears whatever the URL says. Bad filter values
fall back to their defaults rather than failing: a stale bookmark still shows a list.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.schema.database import utcnow
from pytrs.tickets.escalation_reads import Clock, TicketClocks, escalations
from pytrs.tickets.listing import (
    SORTS,
    VIEWS,
    QueueFilter,
    QueueRow,
    Sort,
    filter_choices,
    load_states,
    queue_counts,
    queue_page,
)
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents import display
from pytrs.web.pages import render

# Column headings that sort, in the order shown, with the sort key each uses.
SORT_LABELS = {"number": "Ticket#", "title": "Title", "priority": "Priority", "age": "Age",
               "changed": "Changed"}  # fmt: skip
# The query parameters that make up the filter (kept by the sort links and the pager).
FILTER_KEYS = ("queue", "view", "state", "owner")


@dataclass(frozen=True, slots=True)
class Shown:
    """A row with its times in words."""

    ticket: QueueRow
    age: str
    escalation: str
    overdue: bool


def shown(rows: Any, clocks: Mapping[int, TicketClocks]) -> list[Shown]:
    """The rows with their age and the working time left before their earliest escalation
    (`clocks`: those of the rows that have one)."""
    now = utcnow()
    return [
        Shown(r, display.age(r.created, now), *display.escalation(_soonest(clocks, r.id)))
        for r in rows
    ]


def _soonest(clocks: Mapping[int, TicketClocks], ticket_id: int) -> Clock | None:
    found = clocks.get(ticket_id)
    return found.soonest if found else None


async def row_clocks(conn: AsyncConnection, rows: Any) -> dict[int, TicketClocks]:
    """The escalation clocks of the rows that have a deadline (one query for the page)."""
    ids = [r.id for r in rows if r.escalation_time]
    return await escalations(conn, ids, int(time.time())) if ids else {}


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def parse_filter(params: Any, user: WebUser) -> QueueFilter:
    owner = params.get("owner", "")
    view = params.get("view", "open")
    return QueueFilter(
        queue_id=_number(params.get("queue")),
        view=view if view in VIEWS else "open",
        state_id=_number(params.get("state")),
        owner_id=user.id if owner == "mine" else _number(owner),
        unassigned=owner == "unassigned",
    )


def link(params: dict[str, str], **changes: str) -> str:
    """`/` with the current filter and `changes` (empty values left out)."""
    merged = {**params, **changes}
    return "/?" + urlencode({k: v for k, v in merged.items() if v})


@agent_page
async def queue_view(request: Request, user: WebUser) -> Response:
    params = request.query_params
    where = parse_filter(params, user)
    sort = Sort(params.get("sort", "age"), params.get("order", "")).resolved()
    readable = user.readable
    async with request.app.state.db.connect() as conn:
        states = await load_states(conn)
        page = await queue_page(conn, readable, where, sort, params.get("after"), states=states)
        counts = await queue_counts(conn, readable, where, states=states)
        choices = await filter_choices(conn, states)
        clocks = await row_clocks(conn, page.rows)
    current = {k: params.get(k, "") for k in FILTER_KEYS}
    sorted_by = {**current, "sort": sort.key, "order": sort.order}
    return render(request, "agents/queue.html", {
        "rows": shown(page.rows, clocks), "counts": counts, "choices": choices, "filter": current,
        "views": list(VIEWS), "sort": sort,
        "sort_links": {
            key: link(current, sort=key, order=_toggled(sort, key)) for key in SORT_LABELS
        },
        "sort_labels": SORT_LABELS,
        "queue_links": {c.queue_id: link(current, queue=str(c.queue_id)) for c in counts},
        "all_queues_link": link(current, queue=""),
        "next_link": link(sorted_by, after=page.next_cursor) if page.next_cursor else None,
        "prev_link": link(sorted_by, after=page.prev_cursor) if page.prev_cursor else None,
        "total": sum(c.tickets for c in counts),
    })  # fmt: skip


def _toggled(sort: Sort, key: str) -> str:
    """The order a sort heading asks for: its default, or the other one if it is current."""
    if key != sort.key:
        return SORTS[key][1]
    return "desc" if sort.order == "asc" else "asc"


routes: list[BaseRoute] = [Route("/", queue_view, name="home")]
