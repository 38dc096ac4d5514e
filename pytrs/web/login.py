"""`/login` and `/logout`: signing agents in and out.

Place in the flow: the one page open to everyone. A login is checked against the agent's
argon2id hash (`users/passwords.py`) in a thread, since a verify takes tens of milliseconds.
An unknown login, a wrong password and a disabled account get the same answer, and an unknown
login is verified against a dummy hash so the time taken does not tell them apart either.
Failures are throttled per account and per client address (`throttle.py`).

Logout ends the session for good: its id is recorded in ``web_session_end`` until the
session's absolute expiry, so a copy of the cookie is refused too; the agent's sessions in
other browsers go on. A new login in a browser that was signed in ends the old session alike.
"""

from __future__ import annotations

import asyncio
import functools
import math
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.schema import agent_access, web_sessions
from pytrs.users import passwords
from pytrs.web.access import current_user
from pytrs.web.pages import flash, redirect, render, session_of
from pytrs.web.sessions import Session
from pytrs.web.signin import begin, end

FAILED = "Login failed: wrong login or password."
MAX_FIELD = 200  # longer logins do not exist (users.login is 200 characters)
MAX_PASSWORD = 1024  # argon2 would hash megabytes as well; nobody types that much


def safe_next(target: str) -> str:
    """`target` when it is a path on this site, else "/": never an open redirect."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password: what an unknown login is verified against."""
    return passwords.hash_password(secrets.token_urlsafe(16))


async def login_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next", "/"))
    if current_user(request) is not None:
        return redirect(target)
    return render(request, "login.html", {"next": target, "login": "", "error": ""})


async def login_submit(request: Request) -> Response:
    form = await request.form()
    login = str(form.get("login", ""))[:MAX_FIELD].strip()
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    target = safe_next(str(form.get("next", "/")))
    state = request.app.state
    address = state.proxies.client_address(request.scope)
    now = state.clock()
    wait = state.throttle.wait(login, address, now)
    if wait > 0:
        seconds = math.ceil(wait)
        error = f"Too many failed logins; try again in {seconds} seconds."
        context = {"next": target, "login": login, "error": error}
        return render(request, "login.html", context, 429, headers={"Retry-After": str(seconds)})
    state.throttle.attempt(login, address, now)
    account = await agent_access.by_login(state.db, login) if login else None
    stored = account.pw if account is not None and account.pw else await _dummy()
    matches = await asyncio.to_thread(passwords.verify, stored, password)
    if account is None or not account.valid or not matches:
        return render(request, "login.html", {"next": target, "login": login, "error": FAILED})
    state.throttle.succeeded(login, address, now)
    await _record_end(request, session_of(request))
    begin(session_of(request), account, state.session_codec, state.clock())
    return redirect(target)


async def _dummy() -> str:
    return await asyncio.to_thread(_dummy_hash)


async def logout(request: Request) -> Response:
    # Reached only with the session's CSRF token (guards.CsrfCheck), so no other site can
    # sign an agent out.
    await _record_end(request, session_of(request))
    end(session_of(request))
    flash(request, "You are logged out.")
    return redirect("/login")


async def _record_end(request: Request, session: Session) -> None:
    """Record a signed-in `session` as ended until its absolute expiry (a copy of its cookie
    is refused from now on); rows of sessions past their expiry go at the same time."""
    if session.user_id is None or not session.sid:
        return
    state = request.app.state
    expires = session.login_time + state.config.web.session_max_hours * 3600
    await web_sessions.end(
        state.db, session.sid, session.user_id, now=_utc(state.clock()), expires_at=_utc(expires)
    )


def _utc(seconds: float) -> datetime:
    """Seconds since the epoch as the naive UTC time the database columns hold."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


routes: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
