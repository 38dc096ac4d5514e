"""Mail in, escalation mail out, through one running daemon on the wall clock (the one test
here that waits for real time; everything else uses explicit `now` values).

Queue Support: first response within 1 minute, warned at 50 %, 24/7; `[scheduler]
interval_seconds = 1`. Two customers write at once: nobody answers the first, so its
agents get the warning at ~30 s and the escalation at ~60 s; an agent answers the second at
once, which meets its first response: nothing is sent about it.
"""

from __future__ import annotations

import asyncio
import email
import time
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import select

from pytrs.schema.database import Database
from pytrs.schema.tables import ticket
from pytrs.tickets.service import TicketService

from ..conftest import wait_until
from ..helpers import make_mail, send
from ..servers.relay import Received, RecordingRelay
from .conftest import LOOP_SECRET, history_kinds, scheduler_config, set_targets

AGENT = "jdoe@agents.example"


def _subject(received: Received) -> str:
    return str(email.message_from_bytes(received.data, policy=default_policy)["Subject"])


def _to_agent(arrivals: list[tuple[float, Received]]) -> list[tuple[float, str]]:
    return [(at, _subject(r)) for at, r in arrivals if AGENT in r.rcpt_tos]


async def _watch(relay: RecordingRelay, arrivals: list[tuple[float, Received]]) -> None:
    """Note each mail the relay accepts with the (monotonic) time it arrived."""
    while True:
        await relay.wait_for(len(arrivals) + 1, within=3600)
        now = time.monotonic()
        arrivals.extend((now, r) for r in relay.received[len(arrivals) :])


async def test_warning_at_half_time_then_escalation_and_nothing_once_answered(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    config = scheduler_config(
        database_settings,
        outbound={"relay": relay.address, "loop_secret": LOOP_SECRET,
                  "poll_interval_seconds": 0.05, "retry_backoff_seconds": 0.05},
        agent_mail={"notify_new_ticket": False, "notify_follow_up": False},
        agents=[{"login": "jdoe", "email": AGENT, "queues": ["Support"]}],
        queues=[{"name": "Support", "first_response_minutes": 1, "notify_before_percent": 50},
                {"name": "Sales"}, {"name": "Billing"}],
        scheduler={"interval_seconds": 1},
    )  # fmt: skip
    daemon = await start_daemon(config)
    await set_targets(db, "Support", response=1, notify=50)  # as provisioning writes them
    arrivals: list[tuple[float, Received]] = []
    watcher = asyncio.create_task(_watch(relay, arrivals))
    try:
        started = time.monotonic()
        await send(daemon.port(), make_mail(subject="Printer on fire"))
        await send(daemon.port(), make_mail(subject="Coffee machine broken"))

        async def both() -> dict[str, int]:
            async with db.connect() as conn:
                found = dict((await conn.execute(select(ticket.c.title, ticket.c.id))).all())
            return found if len(found) == 2 else {}

        ids = await wait_until(both, within=15)
        service = TicketService.from_config(daemon.daemon.config)
        async with db.transaction() as conn:
            agent = await service.agent(conn, "jdoe")
            await service.reply(conn, ids["Coffee machine broken"], actor=agent, body="On it.")

        async def warned() -> list[tuple[float, str]]:
            return _to_agent(arrivals)

        [(at, subject)] = await wait_until(warned, within=45)
        assert "Escalation warning (first response): Printer on fire" in subject
        assert 25 <= at - started <= 40, at - started

        async def escalated() -> bool:
            return len(_to_agent(arrivals)) >= 2

        await wait_until(escalated, within=45)
        at, subject = _to_agent(arrivals)[1]
        assert "Escalated (first response): Printer on fire" in subject
        assert 55 <= at - started <= 70, at - started
        await asyncio.sleep(2)  # two more scans: nothing more, nothing about the answered one
        assert len(_to_agent(arrivals)) == 2
    finally:
        watcher.cancel()
    assert await history_kinds(db, ids["Printer on fire"], "Escalation") == [
        "EscalationResponseTimeNotifyBefore", "EscalationResponseTimeStart",
    ]  # fmt: skip
    assert await history_kinds(db, ids["Coffee machine broken"], "Escalation") == []
    assert (await history_kinds(db, ids["Printer on fire"])).count("SendAgentNotification") == 2
