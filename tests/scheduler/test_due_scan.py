"""The due scan with explicit `now` values, on the test database (SQLite or PostgreSQL), on
the clocks the ticket writes computed (queue Support: first response in 60 minutes, warned at
50 %, 24/7): each event fires once, with its history entry and its notifications in the
outbox; a met escalation sends nothing; pending reminders notify; `pending auto close±`
close; a template that fails is noted, not fatal."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import update

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notifier
from pytrs.schema.database import Database
from pytrs.schema.tables import users
from pytrs.tickets.service import TicketService

from .conftest import (
    clock_row,
    epoch,
    history_kinds,
    new_ticket,
    notifications,
    scheduler_config,
    set_state,
    set_targets,
    state_of,
)


def _mail(row: dict[str, Any]) -> email.message.EmailMessage:
    return email.message_from_bytes(row["raw"], policy=default_policy)  # type: ignore[return-value]


async def _clock(db: Database, ticket_id: int) -> dict[str, Any]:
    found = await clock_row(db, ticket_id)
    assert found is not None, f"ticket {ticket_id} has no clock"
    return found


async def test_notify_before_then_escalated_each_once(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service)
    clock = await _clock(provisioned, ticket_id)
    warn, deadline = clock["response_notify"], clock["response_time"]
    assert deadline - warn == 1800 and clock["next_due"] == warn

    early = await scanner.run(now=warn - 1)
    assert early.claimed == 0 and not await notifications(provisioned)

    warned = await scanner.run(now=warn)
    assert dict(warned.fired) == {("response", "notify_before"): 1}
    assert warned.queued == 2  # jdoe and asmith: the ticket's owner is the system
    assert (await scanner.run(now=warn + 100)).fired == {}
    mails = await notifications(provisioned, ticket_id)
    assert sorted(_mail(m)["To"] for m in mails) == ["asmith@agents.example", "jdoe@agents.example"]
    first = _mail(mails[0])
    assert "Escalation warning (first response): Printer on fire" in str(first["Subject"])
    body = first.get_content()
    assert "escalates at" in body and "30 min of working time left" in body
    assert first["Auto-Submitted"] == "auto-generated"
    assert (await _clock(provisioned, ticket_id))["next_due"] == deadline

    escalated = await scanner.run(now=deadline)
    assert dict(escalated.fired) == {("response", "escalated"): 1}
    assert (await scanner.run(now=deadline + 3600)).fired == {}
    assert await history_kinds(provisioned, ticket_id, "Escalation") == [
        "EscalationResponseTimeNotifyBefore", "EscalationResponseTimeStart",
    ]  # fmt: skip
    assert (await history_kinds(provisioned, ticket_id)).count("SendAgentNotification") == 4
    mails = await notifications(provisioned, ticket_id)
    assert len(mails) == 4
    assert "Escalated (first response): Printer on fire" in str(_mail(mails[-1])["Subject"])
    clock = await _clock(provisioned, ticket_id)
    assert clock["response_stage"] == 2 and clock["next_due"] is None


async def test_a_late_scan_fires_only_the_escalation(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service)
    deadline = (await _clock(provisioned, ticket_id))["response_time"]
    outcome = await scanner.run(now=deadline + 400)
    assert dict(outcome.fired) == {("response", "escalated"): 1}
    assert await history_kinds(provisioned, ticket_id, "Escalation") == [
        "EscalationResponseTimeStart"
    ]


async def test_the_owner_alone_is_told(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service, owner="jdoe")
    deadline = (await _clock(provisioned, ticket_id))["response_time"]
    await scanner.run(now=deadline)
    [mail] = await notifications(provisioned, ticket_id)
    assert _mail(mail)["To"] == "jdoe@agents.example"


async def test_a_met_escalation_sends_nothing(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service)
    deadline = (await _clock(provisioned, ticket_id))["response_time"]
    async with provisioned.transaction() as conn:
        agent = await service.agent(conn, "jdoe")
        await service.reply(conn, ticket_id, actor=agent, body="We are on it.")
    clock = await clock_row(provisioned, ticket_id)
    assert clock is None or clock["response_time"] == 0
    outcome = await scanner.run(now=deadline + 60)
    assert outcome.fired == {}
    assert not await notifications(provisioned)
    assert await history_kinds(provisioned, ticket_id, "Escalation") == []


async def test_a_pending_reminder_notifies_once(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service, queue="Sales")
    at = epoch() + 600
    await set_state(provisioned, service, ticket_id, "pending reminder", until=at)
    assert (await _clock(provisioned, ticket_id))["pending_time"] == at
    assert (await scanner.run(now=at - 1)).fired == {}
    outcome = await scanner.run(now=at)
    assert dict(outcome.fired) == {("pending", "pending"): 1}
    mails = await notifications(provisioned, ticket_id)
    assert sorted(_mail(m)["To"] for m in mails) == ["asmith@agents.example", "jdoe@agents.example"]
    message = _mail(mails[0])
    assert "Reminder: Printer on fire" in str(message["Subject"])
    assert "pending time of ticket" in message.get_content()
    assert (await scanner.run(now=at + 60)).fired == {}
    assert len(await notifications(provisioned, ticket_id)) == 2
    assert await state_of(provisioned, ticket_id) == "pending reminder"


async def test_pending_auto_close_plus_and_minus(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    plus = await new_ticket(provisioned, service, queue="Sales")
    minus = await new_ticket(provisioned, service, queue="Sales")
    at = epoch() + 600
    await set_state(provisioned, service, plus, "pending auto close+", until=at)
    await set_state(provisioned, service, minus, "pending auto close-", until=at + 1)
    outcome = await scanner.run(now=at + 1)
    assert outcome.closed == 2 and outcome.queued == 0
    assert await state_of(provisioned, plus) == "closed successful"
    assert await state_of(provisioned, minus) == "closed unsuccessful"
    for ticket_id in (plus, minus):
        assert await history_kinds(provisioned, ticket_id, "StateUpdate") == ["StateUpdate"] * 2
        clock = await clock_row(provisioned, ticket_id)
        assert clock is None or clock["next_due"] is None  # closed: nothing left to fire
    assert (await scanner.run(now=at + 100)).claimed == 0
    assert not await notifications(provisioned)


async def test_many_due_tickets_in_several_batches(
    provisioned: Database, config: Config, service: TicketService
) -> None:
    scanner = DueScanner(provisioned, service, Notifier(config, service.composer), batch_size=7)
    ids = [await new_ticket(provisioned, service, owner="jdoe") for _ in range(20)]
    last = max([(await _clock(provisioned, i))["response_time"] for i in ids])
    outcome = await scanner.run(now=last)
    assert outcome.fired == {("response", "escalated"): 20}
    assert len(await notifications(provisioned)) == 20
    assert (await scanner.run(now=last + 100)).claimed == 0


async def test_a_template_that_fails_is_noted_not_fatal(
    database_settings: dict[str, Any], db: Database
) -> None:
    # The sample title ("Printer on fire", 15 characters) renders; "Hello" divides by zero.
    config = scheduler_config(
        database_settings,
        scheduler={"escalated_body": "{{ 100 // (ticket.title|length - 5) }}\n"},
    )
    await provision(db, config)
    await set_targets(db, "Support", response=60)
    service = TicketService.from_config(config)
    scanner = DueScanner(db, service, Notifier(config, service.composer))
    broken = await new_ticket(db, service, title="Hello")
    fine = await new_ticket(db, service, title="Printer on fire")
    last = max([(await _clock(db, i))["response_time"] for i in (broken, fine)])
    outcome = await scanner.run(now=last)
    assert outcome.fired == {("response", "escalated"): 2}
    assert not await notifications(db, broken)
    assert len(await notifications(db, fine)) == 2
    assert await history_kinds(db, broken, "Escalation") == ["EscalationResponseTimeStart"]
    assert await history_kinds(db, broken, "Misc") == ["Misc"]
    assert (await _clock(db, broken))["response_stage"] == 2


async def test_an_agent_no_mail_can_reach_is_noted_and_the_others_told(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    async with provisioned.transaction() as conn:
        await conn.execute(
            update(users).where(users.c.login == "asmith").values(email="asmith at agents")
        )
    ticket_id = await new_ticket(provisioned, service)
    deadline = (await _clock(provisioned, ticket_id))["response_time"]
    outcome = await scanner.run(now=deadline)
    assert outcome.queued == 1
    [mail] = await notifications(provisioned, ticket_id)
    assert _mail(mail)["To"] == "jdoe@agents.example"
    assert await history_kinds(provisioned, ticket_id, "Misc") == ["Misc"]
    assert (await _clock(provisioned, ticket_id))["response_stage"] == 2
