"""Logout ends the session for good: a copy of the cookie taken before is refused after it,
while the agent's sessions in other browsers go on. Each login gets a new random session id
(no fixation); ended ids are kept only until the session's absolute expiry.

The app's clock is the `clock` fixture (tests/web/conftest.py): it moves only when told to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from pytrs.schema.database import Database
from pytrs.schema.tables import web_session_end
from pytrs.web.sessions import COOKIE
from pytrs.web.signin import ENDED

from .conftest import Clock, WebClient

HOUR = 3600.0


def _copy(client: WebClient, anonymous: Callable[..., WebClient]) -> WebClient:
    """Another client holding the same cookie, as a thief who copied it would."""
    thief = anonymous()
    [cookie] = [c for c in client.cookies.jar if c.name == COOKIE]
    thief.cookies.set(COOKIE, str(cookie.value), domain=cookie.domain, path=cookie.path)
    return thief


async def _ended(db: Database) -> list[Any]:
    async with db.connect() as conn:
        return (await conn.execute(select(web_session_end))).all()


async def test_a_copied_cookie_is_refused_after_logout(
    make_user: Callable[..., Any], login: Any, anonymous: Callable[..., WebClient], db: Database
) -> None:
    alice = await make_user("alice")
    client = await login("alice")
    thief = _copy(client, anonymous)
    assert (await thief.get("/")).status_code == 200  # the copy works while the session does
    sid = client.session.sid
    out = await client.post_form("/logout")
    assert out.status_code == 303 and client.session.user_id is None
    [row] = await _ended(db)
    assert (row.session_id, row.user_id) == (sid, alice)
    refused = await thief.get("/")
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2F"
    assert ENDED in (await thief.get("/login")).text
    assert thief.session.user_id is None
    assert (await _copy(client, anonymous).get("/admin")).status_code == 303


async def test_logout_on_one_device_leaves_the_others(
    make_user: Callable[..., Any], login: Any
) -> None:
    await make_user("alice")
    laptop, phone = await login("alice"), await login("alice")
    assert laptop.session.sid != phone.session.sid
    await laptop.post_form("/logout")
    assert (await laptop.get("/")).status_code == 303
    assert (await phone.get("/")).status_code == 200


async def test_every_login_gets_a_new_session_id(
    make_user: Callable[..., Any], login: Any, anonymous: Callable[..., WebClient]
) -> None:
    """No fixation: the id a browser holds before signing in is never the signed-in one; and
    signing in again in a browser ends the session it had."""
    await make_user("alice")
    browser = anonymous()
    await browser.get("/login")
    assert browser.session.sid == "" and browser.session.csrf
    await browser.post_form("/login", {"login": "alice", "password": "correct horse battery"})
    first = browser.session.sid
    assert first and browser.session.user_id is not None
    copy = _copy(browser, anonymous)
    await browser.post_form("/login", {"login": "alice", "password": "correct horse battery"})
    assert browser.session.sid not in ("", first)
    assert (await browser.get("/")).status_code == 200
    assert (await copy.get("/")).status_code == 303  # the session it replaced has ended


async def _login_and_out(login: Any, name: str) -> str:
    client = await login(name)
    sid = str(client.session.sid)
    await client.post_form("/logout")
    return sid


async def test_ended_ids_are_kept_until_the_session_would_expire(
    make_user: Callable[..., Any], login: Any, db: Database, clock: Clock
) -> None:
    await make_user("alice")
    early = await _login_and_out(login, "alice")
    clock.advance(15 * HOUR)  # within the 16 hours the session could have lived
    later = await _login_and_out(login, "alice")
    assert {r.session_id for r in await _ended(db)} == {early, later}
    clock.advance(1 * HOUR + 1)  # the early session is past its absolute expiry
    last = await _login_and_out(login, "alice")
    assert {r.session_id for r in await _ended(db)} == {later, last}
