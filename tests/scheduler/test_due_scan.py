"""The due scan with explicit `now` values, on the test database (SQLite or PostgreSQL):
each event fires once, with its history entry and its notifications in the outbox; pending
reminders notify; `pending auto close±` close; a template that fails is noted, not fatal."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from typing import Any

from pytrs.config import Config
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notifier
from pytrs.schema.database import Database
from pytrs.tickets.service import TicketService

from .conftest import (
    clock_row,
    epoch,
    history_kinds,
    new_ticket,
    notifications,
    scheduler_config,
    set_clock,
    set_state,
    state_of,
)


def _mail(row: dict[str, Any]) -> email.message.EmailMessage:
    return email.message_from_bytes(row["raw"], policy=default_policy)  # type: ignore[return-value]


async def test_notify_before_then_escalated_each_once(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service)
    start = epoch()
    await set_clock(provisioned, ticket_id, response_notify=start + 1800,
                    response_time=start + 3600)  # fmt: skip

    early = await scanner.run(now=start + 1799)
    assert early.claimed == 0 and not await notifications(provisioned)

    warned = await scanner.run(now=start + 1800)
    assert dict(warned.fired) == {("response", "notify_before"): 1}
    assert warned.queued == 2  # jdoe and asmith: the ticket has no owner but the system
    assert (await scanner.run(now=start + 1900)).fired == {}
    mails = await notifications(provisioned, ticket_id)
    assert sorted(_mail(m)["To"] for m in mails) == ["asmith@agents.example", "jdoe@agents.example"]
    first = _mail(mails[0])
    assert "Escalation warning (response): Printer on fire" in str(first["Subject"])
    body = first.get_content()
    assert "escalates at" in body and "30 min of working time left" in body
    assert first["Auto-Submitted"] == "auto-generated"

    escalated = await scanner.run(now=start + 3600)
    assert dict(escalated.fired) == {("response", "escalated"): 1}
    assert (await scanner.run(now=start + 7200)).fired == {}
    assert await history_kinds(provisioned, ticket_id, "Escalation") == [
        "EscalationResponseTimeNotifyBefore", "EscalationResponseTimeStart",
    ]  # fmt: skip
    assert (await history_kinds(provisioned, ticket_id)).count("SendAgentNotification") == 4
    mails = await notifications(provisioned, ticket_id)
    assert len(mails) == 4
    assert "Escalated (response): Printer on fire" in str(_mail(mails[-1])["Subject"])
    clock = await clock_row(provisioned, ticket_id)
    assert clock is not None and clock["response_stage"] == 2 and clock["next_due"] is None


async def test_late_scan_fires_only_the_escalation(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service)
    start = epoch()
    await set_clock(provisioned, ticket_id, response_notify=start + 1800,
                    response_time=start + 3600)  # fmt: skip
    outcome = await scanner.run(now=start + 4000)
    assert dict(outcome.fired) == {("response", "escalated"): 1}
    assert await history_kinds(provisioned, ticket_id, "Escalation") == [
        "EscalationResponseTimeStart"
    ]


async def test_the_owner_alone_is_told(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service, owner="jdoe")
    start = epoch()
    await set_clock(provisioned, ticket_id, solution_time=start + 60)
    await scanner.run(now=start + 60)
    [mail] = await notifications(provisioned, ticket_id)
    assert _mail(mail)["To"] == "jdoe@agents.example"
    assert await history_kinds(provisioned, ticket_id, "Escalation") == [
        "EscalationSolutionTimeStart"
    ]


async def test_pending_reminder_notifies_once(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    ticket_id = await new_ticket(provisioned, service, queue="Sales")
    await set_state(provisioned, service, ticket_id, "pending reminder")
    at = epoch() + 600
    await set_clock(provisioned, ticket_id, pending_time=at)
    assert (await scanner.run(now=at - 1)).fired == {}
    outcome = await scanner.run(now=at)
    assert dict(outcome.fired) == {("pending", "pending"): 1}
    [mail, _other] = await notifications(provisioned, ticket_id)
    message = _mail(mail)
    assert message["To"] in ("jdoe@agents.example", "asmith@agents.example")
    assert "Reminder: Printer on fire" in str(message["Subject"])
    assert "pending time of ticket" in message.get_content()
    assert (await scanner.run(now=at + 60)).fired == {}
    assert len(await notifications(provisioned, ticket_id)) == 2
    assert await state_of(provisioned, ticket_id) == "pending reminder"


async def test_pending_auto_close_plus_and_minus(
    scanner: DueScanner, provisioned: Database, service: TicketService
) -> None:
    plus = await new_ticket(provisioned, service)
    minus = await new_ticket(provisioned, service)
    await set_state(provisioned, service, plus, "pending auto close+")
    await set_state(provisioned, service, minus, "pending auto close-")
    at = epoch() + 600
    await set_clock(provisioned, plus, pending_time=at)
    await set_clock(provisioned, minus, pending_time=at + 1)
    outcome = await scanner.run(now=at + 1)
    assert outcome.closed == 2 and outcome.queued == 0
    assert await state_of(provisioned, plus) == "closed successful"
    assert await state_of(provisioned, minus) == "closed unsuccessful"
    for ticket_id in (plus, minus):
        assert (await history_kinds(provisioned, ticket_id, "StateUpdate"))[-1:] == ["StateUpdate"]
        assert len(await history_kinds(provisioned, ticket_id, "StateUpdate")) == 2
    assert (await scanner.run(now=at + 100)).closed == 0
    assert not await notifications(provisioned)


async def test_many_due_tickets_in_several_batches(
    provisioned: Database, config: Config, service: TicketService
) -> None:
    scanner = DueScanner(provisioned, service, Notifier(config, service.composer), batch_size=7)
    start = epoch()
    ids = [await new_ticket(provisioned, service, owner="jdoe") for _ in range(20)]
    for i, ticket_id in enumerate(ids):
        await set_clock(provisioned, ticket_id, update_time=start + i)
    outcome = await scanner.run(now=start + 100)
    assert outcome.fired == {("update", "escalated"): 20}
    assert len(await notifications(provisioned)) == 20
    assert (await scanner.run(now=start + 200)).claimed == 0


async def test_a_template_that_fails_is_noted_not_fatal(
    database_settings: dict[str, Any], db: Database
) -> None:
    # The sample title ("Printer on fire", 15 characters) renders; "Hello" divides by zero.
    config = scheduler_config(
        database_settings,
        scheduler={"escalated_body": "{{ 100 // (ticket.title|length - 5) }}\n"},
    )
    from pytrs.provisioning import provision

    await provision(db, config)
    service = TicketService.from_config(config)
    scanner = DueScanner(db, service, Notifier(config, service.composer))
    broken = await new_ticket(db, service, title="Hello")
    fine = await new_ticket(db, service, title="Printer on fire")
    start = epoch()
    await set_clock(db, broken, response_time=start)
    await set_clock(db, fine, response_time=start)
    outcome = await scanner.run(now=start)
    assert outcome.fired == {("response", "escalated"): 2}
    assert not await notifications(db, broken)
    assert len(await notifications(db, fine)) == 2
    assert await history_kinds(db, broken, "Escalation") == ["EscalationResponseTimeStart"]
    assert await history_kinds(db, broken, "Misc") == ["Misc"]
    clock = await clock_row(db, broken)
    assert clock is not None and clock["response_stage"] == 2
