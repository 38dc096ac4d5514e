"""CSRF, security headers, error pages, and who may open which page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pytrs.web.access import USER_KEY, WebUser, admin_page, agent_page
from pytrs.web.guards import CSP
from pytrs.web.pages import flash, redirect

from .conftest import PASSWORD


@admin_page
async def _admin_only(request: Request, user: WebUser) -> Response:
    return PlainTextResponse(f"admin {user.login}")


@agent_page
async def _change(request: Request, user: WebUser) -> Response:
    async with request.form() as form:  # closes the temporary files of uploads
        flash(request, f"changed to {form['value']}")
    return redirect("/")


async def _api_who(request: Request) -> Response:
    user = request.scope.get(USER_KEY)
    return PlainTextResponse(user.login if user else "nobody")


async def _explode(request: Request) -> Response:
    raise RuntimeError("secret detail of the failure")


@pytest.fixture
def extra_routes(web_app: Starlette) -> Starlette:
    web_app.router.routes.extend([
        Route("/test/admin", _admin_only),
        Route("/test/change", _change, methods=["POST", "PUT", "DELETE"]),
        Route("/test/explode", _explode),
        Route("/api/test/who", _api_who, methods=["GET", "POST"]),
    ])  # fmt: skip
    return web_app


async def test_csrf_refuses_missing_and_wrong_tokens(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    missing = await client.post("/test/change", data={"value": "1"})
    wrong = await client.post("/test/change", data={"value": "1", "csrf_token": "x" * 32})
    other = await login("alice")  # another session's token is not this one's
    foreign = await client.post("/test/change", data={"value": "1", "csrf_token": other.csrf})
    for refused in (missing, wrong, foreign):
        assert refused.status_code == 403
        assert "This form has expired" in refused.text
    page = await client.get("/")
    assert "changed to" not in page.text  # nothing happened
    accepted = await client.post_form("/test/change", {"value": "1"})
    assert accepted.status_code == 303
    assert "changed to 1" in (await client.get("/")).text


async def test_csrf_token_in_a_header_and_other_methods(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    assert (await client.put("/test/change", data={"value": "2"})).status_code == 403
    assert (await client.delete("/test/change")).status_code == 403
    with_header = await client.post(
        "/test/change", data={"value": "3"}, headers={"X-CSRF-Token": client.csrf}
    )
    assert with_header.status_code == 303


async def test_csrf_covers_multipart_forms(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    files = {"upload": ("a.txt", b"hello", "text/plain")}
    refused = await client.post("/test/change", data={"value": "4"}, files=files)
    assert refused.status_code == 403
    fields = {"value": "4", "csrf_token": client.csrf}
    assert (await client.post("/test/change", data=fields, files=files)).status_code == 303


async def test_the_login_form_needs_its_token_too(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    client = anonymous()
    answer = await client.post("/login", data={"login": "alice", "password": PASSWORD})
    assert answer.status_code == 403
    assert client.session.user_id is None


async def test_api_paths_are_left_to_token_authentication(anonymous: Any) -> None:
    # A POST without a CSRF token: the bearer-token check answers (401, a problem), not the
    # CSRF check (its 403 page would mean a cookie could matter under /api/).
    answer = await anonymous().post("/api/v1/tickets", json={})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_session_cookie_signs_nobody_in_under_api(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any
) -> None:
    # /api/ is outside the CSRF check, so a cookie (sent by a browser on a cross-site form
    # post too) must not act for anyone there: only the API's bearer tokens may.
    await make_user("alice")
    client = await login("alice")
    assert (await client.get("/api/test/who")).text == "nobody"
    assert (await client.post("/api/test/who")).text == "nobody"
    assert (await client.get("/")).status_code == 200  # the same cookie on a page: signed in


SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def _assert_secured(answer: Any, *, dynamic: bool = True) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.url, name)
    assert (answer.headers.get("cache-control") == "no-store") is dynamic


async def test_security_headers_on_every_page(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any, anonymous: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    guest = anonymous()
    answers = [
        await guest.get("/login"),
        await guest.get("/"),  # the redirect to the login page
        await guest.post("/logout"),  # the CSRF refusal
        await client.get("/"),
        await client.get("/no/such/page"),
        await client.get("/test/admin"),  # 403
        await client.get("/test/explode"),  # 500
        await client.post("/login", data={}),  # refused by the CSRF check
        await client.patch("/logout", headers={"X-CSRF-Token": client.csrf}),  # 405
    ]
    for answer in answers:
        _assert_secured(answer)
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
    static = await guest.get("/static/app.css")
    assert static.status_code == 200
    _assert_secured(static, dynamic=False)


async def test_error_pages_use_the_layout(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any, caplog: Any
) -> None:
    await make_user("alice")
    client = await login("alice")
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert "Not found" in missing.text and "Alice Agent" in missing.text  # top bar
    with caplog.at_level(logging.ERROR, logger="pytrs.web.guards"):
        failed = await client.get("/test/explode")
    assert failed.status_code == 500
    assert "Something went wrong" in failed.text and 'class="topbar"' in failed.text
    assert "secret detail" not in failed.text and "Traceback" not in failed.text
    logged = [r for r in caplog.records if r.name == "pytrs.web.guards"]
    assert logged and logged[0].exc_info is not None
    assert "secret detail" in str(logged[0].exc_info[1])


async def test_agents_and_admins(
    extra_routes: Starlette, make_user: Callable[..., Any], login: Any, anonymous: Any
) -> None:
    await make_user("alice")
    await make_user("root", role="admin")
    agent, admin = await login("alice"), await login("root")
    refused = await agent.get("/test/admin")
    assert refused.status_code == 403 and "This page is for administrators." in refused.text
    assert "Admin</summary>" not in (await agent.get("/")).text
    allowed = await admin.get("/test/admin")
    assert allowed.status_code == 200 and allowed.text == "admin root"
    assert "Admin</summary>" in (await admin.get("/")).text
    guest = await anonymous().get("/test/admin")
    assert guest.status_code == 303 and guest.headers["location"] == "/login?next=%2Ftest%2Fadmin"


async def test_names_are_escaped_in_the_top_bar(make_user: Callable[..., Any], login: Any) -> None:
    await make_user("<script>alert(1)</script>")
    client = await login("<script>alert(1)</script>")
    page = await client.get("/")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_a_wrong_method_is_a_405_page(make_user: Callable[..., Any], login: Any) -> None:
    await make_user("alice")
    client = await login("alice")
    answer = await client.patch("/logout", headers={"X-CSRF-Token": client.csrf})
    assert answer.status_code == 405 and "Method not allowed" in answer.text
