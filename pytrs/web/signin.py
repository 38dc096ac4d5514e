"""The session middleware: each request's session and signed-in agent, checked afresh.

Place in the flow: the second middleware (after the security headers), before CSRF and the
pages. For a request with a signed-in session it ends the session when it has been idle
longer than `[web] session_idle_minutes`, is older than `session_max_hours`, or its account
was disabled or got a new password since (the fingerprint differs), or was ended by logout
(its id is in ``web_session_end``, found by the same query that re-reads the agent's row);
otherwise the agent's row as re-read (so permission changes apply to the next request) becomes
a `WebUser` for the pages. Static files skip all of this.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders, State
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pytrs.schema import agent_access
from pytrs.web.access import USER_KEY, WebUser
from pytrs.web.sessions import (
    COOKIE,
    SEEN_REFRESH_SECONDS,
    SESSION_KEY,
    Session,
    SessionCodec,
    cookie_header,
)

EXPIRED = "Your session has expired; please log in again."
ENDED = "Your session has ended; please log in again."


OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class SessionMiddleware:
    """Load, check and store the session cookie around each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # /api/ authenticates by bearer token only: a cookie must never sign anyone in there,
        # since the CSRF check does not guard it (guards.CsrfMiddleware). The ops endpoints
        # need no session, and a probe that happens to carry a cookie must not cost a
        # database read (/healthz promises not to touch the database).
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(("/static/", "/api/")) or path in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        codec: SessionCodec = state.session_codec
        session = codec.loads(_cookie(scope))
        scope[SESSION_KEY] = session
        scope[USER_KEY] = await _signed_in(state, codec, session)
        secure = state.proxies.is_https(scope)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.dirty:
                headers = MutableHeaders(scope=message)
                headers.append("Set-Cookie", cookie_header(codec.dumps(session), secure=secure))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _signed_in(state: State, codec: SessionCodec, session: Session) -> WebUser | None:
    """The agent of a signed-in `session`, or None after ending a session that may not go on."""
    if session.user_id is None:
        return None
    config = state.config.web
    now = state.clock()
    if (
        now - session.seen > config.session_idle_minutes * 60
        or now - session.login_time > config.session_max_hours * 3600
    ):
        end(session, EXPIRED, keep_csrf=True)
        return None
    account = (
        await agent_access.by_id(state.db, session.user_id, session_id=session.sid)
        if session.sid
        else None
    )
    if account is None or not account.valid or codec.fingerprint(account.pw) != session.fingerprint:
        end(session, ENDED, keep_csrf=True)
        return None
    if now - session.seen >= SEEN_REFRESH_SECONDS:
        session.seen = now
        session.dirty = True
    return WebUser.from_account(account)


def end(session: Session, notice: str = "", *, keep_csrf: bool = False) -> None:
    """Sign the session out, leaving `notice` for the login page. The CSRF token goes too,
    unless `keep_csrf`: a session that expired keeps it, so that a form still open in the
    browser (the logout button, say) leads to the login page instead of a 403."""
    session.user_id = None
    session.sid = ""
    session.login_time = session.seen = 0.0
    session.fingerprint = ""
    if not keep_csrf:
        session.csrf = ""
    session.flashes = []
    session.dirty = True
    if notice:
        session.add_flash(notice, "info")


def begin(
    session: Session, account: agent_access.AgentAccount, codec: SessionCodec, now: float
) -> None:
    """Sign `account` in: a fresh session (new id and CSRF token, no flashes) from `now`."""
    end(session)
    session.user_id = account.id
    session.sid = secrets.token_urlsafe(24)
    session.login_time = session.seen = now
    session.fingerprint = codec.fingerprint(account.pw)
    session.csrf_token()


def _cookie(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(COOKIE)
            if found:
                return found
    return ""
