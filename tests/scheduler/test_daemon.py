"""The scheduler role inside a running daemon: its clock runs the due scan every interval,
the notifications reach the relay through the outbox sender, a failing job is counted and
tried again, and shutdown is orderly."""

from __future__ import annotations

import asyncio
import email
import logging
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import select, text

from pytrs.metrics import registry as metrics
from pytrs.scheduler.clock import Scheduler
from pytrs.scheduler.rebuild import EscalationRebuild
from pytrs.schema import escalation_due
from pytrs.schema.database import Database
from pytrs.schema.tables import ticket
from pytrs.tickets.service import TicketService

from ..conftest import engine_name, wait_until
from ..servers.relay import RecordingRelay
from .conftest import (
    LOOP_SECRET,
    clock_row,
    epoch,
    history_kinds,
    new_ticket,
    scheduler_config,
    set_targets,
)
from .conftest import set_clock as set_clock_row


async def _rebuilt(db: Database) -> bool:
    async with db.connect() as conn:
        current, done = await escalation_due.generation_state(conn)
    return current == done


def _daemon_config(database: dict[str, Any], relay: RecordingRelay) -> Any:
    return scheduler_config(
        database,
        outbound={
            "relay": relay.address, "loop_secret": LOOP_SECRET, "poll_interval_seconds": 0.05,
            "retry_backoff_seconds": 0.05, "timeout_seconds": 5.0,
        },
        scheduler={"interval_seconds": 0.2},
    )  # fmt: skip


async def test_a_running_daemon_fires_a_due_clock_and_mails_the_agents(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="pytrs")
    config = _daemon_config(database_settings, relay)
    daemon = await start_daemon(config)
    assert "scheduler every 0.2 s" in caplog.text
    # The clock below is made by hand: first let the rebuild the start's provisioning may
    # have asked for be done, or it would recompute the clock from the queue's targets.
    await wait_until(lambda: _rebuilt(db), within=10)
    service = TicketService.from_config(daemon.daemon.config)
    ticket_id = await new_ticket(db, service)
    await set_clock_row(db, ticket_id, response_time=epoch() - 1)
    received = await relay.wait_for(2, within=10)
    subjects = {
        str(email.message_from_bytes(r.data, policy=default_policy)["Subject"]) for r in received
    }
    assert all("Escalated (first response): Printer on fire" in s for s in subjects)
    assert await history_kinds(db, ticket_id, "Escalation") == ["EscalationResponseTimeStart"]
    await asyncio.sleep(0.6)  # three more scans: nothing fires twice
    assert len(relay.received) == 2
    assert await daemon.stop() == 0


async def test_a_failing_job_is_logged_counted_and_retried(
    database_settings: dict[str, Any], db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = scheduler_config(database_settings, scheduler={"interval_seconds": 0.1})
    from pytrs.provisioning import provision

    await provision(db, config)
    await EscalationRebuild(db).run()  # none left for the scheduler: the clock is by hand
    service = TicketService.from_config(config)
    ticket_id = await new_ticket(db, service, owner="jdoe")
    await set_clock_row(db, ticket_id, update_time=epoch() - 1)
    errors = metrics.SCHEDULER_JOB_ERRORS.labels("due-scan")
    before = errors._value.get()
    # A database that cannot answer the scan: the table is away for a moment.
    async with db.transaction() as conn:
        await conn.execute(text("ALTER TABLE ticket_escalation RENAME TO ticket_escalation_away"))
    scheduler = Scheduler(config, db)
    running = asyncio.create_task(scheduler.run())
    try:

        async def failed_twice() -> bool:
            return bool(errors._value.get() >= before + 2)

        await wait_until(failed_twice, within=10)
        assert "scheduler job due-scan failed" in caplog.text
        async with db.transaction() as conn:
            await conn.execute(
                text("ALTER TABLE ticket_escalation_away RENAME TO ticket_escalation")
            )

        async def fired() -> bool:
            row = await clock_row(db, ticket_id)
            return row is not None and row["update_stage"] == 2

        await wait_until(fired, within=10)
    finally:
        scheduler.stop()
        await asyncio.wait_for(running, 15)
    assert await history_kinds(db, ticket_id, "Escalation") == ["EscalationUpdateTimeStart"]


@pytest.mark.skipif(engine_name() != "postgresql", reason="row locks: PostgreSQL")
async def test_a_job_still_running_at_shutdown_rolls_back_and_is_done_next_time(
    provisioned: Database, config: Any, service: TicketService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pytrs")
    ticket_id = await new_ticket(provisioned, service)
    await set_targets(provisioned, "Support", response=120)  # a rebuild is due
    async with provisioned.transaction() as blocker:
        # Another writer holds the ticket: the rebuild waits for it, and is running at stop.
        await blocker.execute(select(ticket.c.id).where(ticket.c.id == ticket_id).with_for_update())
        scheduler = Scheduler(config, provisioned, stop_grace=0.5)
        running = asyncio.create_task(scheduler.run())
        await asyncio.sleep(1.0)
        scheduler.stop()
        await asyncio.wait_for(running, 10)
    async with provisioned.connect() as conn:
        current, done = await escalation_due.generation_state(conn)
    assert "scheduler job escalation-rebuild cancelled at shutdown" in caplog.text
    assert current > done  # rolled back: nothing recorded
    assert await EscalationRebuild(provisioned).run() == 1


async def test_a_job_running_at_shutdown_gets_its_grace_before_any_cancel(
    provisioned: Database,
    config: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """APScheduler's own shutdown cancels the jobs it runs at once; the scheduler pauses it
    instead, lets the running job end within `stop_grace`, and shuts it down after."""
    caplog.set_level(logging.INFO, logger="pytrs")
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow_job() -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    scheduler = Scheduler(config, provisioned, stop_grace=5.0)
    monkeypatch.setattr(scheduler, "jobs", lambda: {"slow": slow_job})
    running = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(started.wait(), 10)
    scheduler.stop()
    await asyncio.wait_for(running, 10)
    assert finished.is_set()
    assert "cancelled at shutdown" not in caplog.text
