"""Signing in and out: the login form, wrong and unknown logins, disabled accounts, `next=`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.users.passwords import hash_password
from pytrs.web.login import FAILED, safe_next

from .conftest import PASSWORD


async def _attempt(client: Any, login: str, password: str, **more: str) -> Any:
    await client.get("/login")
    return await client.post_form("/login", {"login": login, "password": password, **more})


def _without_tokens(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]*"', "", html)
    return re.sub(r'name="login" value="[^"]*"', "", html)


async def test_login_opens_a_session(make_user: Callable[..., Any], anonymous: Any) -> None:
    await make_user("alice")
    client = anonymous()
    form = await client.get("/login")
    assert form.status_code == 200
    assert 'name="csrf_token"' in form.text and 'type="password"' in form.text
    answer = await client.post_form("/login", {"login": "alice", "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http from an untrusted peer
    home = await client.get("/")
    assert home.status_code == 200 and "Alice Agent" in home.text
    assert 'action="/logout"' in home.text
    # Already signed in: the login page sends the agent on.
    assert (await client.get("/login?next=/x")).headers["location"] == "/x"


async def test_wrong_password_unknown_login_and_disabled_account_look_alike(
    make_user: Callable[..., Any], anonymous: Any, db: Database
) -> None:
    await make_user("alice")
    await make_user("bob")
    await users_repo.disable(db, "bob")
    answers = [
        await _attempt(anonymous(), "alice", "wrong password"),
        await _attempt(anonymous(), "nobody", PASSWORD),
        await _attempt(anonymous(), "bob", PASSWORD),
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert FAILED in answer.text
    assert len({_without_tokens(a.text) for a in answers}) == 1


async def test_a_failed_login_leaves_the_session_signed_out(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    client = anonymous()
    await _attempt(client, "alice", "wrong password")
    assert client.session.user_id is None
    assert (await client.get("/")).status_code == 303


async def test_login_is_exact_and_case_sensitive_like_znuny(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    answer = await _attempt(anonymous(), "Alice", PASSWORD)
    assert FAILED in answer.text


async def test_the_login_value_is_escaped(anonymous: Any) -> None:
    answer = await _attempt(anonymous(), '"><script>alert(1)</script>', "x")
    assert "<script>alert(1)" not in answer.text
    assert "&#34;&gt;&lt;script&gt;" in answer.text


async def test_next_leads_back_to_the_page_asked_for(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    client = anonymous()
    first = await client.get("/?queue=2&page=3")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2F%3Fqueue%3D2%26page%3D3"
    form = await client.get(first.headers["location"])
    assert 'name="next" value="/?queue=2&amp;page=3"' in form.text
    answer = await client.post_form(
        "/login", {"login": "alice", "password": PASSWORD, "next": "/?queue=2&page=3"}
    )
    assert answer.headers["location"] == "/?queue=2&page=3"


OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/x\r\nLocation: https://evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_safe_next_refuses_anything_but_a_local_path(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/tickets/1", "/search?q=a%20b", "/a//b"])
def test_safe_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:7])
async def test_login_refuses_open_redirects(
    make_user: Callable[..., Any], anonymous: Any, target: str
) -> None:
    await make_user("alice")
    client = anonymous()
    form = await client.get("/login", params={"next": target})
    assert 'name="next" value="/"' in form.text
    answer = await _attempt(client, "alice", PASSWORD, next=target)
    assert answer.headers["location"] == "/"


async def test_logout_ends_the_session(make_user: Callable[..., Any], login: Any) -> None:
    await make_user("alice")
    client = await login("alice")
    refused = await client.post("/logout", data={"csrf_token": "not it"})
    assert refused.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in
    answer = await client.post_form("/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    page = await client.get("/login")
    assert "You are logged out." in page.text
    assert (await client.get("/")).status_code == 303


async def test_a_copied_cookie_ends_with_a_password_change(
    make_user: Callable[..., Any], login: Any, anonymous: Any, db: Database
) -> None:
    """A password change, or disabling the account, ends every copy of every session of the
    account at once (logout ends one session and its copies: test_session_end.py)."""
    await make_user("alice")
    client = await login("alice")
    stolen = anonymous()
    stolen.cookies.update(client.cookies)
    assert (await stolen.get("/")).status_code == 200
    await users_repo.set_password(db, "alice", hash_password("another password entirely"))
    assert (await stolen.get("/")).status_code == 303
