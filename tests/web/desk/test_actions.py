"""The ticket actions through the web view: reply, note, changes, merge (both engines).

Each action is checked by what it wrote (articles, outbox, ticket rows, history) and, for the
reply, by the mail the recording relay received.
"""

from __future__ import annotations

import email
import re
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema import agent_access
from pytrs.schema.database import Database
from pytrs.schema.tables import outbox

from ...helpers import add_sla, articles, history, tickets
from ...servers.relay import RecordingRelay
from ..zoom_support import (
    SIGNATURE,
    Roles,
    deliver,
    newest_ticket,
    realistic_mail,
    send_outbox,
    zoom_config,
)

Login = Callable[..., Awaitable[Any]]


@pytest.fixture
def config(database_settings: dict[str, Any], relay: RecordingRelay) -> Config:
    return zoom_config(database_settings, relay.address)


async def the_ticket(db: Database) -> dict[str, Any]:
    return (await tickets(db))[0]


async def flashes(client: Any, tn: str) -> str:
    page = await client.get(f"/tickets/{tn}")
    return str(page.text)


async def test_reply_form_is_prefilled(login: Login, roles: Roles, tn: str) -> None:
    client = await login(roles.rw)
    page = await client.get(f"/tickets/{tn}/reply")
    assert page.status_code == 200
    assert 'value="alice@customer.example" readonly' in page.text
    assert f'value="Re: [Ticket#{tn}] Printer on fire"' in page.text
    assert "&gt; the printer on floor 3 is on fire." in page.text
    assert 'enctype="multipart/form-data"' in page.text


