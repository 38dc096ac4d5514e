"""The search page `/search?q=`: a ticket number, words of subjects and bodies, addresses.

Place in the flow: a GET from the search box of every page; `tickets/search_reads.py` searches
only the agent's readable queues, so a ticket of another queue is neither shown nor counted.
An empty query shows the form; a query that finds nothing says so in one line.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.tickets.search_reads import search
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents.queue_view import shown
from pytrs.web.pages import render

RESULTS = 50
QUERY_MAX = 500  # characters of the query used; the rest is not a search


@agent_page
async def search_view(request: Request, user: WebUser) -> Response:
    query = request.query_params.get("q", "").strip()[:QUERY_MAX]
    hits = []
    if query:
        async with request.app.state.db.connect() as conn:
            hits = await search(conn, user.readable, query, RESULTS)
    # The results show no escalation column: no clocks to read.
    rows = zip(hits, shown([h.ticket for h in hits], {}), strict=True)
    return render(request, "agents/search.html", {
        "search_query": query, "results": list(rows), "limit": RESULTS,
    })  # fmt: skip


routes: list[BaseRoute] = [Route("/search", search_view, name="search")]
