"""The queue view and the search in headless Chromium: log in, see tickets, filter, page,
search; writes the screenshot of the queue view the README shows (docs/screenshots/)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from ..tickets_for_web import HOSTILE_NAME, HOSTILE_SUBJECT, Tickets

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PRODUCTS = [
    "VPN client",
    "invoice portal",
    "mobile app",
    "printer on floor 3",
    "SSO login",
    "billing API",
    "laptop docking station",
    "backup job",
    "Wi-Fi in meeting room B",
]
ISSUES = [
    "is not working since this morning",
    "keeps asking for my password",
    "is slow",
    "shows error 500 when I click save",
    "prints blank pages",
    "crashed twice today",
]
CUSTOMERS = [
    "olivia.moore@example.org",
    "jose.nunez@example.net",
    "grace.wilson@example.com",
    "walter.brown@corp.example.org",
    "zoe.muller@example.net",
]
STATES = ["new", "new", "open", "open", "open", "pending reminder", "closed successful"]
PRIORITIES = ["3 normal", "3 normal", "3 normal", "4 high", "5 very high", "2 low", "1 very low"]


@pytest.fixture
async def desk(web_app: Starlette, make_queue: Any, make_user: Any) -> Tickets:
    """~60 tickets over three queues: about 35 still open, the rest closed."""
    for name in ("Support", "Sales", "Billing"):
        await make_queue(name)
    await make_queue("Board")  # a queue the agent may not read
    await make_user("olga", queues={"Support": "rw", "Sales": "rw", "Billing": "ro"})
    tickets = Tickets(web_app)
    rng = random.Random(7)
    for i in range(60):
        state = STATES[i % len(STATES)] if i < 42 else "closed successful"
        await tickets.make(
            rng.choice(["Support", "Support", "Sales", "Billing"]),
            f"{rng.choice(PRODUCTS)} {rng.choice(ISSUES)}",
            customer=rng.choice(CUSTOMERS), state=state, priority=rng.choice(PRIORITIES),
            body=f"Hi team, the {rng.choice(PRODUCTS)} needs a look. Ref {1000 + i}.",
        )  # fmt: skip
    await tickets.make("Support", HOSTILE_SUBJECT, sender=HOSTILE_NAME)
    await tickets.make("Board", "Board only: merger plans")
    return tickets


async def test_queue_view_filter_page_and_search(
    desk: Tickets, live_server: Any, page: Any, browser_login: Any
) -> None:
    await browser_login(page, live_server, "olga")
    await page.goto(live_server.url + "/")
    rows = page.locator("table.tickets tbody tr")
    assert 25 <= await rows.count() <= 50
    assert await page.locator("text=Board only").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size({"width": 1440, "height": 1000})
    await page.screenshot(path=str(SCREENSHOTS / "queue-view.png"), full_page=True)

    await page.select_option("select[name=view]", "all")
    await page.click("form.filters button[type=submit]")
    assert await rows.count() == 50
    first_page = await page.locator("td.tn a").all_inner_texts()
    await page.click("a[rel=next]")
    second_page = await page.locator("td.tn a").all_inner_texts()
    assert len(second_page) == 11 and not set(first_page) & set(second_page)
    await page.click("a[rel=prev]")
    assert await page.locator("td.tn a").all_inner_texts() == first_page

    await page.select_option("select[name=view]", "closed")
    await page.click("form.filters button[type=submit]")
    states = await page.locator("table.tickets tbody td span.state").all_inner_texts()
    assert states and set(states) == {"closed successful"}

    await page.fill("header input[name=q]", "invoice portal")
    await page.press("header input[name=q]", "Enter")
    await page.wait_for_url("**/search?q=invoice+portal")
    assert await page.locator("table.results tbody tr").count() > 0
    await page.fill("header input[name=q]", "merger")
    await page.press("header input[name=q]", "Enter")
    await page.wait_for_url("**/search?q=merger")
    assert await page.locator("text=No tickets match “merger”.").count() == 1