async def test_reply_reaches_the_relay(
    login: Login,
    roles: Roles,
    tn: str,
    db: Database,
    config: Config,
    relay: RecordingRelay,
    web_app: Starlette,
) -> None:
    woken: list[bool] = []
    web_app.state.wake_sender = lambda: woken.append(True)
    client = await login(roles.rw)
    form = await client.get(f"/tickets/{tn}/reply")
    assert form.status_code == 200
    answer = await client.post(
        f"/tickets/{tn}/reply",
        data={
            "csrf_token": client.csrf,
            "cc": "Boss <boss@customer.example>",
            "subject": f"Re: [Ticket#{tn}] Printer on fire",
            "state": "open",
            "body": "A technician is on the way.\n\n> the printer on floor 3 is on fire.",
        },
        files=[("attachments", ("checklist.txt", b"1. unplug\n2. run\n", "text/plain"))],
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/tickets/{tn}"
    assert woken == [True]
    await send_outbox(config, db)
    [got] = relay.received
    assert set(got.rcpt_tos) == {"alice@customer.example", "boss@customer.example"}
    msg = email.message_from_bytes(got.data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["Subject"] == f"Re: [Ticket#{tn}] Printer on fire"
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text.startswith("A technician is on the way.\n\n> the printer on floor 3")
    assert text.count("> the printer on floor 3") == 1  # the agent's quote, no second one
    assert text.endswith(f"-- \n{SIGNATURE}\n")
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == "checklist.txt" and part.get_content() == "1. unplug\n2. run\n"
    ticket = await the_ticket(db)
    assert ticket["state"] == "open"
    kinds = [kind for kind, _name in await history(db, ticket["id"])]
    assert "SendAnswer" in kinds and "StateUpdate" in kinds
    page = await flashes(client, tn)
    assert "Answer queued to alice@customer.example, boss@customer.example." in page
    assert "checklist.txt" in page


async def test_reply_error_is_one_line(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.rw)
    answer = await client.post(
        f"/tickets/{tn}/reply", data={"csrf_token": client.csrf, "body": "  "}
    )
    assert answer.status_code == 303
    assert "an answer needs a text" in await flashes(client, tn)
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def test_note_is_internal_and_not_sent(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    client = await login(roles.rw)
    answer = await client.post_form(
        f"/tickets/{tn}/note", {"subject": "Called", "body": "Called Alice back."}
    )
    assert answer.status_code == 303
    ticket = await the_ticket(db)
    note = (await articles(db, ticket["id"]))[-1]
    assert (note["a_subject"], note["a_body"], note["is_visible_for_customer"]) == (
        "Called",
        "Called Alice back.",
        0,
    )
    assert ("AddNote", "%%Note") in await history(db, ticket["id"])
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0
    assert "Note added." in await flashes(client, tn)
    empty = await client.post_form(f"/tickets/{tn}/note", {"body": " "})
    assert empty.status_code == 303 and "a note needs a text" in await flashes(client, tn)


async def test_changes(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.admin)
    answer = await client.post_form(
        f"/tickets/{tn}/update",
        {
            "title": "Printer on fire (floor 3)",
            "state": "open",
            "priority": "4 high",
            "queue": "Support",
            "owner": roles.rw,
        },
    )
    assert answer.status_code == 303
    ticket = await the_ticket(db)
    assert (ticket["title"], ticket["state"]) == ("Printer on fire (floor 3)", "open")
    kinds = [kind for kind, _ in await history(db, ticket["id"])]
    for kind in ("TitleUpdate", "StateUpdate", "PriorityUpdate", "OwnerUpdate"):
        assert kind in kinds
    page = await flashes(client, tn)
    assert "Changed" in page and "4 high" in page
    same = await client.post_form(f"/tickets/{tn}/update", {"state": "open"})
    assert same.status_code == 303 and "Nothing changed." in await flashes(client, tn)
    bad = await client.post_form(f"/tickets/{tn}/update", {"state": "no such state"})
    assert bad.status_code == 303
    assert "no valid state &#39;no such state&#39;" in await flashes(client, tn)


async def test_pending_time_and_sla(login: Login, roles: Roles, tn: str, db: Database) -> None:
    await add_sla(db, "Gold")
    client = await login(roles.rw)
    past = await client.post_form(
        f"/tickets/{tn}/update", {"state": "pending reminder", "pending": "2020-01-01T10:00"}
    )
    assert past.status_code == 303
    page = await flashes(client, tn)
    assert "pending time &#39;2020-01-01T10:00&#39; (Europe/Berlin) is in the past" in page
    # The form as the browser sends it: every field, the datetime-local value, the SLA.
    answer = await client.post_form(
        f"/tickets/{tn}/update",
        {
            "title": "Printer on fire", "state": "pending reminder", "priority": "3 normal",
            "queue": "Support", "owner": "root@localhost", "pending": "2099-01-04T09:00",
            "sla": "Gold",
        },
    )  # fmt: skip
    assert answer.status_code == 303
    ticket = await the_ticket(db)
    assert ticket["state"] == "pending reminder"
    assert ticket["until_time"] == 4_071_196_800  # 2099-01-04 08:00 UTC
    kinds = [kind for kind, _ in await history(db, ticket["id"])]
    assert "SetPendingTime" in kinds and "SLAUpdate" in kinds
    text = await flashes(client, tn)
    assert '<dd class="field-sla">Gold</dd>' in text
    assert '<dd class="field-pending">2099-01-04 09:00 CET</dd>' in text
    # The same form again changes nothing: the SLA select sends the SLA the ticket has.
    again = await client.post_form(
        f"/tickets/{tn}/update", {"state": "pending reminder", "sla": "Gold"}
    )
    assert again.status_code == 303 and "Nothing changed." in await flashes(client, tn)


async def test_move_only_to_own_queues(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.rw)
    refused = await client.post_form(f"/tickets/{tn}/update", {"queue": "Sales"})
    assert refused.status_code == 303
    assert "you may not move tickets to queue &#39;Sales&#39;" in await flashes(client, tn)
    assert (await the_ticket(db))["queue"] == "Support"
    admin = await login(roles.admin)
    moved = await admin.post_form(f"/tickets/{tn}/update", {"queue": "Sales"})
    assert moved.status_code == 303 and (await the_ticket(db))["queue"] == "Sales"
    assert (await client.get(f"/tickets/{tn}")).status_code == 404  # out of jdoe's sight


async def test_merge(login: Login, roles: Roles, tn: str, db: Database, config: Config) -> None:
    await deliver(config, db, realistic_mail("Printer again", "<again@customer.example>"))
    _target_id, target = await newest_ticket(db)
    client = await login(roles.rw)
    answer = await client.post_form(f"/tickets/{tn}/merge", {"into": target})
    assert answer.status_code == 303 and answer.headers["location"] == f"/tickets/{target}"
    merged = {t["tn"]: t for t in await tickets(db)}
    assert merged[tn]["state"] == "merged"
    assert "Merged" in [kind for kind, _ in await history(db, merged[tn]["id"])]
    # A merged ticket shows no actions.
    assert 'action="/tickets/' not in (await client.get(f"/tickets/{tn}")).text


async def test_merge_into_unseen_ticket_is_refused_as_missing(
    login: Login, roles: Roles, tn: str, db: Database, config: Config
) -> None:
    await deliver(
        config, db, realistic_mail("Offer", "<offer@customer.example>"), to="sales@example.com"
    )
    _sales_id, sales_tn = await newest_ticket(db)
    client = await login(roles.rw)
    for into in (sales_tn, "12345"):
        await client.post_form(f"/tickets/{tn}/merge", {"into": into})
        assert f"no ticket with number &#39;{into}&#39; you may merge into" in await flashes(
            client, tn
        )
    assert (await the_ticket(db))["state"] == "new"


ACTIONS = [
    ("note", {"body": "x"}),
    ("update", {"state": "open"}),
    ("merge", {"into": "1"}),
    ("reply", {"body": "x"}),
]


@pytest.mark.parametrize(("action", "data"), ACTIONS)
async def test_actions_per_role(
    login: Login,
    anonymous: Callable[[], Any],
    roles: Roles,
    tn: str,
    db: Database,
    action: str,
    data: dict[str, str],
) -> None:
    url = f"/tickets/{tn}/{action}"
    ro = await login(roles.ro)
    assert (await ro.post_form(url, data)).status_code == 403
    other = await login(roles.other)
    assert (await other.post_form(url, data)).status_code == 404
    stranger = anonymous()
    await stranger.get("/login")
    assert (await stranger.post_form(url, data)).status_code == 303
    rw = await login(roles.rw)
    assert (await rw.post(url, data=data)).status_code == 403  # no CSRF token
    ticket = await the_ticket(db)
    assert ticket["state"] == "new" and len(await articles(db, ticket["id"])) == 1
    if action == "reply":
        assert (await ro.get(url)).status_code == 403
        assert (await other.get(url)).status_code == 404


async def test_owner_only_among_agents_of_the_queue(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    # Znuny's owner lists offer only agents with rw on the queue: the Sales agent and the
    # read-only agent cannot be given a Support ticket, the Support agent and the admin can.
    client = await login(roles.rw)
    page = (await client.get(f"/tickets/{tn}")).text
    owner_list = re.search(r'<select name="owner">(.*?)</select>', page, re.S)
    assert owner_list is not None
    offered = re.findall(r"<option[^>]*>([^<]+)</option>", owner_list.group(1))
    assert roles.rw in offered and roles.admin in offered
    assert roles.other not in offered and roles.ro not in offered
    for owner in (roles.other, roles.ro):
        answer = await client.post_form(f"/tickets/{tn}/update", {"owner": owner})
        assert answer.status_code == 303
        assert f"{owner} may not work on tickets of queue Support" in await flashes(client, tn)
        assert (await tickets(db))[0]["user_id"] == 1  # still the system user's
    taken = await client.post_form(f"/tickets/{tn}/update", {"owner": roles.admin})
    assert taken.status_code == 303 and (await the_ticket(db))["user_id"] == await _id(
        db, roles.admin
    )
    # Moving to Sales and giving it to the Sales agent in one change is fine (admin may move).
    admin = await login(roles.admin)
    both = await admin.post_form(f"/tickets/{tn}/update", {"queue": "Sales", "owner": roles.other})
    assert both.status_code == 303 and (await the_ticket(db))["user_id"] == await _id(
        db, roles.other
    )


async def _id(db: Database, login: str) -> int:
    account = await agent_access.by_login(db, login)
    assert account is not None
    return account.id
