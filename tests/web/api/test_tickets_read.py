"""Reading tickets through the API (both engines): the list with the queue view's filters and
a keyset cursor across pages, the search, one ticket, its history, and the one 404 for a
ticket that is missing or out of sight."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.schema.tables import ticket

from ...helpers import set_deadlines
from .tickets_desk import ANNA, BOB, BOSS, Office, open_office

Client = Callable[..., Any]


@pytest.fixture
async def office(
    config: Config,
    db: Database,
    api_app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
) -> Office:
    return await open_office(config, db, api_app, make_user, make_queue, support=7)


async def _client(make_token: Any, api_client: Any, login: str, scope: str = "read") -> Any:
    return api_client(await make_token(login, scope=scope))


async def test_list_pages_through_readable_queues_only(
    office: Office, make_token: Any, api_client: Any
) -> None:
    anna = await _client(make_token, api_client, ANNA)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "view": "all", "sort": "number", "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        answer = await anna.get("/tickets", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [row["tn"] for row in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    readable = sorted(office.support + office.gamma + [office.mail])
    assert seen == readable  # every readable ticket once, in order: no gap, no duplicate
    assert pages == 3  # 9 tickets, 3 a page
    assert not set(seen) & set(office.sales)
    first = (await anna.get("/tickets", params={"view": "all", "limit": 1})).json()["items"][0]
    assert set(first) >= {"tn", "title", "queue", "state", "priority", "owner", "created"}
    assert first["created"].endswith("Z")


async def test_list_filters_as_the_queue_view(
    office: Office, db: Database, make_token: Any, api_client: Any
) -> None:
    anna = await _client(make_token, api_client, ANNA)

    async def tns(**params: Any) -> list[str]:
        answer = await anna.get("/tickets", params={"limit": 100, **params})
        assert answer.status_code == 200, answer.text
        return sorted(row["tn"] for row in answer.json()["items"])

    assert await tns(queue="Gamma") == office.gamma
    assert await tns(queue="Support") == sorted([*office.support, office.mail])
    closed = office.support[0]
    async with db.transaction() as conn:
        await conn.execute(update(ticket).where(ticket.c.tn == closed).values(ticket_state_id=2))
    assert closed not in await tns()  # the default view: open tickets
    assert await tns(view="closed") == [closed]
    assert await tns(state="closed successful") == [closed]
    assert await tns(owner="me") == []  # the system user owns tickets made by mail
    assert len(await tns(unassigned=True)) == 8
    newest = (await anna.get("/tickets", params={"sort": "number", "order": "desc"})).json()
    assert newest["items"][0]["tn"] == max([*office.support[1:], office.mail])
    # A queue the agent may not read is answered as one that does not exist.
    hidden = await anna.get("/tickets", params={"queue": "Sales"})
    missing = await anna.get("/tickets", params={"queue": "Nowhere"})
    for answer in (hidden, missing):
        assert answer.status_code == 422
        assert answer.json()["type"].endswith("#unknown-name")
    # The same answer but for the name asked: Sales is not among the names offered.
    assert hidden.json()["detail"].replace("Sales", "?") == missing.json()["detail"].replace(
        "Nowhere", "?"
    )
    nobody = await anna.get("/tickets", params={"owner": "nobody"})
    assert nobody.status_code == 422 and nobody.json()["type"].endswith("#unknown-name")
    bad = await anna.get("/tickets", params={"cursor": "garbage", "view": "all"})
    assert bad.status_code == 422
    wrong = await anna.get("/tickets", params={"limit": 101})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "limit"
    boss = await _client(make_token, api_client, BOSS)
    everything = await boss.get("/tickets", params={"limit": 100, "view": "all"})
    assert len(everything.json()["items"]) == 11


async def test_search_finds_readable_tickets_and_pages(
    office: Office, make_token: Any, api_client: Any
) -> None:
    anna = await _client(make_token, api_client, ANNA)
    answer = await anna.get("/tickets/search", params={"q": "printer"})
    assert answer.status_code == 200, answer.text
    [hit] = answer.json()["items"]
    assert hit["tn"] == office.mail and hit["match"] in ("subject", "text")
    assert hit["subject"] == "Printer on fire"
    by_number = (await anna.get("/tickets/search", params={"q": office.support[2]})).json()
    assert by_number["items"][0]["tn"] == office.support[2]
    assert by_number["items"][0]["match"] == "number"
    assert (await anna.get("/tickets/search", params={"q": "secret"})).json()["items"] == []
    assert (await anna.get("/tickets/search", params={"q": office.sales[0]})).json()["items"] == []
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "text", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await anna.get("/tickets/search", params=params)).json()
        seen += [row["tn"] for row in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(office.support)
    other = await anna.get("/tickets/search", params={"q": "other", "cursor": cursor or "x"})
    assert other.status_code == 422
    assert (await anna.get("/tickets/search", params={"q": ""})).status_code == 422
    bob = await _client(make_token, api_client, BOB)
    assert [
        r["tn"] for r in (await bob.get("/tickets/search", params={"q": "secret"})).json()["items"]
    ] == sorted(office.sales, reverse=True)


async def test_get_ticket_and_history(
    office: Office, db: Database, make_token: Any, api_client: Any
) -> None:
    anna = await _client(make_token, api_client, ANNA)
    answer = await anna.get(f"/tickets/{office.mail}")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["tn"] == office.mail and got["queue"] == "Support" and got["state"] == "new"
    assert got["state_type"] == "new" and got["lock"] == "unlock" and got["articles"] == 1
    assert got["customer_user"] == "alice@customer.example"
    templates = await anna.get(f"/queues/{got['queue_id']}/templates")
    assert templates.status_code == 200
    assert got["escalation"] is None and got["links"] == [] and got["merged_into"] is None
    assert got["created"].endswith("Z")
    history = (await anna.get(f"/tickets/{office.mail}/history")).json()
    assert history["entries"][0]["type"] == "NewTicket"
    assert office.mail in history["entries"][0]["parameters"][0]
    assert got["sla"] is None and got["pending_until"] is None
    # Deadlines as the escalation index stores them: one passed ten minutes ago, one far off.
    now = int(time.time())
    await set_deadlines(
        db,
        office.gamma[0],
        escalation_response_time=now - 600,
        escalation_solution_time=1_900_000_000,
    )
    read_only = await anna.get(f"/tickets/{office.gamma[0]}")
    assert read_only.status_code == 200
    clocks = read_only.json()["escalation"]
    assert clocks["first"] == clocks["response"]["deadline"] and clocks["escalated"]
    assert clocks["response"]["escalated"] and -700 < clocks["response"]["seconds_left"] <= -600
    assert clocks["update"] is None
    assert clocks["solution"]["deadline"] == "2030-03-17T17:46:40Z"
    assert not clocks["solution"]["escalated"] and clocks["solution"]["seconds_left"] > 0
    listed = await anna.get("/tickets", params={"queue": "Gamma"})
    assert listed.json()["items"][0]["escalation"] == clocks["first"]
    # Escalating: escalated or due within the hour, whatever the sort.
    escalating = await anna.get("/tickets", params={"escalating": "true", "view": "all"})
    assert [item["tn"] for item in escalating.json()["items"]] == [office.gamma[0]]


async def test_missing_and_hidden_tickets_answer_the_same(
    office: Office, make_token: Any, api_client: Any
) -> None:
    anna = await _client(make_token, api_client, ANNA, scope="write")
    for suffix in (
        "",
        "/history",
        "/articles",
        "/articles/1",
        "/articles/1/raw",
        "/articles/1/attachments/1",
    ):
        hidden = await anna.get(f"/tickets/{office.sales[0]}{suffix}")
        missing = await anna.get(f"/tickets/99999999999999{suffix}")
        assert hidden.status_code == missing.status_code == 404, (suffix, hidden.text)
        assert hidden.headers["content-type"] == "application/problem+json"
        one, other = hidden.json(), missing.json()
        del one["instance"], other["instance"]
        assert one == other
    for method, suffix, body in (
        ("PATCH", "", {"title": "x"}),
        ("POST", "/merge", {"into": office.support[0]}),
        ("POST", "/articles", {"kind": "note", "body": "x"}),
    ):
        hidden = await anna.request(method, f"/tickets/{office.sales[0]}{suffix}", json=body)
        missing = await anna.request(method, f"/tickets/4242424242{suffix}", json=body)
        assert hidden.status_code == missing.status_code == 404
        assert {**hidden.json(), "instance": ""} == {**missing.json(), "instance": ""}
