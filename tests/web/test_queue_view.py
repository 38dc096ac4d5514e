"""The queue view `/`: the agent's tickets with filters, sorts, keyset pages and counts per
queue; never a ticket of another queue; hostile text escaped (both engines)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from pytrs.schema.database import Database

from ..helpers import set_deadlines
from .tickets_for_web import HOSTILE_NAME, HOSTILE_SUBJECT, Tickets, two_queues

TN = re.compile(r'<td class="tn"><a href="/tickets/([^"]+)">')


def numbers(html: str) -> list[str]:
    return TN.findall(html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', html)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def tickets(web_app: Starlette) -> Tickets:
    return Tickets(web_app)


async def test_anonymous_is_sent_to_login(anonymous: Callable[..., Any]) -> None:
    answer = await anonymous().get("/?view=all")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


async def test_agent_sees_only_readable_queues(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    ids = await two_queues(make_queue, make_user)
    alpha = await tickets.make("Alpha", "Alpha printer jam")
    beta = await tickets.make("Beta", "Beta secret merger")
    gamma = await tickets.make("Gamma", "Gamma read only")
    client = await login("anna")
    for url in ("/", "/?view=all", "/?view=all&sort=number&order=desc", "/?owner=unassigned"):
        page = (await client.get(url)).text
        assert beta not in page and "Beta secret merger" not in page
        assert set(numbers(page)) == {alpha, gamma}
    assert ">Beta<" not in (await client.get("/")).text  # not even in the side list
    # Asking for the other queue by id shows nothing rather than its tickets.
    page = (await client.get(f"/?queue={ids['Beta']}&view=all")).text
    assert numbers(page) == [] and "No tickets match these filters." in page


async def test_filters_and_counts(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    ids = await two_queues(make_queue, make_user)
    made = {
        "open": await tickets.make("Alpha", "Open one", state="open"),
        "new": await tickets.make("Alpha", "New one"),
        "closed": await tickets.make("Alpha", "Closed one", state="closed successful"),
        "pending": await tickets.make("Gamma", "Pending one", state="pending reminder"),
    }
    client = await login("anna")
    page = (await client.get("/")).text
    assert set(numbers(page)) == {made["open"], made["new"], made["pending"]}
    assert _count(page, "Alpha") == 2 and _count(page, "Gamma") == 1
    assert 'title="read only">ro</span>' in page
    assert numbers((await client.get("/?view=closed")).text) == [made["closed"]]
    assert numbers((await client.get("/?view=pending")).text) == [made["pending"]]
    by_queue = (await client.get(f"/?queue={ids['Gamma']}")).text
    assert numbers(by_queue) == [made["pending"]]
    assert _count(by_queue, "Alpha") == 2  # the side list counts every queue
    assert numbers((await client.get("/?view=all&state=4")).text) == [made["open"]]
    assert numbers((await client.get("/?owner=mine")).text) == []
    assert len(numbers((await client.get("/?owner=unassigned")).text)) == 3
    # Garbage in the filters falls back to the defaults.
    assert len(numbers((await client.get("/?view=x&queue=y&state=%00&after=zz")).text)) == 3


def _count(html: str, queue: str) -> int:
    found = re.search(
        rf">{queue}</a>(?: <span class=\"ro\"[^>]*>ro</span>)? <span class=\"count\">(\d+)<", html
    )
    assert found, f"no count for {queue}"
    return int(found.group(1))


async def test_sorts_and_keyset_pages_walk_every_ticket_once(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    priorities = ["1 very low", "5 very high", "3 normal"]
    made = [
        await tickets.make("Alpha", f"Ticket {i:02d}", priority=priorities[i % 3])
        for i in range(57)
    ]
    client = await login("anna")
    for sort in ("age", "changed", "priority", "number", "title"):
        for order in ("asc", "desc"):
            seen: list[str] = []
            url: str | None = f"/?sort={sort}&order={order}"
            pages = 0
            while url:
                page = (await client.get(url)).text
                seen += numbers(page)
                url = next_link(page)
                pages += 1
            assert sorted(seen) == sorted(made) and pages == 2, (sort, order)
    first = (await client.get("/?sort=number&order=asc")).text
    assert numbers(first) == sorted(made)[:50]
    second = (await client.get(next_link(first) or "")).text
    assert numbers(second) == sorted(made)[50:]
    prev = re.search(r'<a href="([^"]+)" rel="prev">', second)
    assert prev and 'rel="prev"' not in first
    back = (await client.get(prev.group(1).replace("&amp;", "&"))).text
    assert numbers(back) == sorted(made)[:50]


async def test_rows_show_the_columns_and_link_to_the_zoom(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    tn = await tickets.make("Alpha", "Columns", priority="4 high", customer="cust@example.org")
    page = (await (await login("anna")).get("/")).text
    row = page[page.index(f'href="/tickets/{tn}"') :]
    row = row[: row.index("</tr>")]
    for shown in ("Columns", "Alpha", "new", "4 high", "root@localhost", "cust@example.org"):
        assert shown in row, shown
    assert '<td class="age"' in row and '<td class="escalation">' in row


async def test_escalation_column_counts_down_and_turns_red(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any, db: Database
) -> None:
    await two_queues(make_queue, make_user)
    late = await tickets.make("Alpha", "Late")
    soon = await tickets.make("Alpha", "Soon")
    calm = await tickets.make("Alpha", "Calm")
    now = int(time.time())
    await set_deadlines(db, late, escalation_response_time=now - 3 * 3600 - 600)
    await set_deadlines(db, soon, escalation_update_time=now + 2 * 3600 + 600)
    page = (await (await login("anna")).get("/")).text

    def cell(tn: str) -> str:
        row = page[page.index(f'href="/tickets/{tn}"') :]
        return row[row.index('<td class="escalation') : row.index("</tr>")]

    assert cell(late).startswith('<td class="escalation overdue">3 h overdue</td>')
    assert cell(soon).startswith('<td class="escalation">in 2 h</td>')
    assert cell(calm).startswith('<td class="escalation"></td>')


async def test_hostile_titles_and_names_are_escaped(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    await tickets.make("Alpha", HOSTILE_SUBJECT, sender=HOSTILE_NAME,
                       customer='"><script>alert(4)</script>@x.example')  # fmt: skip
    page = (await (await login("anna")).get("/")).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in page


async def test_admin_reads_every_queue(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    await make_user("root2", role="admin", queues={})
    beta = await tickets.make("Beta", "Only admins")
    page = (await (await login("root2")).get("/")).text
    assert beta in numbers(page)
