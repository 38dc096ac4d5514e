"""The escalation index through the real ticket service and the real mail path: every change
that moves a deadline recomputes the ticket's `escalation_*` columns and its clock row in the
same transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, insert, select, update

from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.schema import generations, inbox_repo
from pytrs.schema.tables import (
    article,
    business_calendar,
    queue,
    sla,
    ticket,
    ticket_escalation,
)
from pytrs.tickets import Actor, ArticleInput, TicketUpdate, escalation_index
from pytrs.tickets.errors import InvalidChange
from pytrs.tickets.escalation import ESCALATED, WARNED
from pytrs.tickets.rows import epoch
from pytrs.vocabulary.inbox import InboxItem

from ..helpers import count, history, make_mail, tickets
from .conftest import CUSTOMER, Desk

MINUTE, HOUR = 60, 3600
SUPPORT = {"first_response_time": 60, "first_response_notify": 50, "update_time": 120,
           "update_notify": 0, "solution_time": 480, "solution_notify": 80}  # fmt: skip


async def set_queue(desk: Desk, name: str, **targets: Any) -> None:
    """Queue targets as provisioning writes them (with the ESCALATION generation bumped)."""
    async with desk.db.transaction() as conn:
        await conn.execute(update(queue).where(queue.c.name == name).values(**targets))
        await generations.bump(conn, generations.ESCALATION)


async def add_sla(desk: Desk, name: str, **targets: Any) -> int:
    now = datetime.now(UTC).replace(tzinfo=None)
    async with desk.db.transaction() as conn:
        found = await conn.execute(
            insert(sla).returning(sla.c.id),
            {"name": name, "valid_id": 1, "create_time": now, "create_by": 1,
             "change_time": now, "change_by": 1, **targets},
        )  # fmt: skip
        await generations.bump(conn, generations.ESCALATION)
        return int(found.scalar_one())


async def clocks(desk: Desk, ticket_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the ticket's columns with `created`, its clock row or None)."""
    async with desk.db.connect() as conn:
        row = (await conn.execute(select(ticket).where(ticket.c.id == ticket_id))).one()
        clock = (
            await conn.execute(
                select(ticket_escalation).where(ticket_escalation.c.ticket_id == ticket_id)
            )
        ).first()
    columns = {k: getattr(row, k) for k in ("escalation_time", "escalation_response_time",
                                            "escalation_update_time", "escalation_solution_time",
                                            "until_time", "sla_id")}  # fmt: skip
    columns["created"] = epoch(row.create_time)
    return columns, (clock._asdict() if clock is not None else None)


def deadlines(columns: dict[str, Any]) -> list[int]:
    """Response, update and solution deadline columns."""
    return [columns[f"escalation_{kind}_time"] for kind in ("response", "update", "solution")]


async def last_article_time(desk: Desk, ticket_id: int) -> int:
    async with desk.db.connect() as conn:
        found = await conn.scalar(
            select(func.max(article.c.create_time)).where(article.c.ticket_id == ticket_id)
        )
    return epoch(found)


async def backdate_articles(desk: Desk, ticket_id: int) -> None:
    """The ticket's articles three hours older, so that the next one's moment differs."""
    async with desk.db.transaction() as conn:
        rows = await conn.execute(
            select(article.c.id, article.c.create_time).where(article.c.ticket_id == ticket_id)
        )
        for r in list(rows):
            await conn.execute(
                update(article)
                .where(article.c.id == r.id)
                .values(create_time=r.create_time - timedelta(hours=3))
            )


async def set_stage(desk: Desk, ticket_id: int, **stages: int) -> None:
    """Stages as the scheduler leaves them after firing."""
    async with desk.db.transaction() as conn:
        await conn.execute(
            update(ticket_escalation)
            .where(ticket_escalation.c.ticket_id == ticket_id)
            .values(**stages)
        )


async def change(desk: Desk, ticket_id: int, **wanted: Any) -> None:
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.update(conn, ticket_id, TicketUpdate(**wanted), actor=jdoe)


