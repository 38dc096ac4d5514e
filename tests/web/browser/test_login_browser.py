"""Logging in and out in a real browser (headless Chromium)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytrs.web.login import FAILED

from .conftest import SCREENSHOTS, LiveServer


async def test_log_in_see_the_top_bar_and_log_out(
    page: Any,
    live_server: LiveServer,
    make_user: Callable[..., Any],
    browser_login: Callable[..., Any],
) -> None:
    await make_user("alice")
    await page.goto(f"{live_server.url}/")
    assert page.url == f"{live_server.url}/login?next=%2F"
    await browser_login(page, live_server, "alice")
    assert page.url == f"{live_server.url}/"
    assert await page.text_content(".topbar .who") == "Alice Agent"
    assert await page.is_visible(".topbar input[name=q]")
    assert await page.locator(".topbar summary", has_text="Admin").count() == 0
    # The stylesheet loaded under the Content-Security-Policy.
    background = await page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(35, 49, 63)"
    async with page.expect_navigation():
        await page.click(".logout button")
    assert page.url == f"{live_server.url}/login"
    assert "You are logged out." in await page.text_content(".flashes")
    await page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login")


async def test_a_wrong_password_shows_one_line(
    page: Any,
    live_server: LiveServer,
    make_user: Callable[..., Any],
    browser_login: Callable[..., Any],
) -> None:
    await make_user("alice")
    await browser_login(page, live_server, "alice", "not the password")
    assert await page.text_content("p.error") == FAILED
    assert await page.input_value("#login") == "alice"
    assert await page.input_value("#password") == ""


async def test_the_admin_menu_opens(
    page: Any,
    live_server: LiveServer,
    make_user: Callable[..., Any],
    browser_login: Callable[..., Any],
) -> None:
    await make_user("root", role="admin")
    await browser_login(page, live_server, "root")
    assert not await page.is_visible(".menu ul")
    await page.click(".menu summary")
    assert await page.is_visible(".menu a[href='/admin/queues']")
    await page.click("h1")  # a click elsewhere closes it (app.js)
    assert not await page.is_visible(".menu ul")


async def test_login_page_screenshot(page: Any, live_server: LiveServer) -> None:
    """The login page as the README shows it (docs/screenshots/login.png)."""
    await page.goto(f"{live_server.url}/login")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "login.png"))
    assert (SCREENSHOTS / "login.png").stat().st_size > 1000


async def test_the_harness_catches_dialogs_and_the_csp_blocks_inline_script(
    page: Any, live_server: LiveServer
) -> None:
    await page.goto(f"{live_server.url}/login")
    # Injected inline script: refused by the Content-Security-Policy, reported on the console.
    await page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'alert(\"xss\")'; document.body.append(s); }"
    )
    await page.wait_for_timeout(200)
    assert not any(p.startswith("dialog") for p in page.problems)
    assert any("Content Security Policy" in p for p in page.problems), page.problems
    # A dialog however opened is caught (and dismissed, so the page goes on).
    await page.evaluate("() => setTimeout(() => alert('caught'))")
    await page.wait_for_timeout(200)
    assert "dialog (alert): caught" in page.problems
    page.problems.clear()  # expected here; any left would fail the test


async def test_an_error_page_opened_on_purpose_is_no_problem(
    page: Any, live_server: LiveServer
) -> None:
    answer = await page.goto(f"{live_server.url}/no/such/page")
    assert answer.status == 404
    assert await page.text_content("h1") == "Not found"
    await page.wait_for_timeout(100)
    assert page.problems == []
