"""`/admin/accounts`: the mail accounts with their live health.

Place in the flow: read-only. The accounts come from the configuration (`[[mail_accounts]]`),
their state from `mailbox_state` and their backlog from the inbox, through
`schema/mailbox_repo.health` — the same data `pytrs accounts` prints.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.schema import mailbox_repo
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import when
from pytrs.web.pages import render


@admin_page
async def account_list(request: Request, user: WebUser) -> Response:
    state = request.app.state
    rows = await mailbox_repo.health(state.db, state.config)
    return render(request, "admin/accounts.html", {"rows": rows, "when": when})


routes: list[BaseRoute] = [Route("/admin/accounts", account_list, methods=["GET"])]