async def agent_article(desk: Desk, ticket_id: int, *, visible: bool) -> None:
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        if visible:
            content = ArticleInput(sender="agent", visible=True, from_="jdoe", subject="Re",
                                   body="On our way.", history_kind="SendAnswer",
                                   history_name="%%alice@customer.example")  # fmt: skip
            await desk.service.add_article(conn, ticket_id, content, actor=jdoe)
        else:
            await desk.service.note(conn, ticket_id, actor=jdoe, body="internal")


async def customer_article(desk: Desk, ticket_id: int) -> None:
    async with desk.db.transaction() as conn:
        content = ArticleInput(sender="customer", from_=CUSTOMER, subject="Still?", body="?")
        await desk.service.add_article(conn, ticket_id, content, actor=Actor.SYSTEM)


async def test_no_targets_no_clocks(desk: Desk) -> None:
    ticket_id, _ = await desk.ticket()
    columns, clock = await clocks(desk, ticket_id)
    assert clock is None
    assert columns["escalation_time"] == columns["escalation_response_time"] == 0
    await change(desk, ticket_id, state="open")
    assert await count(desk.db, ticket_escalation) == 0


async def test_new_ticket_gets_its_deadlines(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    ticket_id, _ = await desk.ticket()
    columns, clock = await clocks(desk, ticket_id)
    t0 = columns["created"]
    assert columns["escalation_response_time"] == t0 + HOUR
    assert columns["escalation_update_time"] == t0 + 2 * HOUR
    assert columns["escalation_solution_time"] == t0 + 8 * HOUR
    assert columns["escalation_time"] == t0 + HOUR
    assert clock is not None
    assert clock["response_notify"] == t0 + 30 * MINUTE
    assert clock["update_notify"] == 0  # no warning asked for
    assert clock["solution_notify"] == t0 + 8 * HOUR * 80 // 100
    assert clock["next_due"] == t0 + 30 * MINUTE
    assert clock["response_stage"] == clock["pending_stage"] == 0


async def test_agent_answer_meets_first_response_and_a_note_does_not(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    ticket_id, _ = await desk.ticket()
    await agent_article(desk, ticket_id, visible=False)
    columns, _ = await clocks(desk, ticket_id)
    assert columns["escalation_response_time"] == columns["created"] + HOUR
    await set_stage(desk, ticket_id, response_stage=ESCALATED)
    await agent_article(desk, ticket_id, visible=True)
    columns, clock = await clocks(desk, ticket_id)
    answered = await last_article_time(desk, ticket_id)
    assert columns["escalation_response_time"] == 0
    # the update clock restarts at the agent's answer
    assert columns["escalation_update_time"] == answered + 2 * HOUR
    assert columns["escalation_time"] == min(answered + 2 * HOUR, columns["created"] + 8 * HOUR)
    assert clock is not None and clock["response_time"] == 0
    kinds = [kind for kind, _ in await history(desk.db, ticket_id)]
    assert kinds.count("EscalationResponseTimeStop") == 1


async def test_customer_follow_up_restarts_update_from_the_oldest_of_its_run(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    ticket_id, _ = await desk.ticket()
    await agent_article(desk, ticket_id, visible=True)
    await backdate_articles(desk, ticket_id)
    await customer_article(desk, ticket_id)
    first = await last_article_time(desk, ticket_id)
    columns, _ = await clocks(desk, ticket_id)
    assert columns["escalation_update_time"] == first + 2 * HOUR
    await customer_article(desk, ticket_id)  # same run: the anchor stays at its oldest
    assert (await clocks(desk, ticket_id))[0]["escalation_update_time"] == first + 2 * HOUR


async def test_pending_pauses_update_and_sets_the_pending_clock(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    ticket_id, _ = await desk.ticket()
    until = 1_900_000_000
    with_no_time = TicketUpdate(state="pending reminder")
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        try:
            await desk.service.update(conn, ticket_id, with_no_time, actor=jdoe)
        except InvalidChange as exc:
            assert "needs a pending time" in str(exc)
        else:
            raise AssertionError("a pending state without a pending time was accepted")
    await change(desk, ticket_id, state="pending reminder", pending_until=until)
    columns, clock = await clocks(desk, ticket_id)
    assert columns["escalation_update_time"] == 0
    assert columns["escalation_response_time"] == columns["created"] + HOUR
    assert columns["until_time"] == until
    assert clock is not None and (clock["pending_time"], clock["pending_stage"]) == (until, 0)
    names = await history(desk.db, ticket_id)
    assert names[-1] == ("SetPendingTime", "%%2030-03-17 17:46:40")
    await set_stage(desk, ticket_id, pending_stage=ESCALATED)
    await change(desk, ticket_id, pending_until=until + HOUR)  # a new time fires again
    assert (await clocks(desk, ticket_id))[1]["pending_stage"] == 0  # type: ignore[index]
    # leaving the pending state forgets the pending time and restarts the update clock
    await change(desk, ticket_id, state="open")
    columns, clock = await clocks(desk, ticket_id)
    assert columns["until_time"] == 0 and columns["escalation_update_time"] != 0
    assert clock is not None and clock["pending_time"] == 0


async def test_pending_time_needs_a_pending_state(desk: Desk) -> None:
    ticket_id, _ = await desk.ticket()
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        try:
            await desk.service.update(conn, ticket_id, TicketUpdate(pending_until=5), actor=jdoe)
        except InvalidChange as exc:
            assert "only a pending state" in str(exc)
        else:
            raise AssertionError("a pending time on a new ticket was accepted")


async def test_pending_without_targets_still_gets_a_clock(desk: Desk) -> None:
    ticket_id, _ = await desk.ticket()
    await change(desk, ticket_id, state="pending auto close+", pending_until=1_900_000_000)
    columns, clock = await clocks(desk, ticket_id)
    assert columns["escalation_time"] == 0
    assert clock is not None and clock["next_due"] == 1_900_000_000
    await change(desk, ticket_id, state="closed successful")
    assert (await clocks(desk, ticket_id))[1] is None


async def test_close_clears_all_and_reopen_keeps_solution_zero(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    ticket_id, _ = await desk.ticket()
    await set_stage(desk, ticket_id, solution_stage=ESCALATED, response_stage=WARNED)
    await change(desk, ticket_id, state="closed successful")
    columns, clock = await clocks(desk, ticket_id)
    assert clock is None
    assert columns["escalation_time"] == 0 and deadlines(columns) == [0, 0, 0]
    kinds = [kind for kind, _ in await history(desk.db, ticket_id)]
    assert "EscalationSolutionTimeStop" in kinds and "EscalationResponseTimeStop" not in kinds
    await change(desk, ticket_id, state="open")
    columns, clock = await clocks(desk, ticket_id)
    assert columns["escalation_solution_time"] == 0  # it was closed once
    assert columns["escalation_response_time"] == columns["created"] + HOUR
    assert clock is not None and clock["response_stage"] == 0  # a new cycle


async def test_queue_move_and_sla_switch_targets(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    await set_queue(desk, "Sales", first_response_time=15)
    gold = await add_sla(desk, "Gold", first_response_time=5, solution_time=30)
    ticket_id, _ = await desk.ticket()
    await change(desk, ticket_id, queue="Sales")
    columns, _ = await clocks(desk, ticket_id)
    t0 = columns["created"]
    assert deadlines(columns) == [t0 + 15 * MINUTE, 0, 0]
    await change(desk, ticket_id, sla="Gold")
    columns, _ = await clocks(desk, ticket_id)
    assert columns["sla_id"] == gold
    assert deadlines(columns) == [t0 + 5 * MINUTE, 0, t0 + 30 * MINUTE]
    assert (await history(desk.db, ticket_id))[-1] == ("SLAUpdate", f"%%Gold%%{gold}")
    await change(desk, ticket_id, sla="")
    columns, _ = await clocks(desk, ticket_id)
    assert columns["sla_id"] is None and columns["escalation_response_time"] == t0 + 15 * MINUTE
    assert (await history(desk.db, ticket_id))[-1] == ("SLAUpdate", "%%%%")


async def test_rebuild_after_a_target_change(desk: Desk) -> None:
    first, _ = await desk.ticket("One")
    second, _ = await desk.ticket("Two")
    await set_queue(desk, "Support", first_response_time=10)
    async with desk.db.transaction() as conn:
        assert await escalation_index.rebuild(conn, [first, second], 1_800_000_000) == 2
    columns, clock = await clocks(desk, first)
    assert columns["escalation_response_time"] == columns["created"] + 10 * MINUTE
    assert clock is not None and clock["next_due"] == columns["created"] + 10 * MINUTE
    async with desk.db.transaction() as conn:
        assert await escalation_index.rebuild(conn, [first, second], 1_800_000_000) == 0
    await set_stage(desk, first, response_stage=ESCALATED)
    await set_queue(desk, "Support", first_response_time=0)
    async with desk.db.transaction() as conn:
        assert await escalation_index.rebuild(conn, [first, second], 1_800_000_000) == 2
    assert await count(desk.db, ticket_escalation) == 0
    assert (await history(desk.db, first))[-1] == (
        "EscalationResponseTimeStop",
        "%%" + _utc(columns["created"] + 10 * MINUTE),
    )


def _utc(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def test_mail_path_new_ticket_and_follow_up(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer on fire"))
    [found] = await tickets(desk.db)
    columns, clock = await clocks(desk, found["id"])
    assert columns["escalation_response_time"] == columns["created"] + HOUR
    assert clock is not None and clock["next_due"] == columns["created"] + 30 * MINUTE
    await agent_article(desk, found["id"], visible=True)
    await backdate_articles(desk, found["id"])
    await desk.deliver(make_mail(sender=CUSTOMER, subject=f"Re: [Ticket#{found['tn']}] more"))
    follow_up = await last_article_time(desk, found["id"])
    columns, _ = await clocks(desk, found["id"])
    assert columns["escalation_update_time"] == follow_up + 2 * HOUR
    assert columns["escalation_response_time"] == 0


async def deliver_trusted(desk: Desk, raw: bytes) -> None:
    """A mail from a trusted source (its control headers count), routed by one worker."""
    async with desk.db.transaction() as conn:
        await inbox_repo.store(
            conn, [InboxItem("pipe", raw, recipient="support@example.com", trusted=True)]
        )
    addresses = AddressBook()
    await addresses.reload(desk.db)
    await PostmasterWorker(desk.config, desk.db, addresses).drain()


async def test_mail_headers_set_the_sla_and_the_pending_time(desk: Desk) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    gold = await add_sla(desk, "Gold", first_response_time=5)
    await deliver_trusted(desk, make_mail(
        sender=CUSTOMER, subject="Printer on fire",
        extra={"X-OTRS-SLA": "Gold", "X-OTRS-State": "pending reminder",
               "X-OTRS-State-PendingTime": "2030-03-17 17:46:40"},
    ))  # fmt: skip
    [found] = await tickets(desk.db)
    columns, clock = await clocks(desk, found["id"])
    assert (columns["sla_id"], columns["until_time"]) == (gold, 1_900_000_000)
    assert deadlines(columns) == [columns["created"] + 5 * MINUTE, 0, 0]
    assert clock is not None and clock["pending_time"] == 1_900_000_000
    await deliver_trusted(desk, make_mail(
        sender=CUSTOMER, subject=f"Re: [Ticket#{found['tn']}] more",
        extra={"X-OTRS-FollowUp-SLA": "", "X-PyTRS-FollowUp-State": "pending auto close+",
               "X-PyTRS-FollowUp-State-PendingTime": "+2h"},
    ))  # fmt: skip
    follow_up = await last_article_time(desk, found["id"])
    columns, clock = await clocks(desk, found["id"])
    # an empty header changes nothing (as in Znuny): the SLA stays
    assert columns["sla_id"] == gold
    assert columns["until_time"] == follow_up + 2 * HOUR
    assert clock is not None and clock["pending_time"] == follow_up + 2 * HOUR
    kinds = [kind for kind, _ in await history(desk.db, found["id"])]
    assert kinds[-3:] == ["StateUpdate", "SetPendingTime", "FollowUp"]
    await deliver_trusted(desk, make_mail(
        sender=CUSTOMER, subject=f"Re: [Ticket#{found['tn']}] again",
        extra={"X-PyTRS-FollowUp-SLA": "Platinum", "X-PyTRS-FollowUp-State": "open"},
    ))  # fmt: skip
    columns, clock = await clocks(desk, found["id"])
    assert columns["sla_id"] == gold and columns["until_time"] == 0
    assert clock is not None and clock["pending_time"] == 0


OFFICE = {
    "timezone": "Europe/Berlin",
    "hours": {day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [],
}


async def set_calendar(desk: Desk, name: str, definition: str) -> None:
    async with desk.db.transaction() as conn:
        await conn.execute(
            insert(business_calendar),
            {"name": name, "definition": definition, "change_time": datetime(2027, 1, 1)},
        )
        await generations.bump(conn, generations.ESCALATION)


async def test_deadlines_count_working_time_of_the_queue_calendar(desk: Desk) -> None:
    """REFERENCE §11's business calendar: Friday 16:30 in Berlin plus a 4-hour first
    response is Monday 11:30 (half an hour on Friday, lunch kept free)."""
    await set_calendar(desk, "office", json.dumps(OFFICE))
    await set_queue(desk, "Support", calendar_name="office", first_response_time=240,
                    first_response_notify=75)  # fmt: skip
    ticket_id, _ = await desk.ticket()
    friday = datetime(2027, 1, 15, 15, 30)  # 16:30 in Berlin, naive UTC as stored
    async with desk.db.transaction() as conn:
        await conn.execute(
            update(ticket).where(ticket.c.id == ticket_id).values(create_time=friday)
        )
        await escalation_index.rebuild(conn, [ticket_id], 1_800_000_000)
    columns, clock = await clocks(desk, ticket_id)
    assert columns["escalation_response_time"] == _epoch(datetime(2027, 1, 18, 10, 30))
    assert clock is not None
    assert clock["response_notify"] == _epoch(datetime(2027, 1, 18, 9, 30))  # 3 h in: 10:30


async def test_an_unusable_calendar_counts_round_the_clock(desk: Desk) -> None:
    await set_calendar(desk, "broken", json.dumps({"timezone": "Mars/Olympus", "hours": {}}))
    await set_queue(desk, "Support", calendar_name="broken", first_response_time=60)
    ticket_id, _ = await desk.ticket()
    columns, _ = await clocks(desk, ticket_id)
    assert columns["escalation_response_time"] == columns["created"] + HOUR


def _epoch(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


async def test_with_escalations_off_the_recompute_costs_one_query(desk: Desk) -> None:
    ticket_id, _ = await desk.ticket()
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    jdoe = await desk.agent()
    engine = desk.db.engine.sync_engine
    async with desk.db.transaction() as conn:
        ticket_row = await desk.service.get(conn, ticket_id)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            found = await escalation_index.recompute(conn, [ticket_row.id], {})
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        await desk.service.note(conn, ticket_id, actor=jdoe, body="still off")
    assert found.columns == {} and found.history == []
    assert len(statements) == 1


async def test_an_answer_by_mail_meets_first_response_and_a_merge_stops_the_source(
    desk: Desk,
) -> None:
    await set_queue(desk, "Support", **SUPPORT)
    answered, _ = await desk.ticket("Answered")
    merged, _ = await desk.ticket("Merged away")
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.reply(conn, answered, actor=jdoe, body="A technician is on the way.")
    columns, _ = await clocks(desk, answered)
    assert columns["escalation_response_time"] == 0
    await set_stage(desk, merged, response_stage=ESCALATED)
    async with desk.db.transaction() as conn:
        await desk.service.merge(conn, merged, into=answered, actor=jdoe)
    columns, clock = await clocks(desk, merged)
    assert clock is None and columns["escalation_time"] == 0
    assert (await history(desk.db, merged))[-1][0] == "EscalationResponseTimeStop"
