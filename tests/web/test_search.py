"""The search page: by number, subject word, body word and address; only readable queues;
a clear line when nothing matches; hostile text escaped (both engines)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.applications import Starlette

from .tickets_for_web import HOSTILE_NAME, HOSTILE_SUBJECT, Tickets, two_queues

TN = re.compile(r'<td class="tn"><a href="/tickets/([^"]+)">')


@pytest.fixture
def tickets(web_app: Starlette) -> Tickets:
    return Tickets(web_app)


async def found(client: Any, query: str) -> list[str]:
    answer = await client.get("/search", params={"q": query})
    assert answer.status_code == 200
    return TN.findall(answer.text)


async def test_search_by_number_subject_body_and_address(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    tn = await tickets.make("Alpha", "Forklift battery", body="The charger smells of ozone.",
                            customer="fred@warehouse.example")  # fmt: skip
    other = await tickets.make("Alpha", "Unrelated", body="Nothing to see.")
    client = await login("anna")
    assert await found(client, tn) == [tn]
    assert await found(client, "forklift") == [tn]
    assert await found(client, "Ozone charger") == [tn]
    assert await found(client, "fred@warehouse.example") == [tn]
    assert other not in await found(client, "battery")
    page = (await client.get("/search", params={"q": "forklift"})).text
    assert "Forklift battery" in page and "ozone" in page  # subject and snippet


async def test_search_never_shows_other_queues(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    mine = await tickets.make("Alpha", "Quarterly report", customer="boss@corp.example")
    hidden = await tickets.make("Beta", "Quarterly report secret", customer="boss@corp.example")
    read_only = await tickets.make("Gamma", "Quarterly report shared")
    client = await login("anna")
    for query in ("quarterly", "report", "secret", "boss@corp.example", hidden):
        shown = await found(client, query)
        assert hidden not in shown, query
    assert set(await found(client, "quarterly")) == {mine, read_only}
    page = (await client.get("/search", params={"q": "secret"})).text
    assert "No tickets match “secret”." in page and "Quarterly report secret" not in page


async def test_empty_and_unmatched_queries(make_user: Any, login: Any) -> None:
    await make_user("anna")
    client = await login("anna")
    empty = (await client.get("/search")).text
    assert "No tickets match" not in empty and "Search by ticket number" in empty
    page = (await client.get("/search", params={"q": 'zzz "NEAR( * <b>'})).text
    assert "No tickets match “zzz &#34;NEAR( * &lt;b&gt;”." in page


async def test_hostile_results_are_escaped(
    tickets: Tickets, make_queue: Any, make_user: Any, login: Any
) -> None:
    await two_queues(make_queue, make_user)
    body = "invoice <script>alert(5)</script> <img src=x onerror=alert(6)>"
    await tickets.make("Alpha", HOSTILE_SUBJECT + " invoice", sender=HOSTILE_NAME, body=body)
    client = await login("anna")
    page = (await client.get("/search", params={"q": "invoice"})).text
    assert len(TN.findall(page)) == 1
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(5)&lt;/script&gt;" in page
    reflected = (await client.get("/search", params={"q": "<script>alert(7)</script>"})).text
    assert "<script>alert(7)" not in reflected and "&lt;script&gt;alert(7)" in reflected


async def test_anonymous_search_is_sent_to_login(anonymous: Any) -> None:
    answer = await anonymous().get("/search?q=x")
    assert answer.status_code == 303 and "/login?next=" in answer.headers["location"]
