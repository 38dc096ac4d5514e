"""The queue view and the search in headless Chromium: log in, see tickets, filter, page,
search; writes the screenshot of the queue view the README shows (docs/screenshots/)."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

import pytest

from pytrs.schema.database import utcnow
from pytrs.schema.tables import ticket
from pytrs.tickets import TicketUpdate

from ..tickets_for_web import HOSTILE_NAME, HOSTILE_SUBJECT, Tickets
from .conftest import SCREENSHOTS

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
async def desk(live_server: Any, make_queue: Any, make_user: Any) -> Tickets:
    """60 tickets over three queues, about 35 still open, created over the last days, some
    owned and locked, some escalating; and one in a queue the agent may not read."""
    for name in ("Support", "Sales", "Billing"):
        await make_queue(name)
    await make_queue("Board")
    await make_user("olga", queues={"Support": "rw", "Sales": "rw", "Billing": "ro"})
    await make_user("bruno", queues={"Support": "rw", "Sales": "rw"})
    tickets = Tickets(live_server.app)
    rng = random.Random(7)
    for i in range(60):
        state = STATES[i % len(STATES)] if i < 42 else "closed successful"
        tn = await tickets.make(
            rng.choice(["Support", "Support", "Sales", "Billing"]),
            f"{rng.choice(PRODUCTS)} {rng.choice(ISSUES)}",
            customer=rng.choice(CUSTOMERS), state=state, priority=rng.choice(PRIORITIES),
            body=f"Hi team, the {rng.choice(PRODUCTS)} needs a look. Ref {1000 + i}.",
        )  # fmt: skip
        await _backdate(tickets, tn, rng, owner=rng.choice([None, None, None, "olga", "bruno"]))
    await tickets.make("Board", "Board only: merger plans")
    return tickets


async def _backdate(tickets: Tickets, tn: str, rng: random.Random, owner: str | None) -> None:
    """Age the ticket as a desk's tickets are (minutes to days), perhaps with an owner and
    an escalation time, so the screenshot looks like a working day."""
    async with tickets.db.transaction() as conn:
        found = await tickets.service.find(conn, tn)
        if owner and found.state_type != "closed":
            agent = await tickets.service.agent(conn, owner)
            update = TicketUpdate(owner=owner, lock="lock")
            await tickets.service.update(conn, found.id, update, actor=agent)
        created = utcnow() - timedelta(minutes=rng.randrange(5, 60 * 24 * 9))
        escalation = 0
        if rng.random() < 0.3 and found.state_type != "closed":
            escalation = int(time.time()) + rng.randrange(-3600 * 20, 3600 * 30)
        await conn.execute(
            ticket.update().where(ticket.c.id == found.id).values(
                create_time=created, change_time=created + timedelta(minutes=rng.randrange(1, 600)),
                escalation_time=escalation,
            )
        )  # fmt: skip


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

    # Hostile text in a title and a display name shows as text and runs nothing (the page
    # fixture fails the test on any dialog or page error).
    await desk.make("Support", HOSTILE_SUBJECT, sender=HOSTILE_NAME)
    await page.goto(live_server.url + "/?sort=age&order=desc")
    assert await page.locator("td.title", has_text="<script>alert(2)</script>").count() == 1

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
