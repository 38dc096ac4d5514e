"""Session lifetime: idle and absolute timeouts, accounts changed under a session, forgeries.

The app's clock is the `clock` fixture (tests/web/conftest.py): it moves only when told to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.users.passwords import hash_password
from pytrs.web.signin import ENDED, EXPIRED

from .conftest import Clock

MINUTE, HOUR = 60.0, 3600.0


async def _sent_to_login(client: Any, notice: str) -> None:
    answer = await client.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F"
    page = await client.get("/login")
    assert notice in page.text
    assert page.text.count(notice) == 1


async def test_idle_session_expires(
    make_user: Callable[..., Any], login: Any, clock: Clock
) -> None:
    await make_user("alice")
    client = await login("alice")
    clock.advance(119 * MINUTE)
    assert (await client.get("/")).status_code == 200
    clock.advance(120 * MINUTE + 1)
    await _sent_to_login(client, EXPIRED)


async def test_logging_out_of_an_expired_session_leads_to_the_login_page(
    make_user: Callable[..., Any], login: Any, clock: Clock
) -> None:
    """The logout button of a page left open past the idle limit: no 403 for a stale form."""
    await make_user("alice")
    client = await login("alice")
    token = client.csrf
    clock.advance(3 * HOUR)
    answer = await client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.session.user_id is None


async def test_activity_keeps_a_session_until_its_absolute_limit(
    make_user: Callable[..., Any], login: Any, clock: Clock
) -> None:
    await make_user("alice")
    client = await login("alice")
    for _ in range(16):  # a request every 59 minutes for 15 h 44 min
        clock.advance(59 * MINUTE)
        assert (await client.get("/")).status_code == 200
    clock.advance(17 * MINUTE)  # 16 h 1 min after the login
    await _sent_to_login(client, EXPIRED)


async def test_last_seen_is_written_at_most_once_a_minute(
    make_user: Callable[..., Any], login: Any, clock: Clock
) -> None:
    await make_user("alice")
    client = await login("alice")
    clock.advance(30)
    assert "set-cookie" not in (await client.get("/")).headers
    clock.advance(31)
    refreshed = await client.get("/")
    assert "set-cookie" in refreshed.headers
    assert client.session.seen == clock.now


async def test_a_password_change_ends_every_session(
    make_user: Callable[..., Any], login: Any, db: Database
) -> None:
    await make_user("alice")
    first, second = await login("alice"), await login("alice")
    await users_repo.set_password(db, "alice", hash_password("a brand new password"))
    await _sent_to_login(first, ENDED)
    await _sent_to_login(second, ENDED)
    # The new password works.
    again = await login("alice", "a brand new password")
    assert (await again.get("/")).status_code == 200


async def test_disabling_an_account_ends_its_sessions(
    make_user: Callable[..., Any], login: Any, db: Database
) -> None:
    await make_user("alice")
    client = await login("alice")
    await users_repo.disable(db, "alice")
    await _sent_to_login(client, ENDED)


async def test_forged_and_tampered_cookies_sign_nobody_in(
    make_user: Callable[..., Any], login: Any, anonymous: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    cookie = client.cookies["pytrs_session"]
    payload, _, signature = cookie.rpartition(".")
    for forged in (
        payload + ".AAAA",
        payload[:-1] + ("B" if payload.endswith("A") else "A") + "." + signature,
        "garbage",
        "",
    ):
        intruder = anonymous()
        intruder.cookies.set("pytrs_session", forged)
        assert (await intruder.get("/")).status_code == 303


async def test_a_session_survives_an_app_restart(
    make_user: Callable[..., Any], login: Any, config: Any, db: Database, clock: Clock
) -> None:
    """The signing key is in the database, so another daemon (or a restart) accepts it."""
    from pytrs.web.app import create_app

    from .conftest import WebClient

    await make_user("alice")
    client = await login("alice")
    other = create_app(config, db, clock=clock)
    async with other.router.lifespan_context(other), WebClient(other) as elsewhere:
        elsewhere.cookies.update(client.cookies)
        assert (await elsewhere.get("/")).status_code == 200


async def test_probes_with_a_session_cookie_read_nothing(
    make_user: Callable[..., Any], login: Any, db: Database
) -> None:
    """/healthz promises not to touch the database: a probe that carries a signed-in agent's
    cookie (a browser tab, a misconfigured checker) must not make the session middleware
    re-read the agent's row, while a page with the same cookie does."""
    await make_user("alice")
    client = await login("alice")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert (await client.get("/healthz")).status_code == 200
        assert statements == []
        assert (await client.get("/")).status_code == 200
        assert statements  # the same cookie on a page: the session is checked
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
