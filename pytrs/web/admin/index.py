"""`/admin`: the admin pages in one list, and the routes of the admin pages built here.

Place in the flow: where an administrator starts. `routes` gathers the routes of this page and
of queues, addresses, agents, accounts, outbox and quarantine, so `web/routes.py` mounts them
with one entry; the filter, template and auto-response pages are mounted by their own modules.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import accounts, addresses, agents, outbox, quarantine, queues
from pytrs.web.pages import render

# (path, title, what it is for): the order is the one admins meet the tasks in.
PAGES = (
    ("/admin/queues", "Queues", "where tickets live: group, follow-up policy, system address"),
    ("/admin/addresses", "System addresses", "the addresses pytrs accepts mail for, per queue"),
    ("/admin/agents", "Agents", "accounts, roles, queue access, passwords"),
    ("/admin/accounts", "Mail accounts", "IMAP/POP3 fetching: last success, errors, backlog"),
    ("/admin/filters", "Postmaster filters", "rules run on incoming mail, with a test bench"),
    ("/admin/templates", "Answer templates", "texts agents start replies from, per queue"),
    ("/admin/responses", "Auto-responses", "automatic answers to customers, with a preview"),
    ("/admin/outbox", "Outbox", "mail that failed to send, suppressed addresses"),
    ("/admin/quarantine", "Quarantine", "incoming mail that could not be processed"),
)


@admin_page
async def admin_index(request: Request, user: WebUser) -> Response:
    return render(request, "admin/index.html", {"pages": PAGES})


routes: list[BaseRoute] = [
    Route("/admin", admin_index, methods=["GET"]),
    *queues.routes,
    *addresses.routes,
    *agents.routes,
    *accounts.routes,
    *outbox.routes,
    *quarantine.routes,
]
