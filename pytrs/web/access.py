"""Who the signed-in agent is and what they may do: `WebUser` and the page decorators.

Place in the flow: the session middleware builds a `WebUser` from the agent's row for each
request (`from_account`); pages take it through `@agent_page` / `@admin_page`, and every query
a page makes is limited by `readable` / `writable`. A ticket the user may not read is answered
404 (not 403), so that its existence is not revealed; `ro` sees but cannot act (403).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pytrs.schema.agent_access import AgentAccount, QueuePermissions

USER_KEY = "pytrs.user"  # where the session middleware leaves the WebUser in the ASGI scope

View = Callable[[Request, "WebUser"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class WebUser(QueuePermissions):
    """The signed-in agent, as read at the start of this request."""

    id: int
    login: str
    name: str
    email: str
    is_admin: bool
    # queue id → "rw" | "ro"; an admin has "rw" on every queue (read at sign-in of the request)
    queues: Mapping[int, str]

    @classmethod
    def from_account(cls, account: AgentAccount) -> WebUser:
        return cls(
            id=account.id, login=account.login, name=account.name, email=account.email,
            is_admin=account.admin, queues=MappingProxyType(dict(account.queues)),
        )  # fmt: skip


def current_user(request: Request) -> WebUser | None:
    """The signed-in agent of this request, or None."""
    user = request.scope.get(USER_KEY)
    return user if isinstance(user, WebUser) else None


def login_url(request: Request) -> str:
    """/login with `next` set to the page asked for (path and query, both local)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


def agent_page(view: View) -> Endpoint:
    """An endpoint for any signed-in agent; others are sent to the login page."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return RedirectResponse(login_url(request), status_code=303)
        return await view(request, user)

    return endpoint


def admin_page(view: View) -> Endpoint:
    """An endpoint for administrators; other agents get the 403 page."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return RedirectResponse(login_url(request), status_code=303)
        if not user.is_admin:
            raise HTTPException(403, "This page is for administrators.")
        return await view(request, user)

    return endpoint
