"""Fixtures of the browser tests: the app served for real, and headless Chromium driving it.

- `live_server`: uvicorn serving `create_app(config, db)` over the test database on
  127.0.0.1:0, in the test's own event loop (the daemon's `WebService`, so the same server
  code as `pytrs run`); `.url` is its base URL ("http://127.0.0.1:PORT"), `.app` the app.
- `page`: a Playwright (async) page in Debian's headless Chromium (`/usr/bin/chromium`; never
  `playwright install`). It fails the test on any dialog (alert, confirm, prompt: in these
  pages only injected code would open one), on any uncaught page error and on any console
  message of type error (a script blocked by the CSP reports itself there; the status of the
  page itself, a 404 opened on purpose, is not counted). Tests that expect
  such a message may remove it from `page.problems` (a list of strings) before the end.
- `browser_login(page, live_server, login, password=PASSWORD)`: signs `page` in through the
  login form and waits for the page after it.

Every browser test is skipped, with the reason, when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.web.service import WebService, bind

from ..conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium; .ci/run does)")


class LiveServer:
    """The app served over HTTP on a free port of 127.0.0.1."""

    def __init__(self, service: WebService) -> None:
        self.service = service
        host, port = service.sockname[:2]
        self.url = f"http://{host}:{port}"

    @property
    def app(self) -> Starlette:
        return self.service.app


@pytest.fixture
async def live_server(config: Config, db: Database) -> AsyncIterator[LiveServer]:
    service = WebService(config, db, bind(("127.0.0.1", 0)))
    task = asyncio.create_task(service.serve(), name="live-server")
    loop = asyncio.get_running_loop()
    end = loop.time() + 15
    # uvicorn offers no event for "started"; the lifespan (one query) takes milliseconds.
    while not service.server.started:
        if task.done():
            task.result()  # raises the start-up error
        assert loop.time() < end, "the live server did not start"
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(service)
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def page(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    # Chromium's sandbox refuses to start as root (containers, CI); elsewhere it stays on.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        tab = await context.new_page()
        problems: list[str] = []
        tab.problems = problems
        tab.on("dialog", _dialog_hook(problems))
        tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        tab.on("console", lambda message: _console(message, tab, problems))
        try:
            yield tab
        finally:
            await context.close()
            await browser.close()
        if problems:
            pytest.fail("the page misbehaved:\n" + "\n".join(problems))


def _dialog_hook(problems: list[str]) -> Callable[[Any], Awaitable[None]]:
    async def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog ({dialog.type}): {dialog.message}")
        await dialog.dismiss()  # an open dialog would block the page

    return on_dialog


def _console(message: Any, tab: Any, problems: list[str]) -> None:
    if message.type != "error":
        return
    # Chromium reports the page's own status on the console too ("Failed to load resource:
    # … 404"): a 403 or 404 page a test opens on purpose is no misbehaviour. A resource of the
    # page that fails (a script, a stylesheet, an image) still counts.
    own_status = message.location.get("url") == tab.url
    if own_status and message.text.startswith("Failed to load resource"):
        return
    problems.append(f"console error: {message.text} ({message.location.get('url', '')})")


async def _browser_login(
    page: Any, live_server: LiveServer, login: str, password: str = PASSWORD
) -> None:
    await page.goto(f"{live_server.url}/login")
    await page.fill("#login", login)
    await page.fill("#password", password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")


@pytest.fixture
def browser_login() -> Callable[..., Awaitable[None]]:
    return _browser_login
