"""A placeholder for `/` until the queue view (helper "queue") replaces it.

Place in the flow: the page an agent lands on after login. It only greets the agent, so the
foundation can be used and tested end to end; delete this module and its line in `routes.py`
when the queue view takes `/`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.web.access import WebUser, agent_page
from pytrs.web.pages import render


@agent_page
async def placeholder_home(request: Request, user: WebUser) -> Response:
    return render(request, "placeholder.html", {})


routes: list[BaseRoute] = [Route("/", placeholder_home, name="home")]
