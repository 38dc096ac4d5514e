"""Several scanners on one database: each due event fires once, and a scanner killed with
SIGKILL in the middle of a batch loses nothing and sends nothing twice (the rows it had
claimed roll back, and another scanner fires them)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pytrs.schema.database import Database
from pytrs.schema.tables import outbox, ticket_history
from pytrs.tickets.service import TicketService
from pytrs.vocabulary import znuny

from ..conftest import engine_name
from .conftest import epoch, new_ticket, set_clock

ROOT = Path(__file__).resolve().parents[2]
TICKETS = 200


async def _due_tickets(db: Database, service: TicketService, start: int) -> list[int]:
    """TICKETS tickets owned by jdoe, each with two events due at `start`."""
    ids = []
    for _ in range(TICKETS):
        ticket_id = await new_ticket(db, service, owner="jdoe")
        await set_clock(db, ticket_id, response_time=start, solution_notify=start,
                        solution_time=start + 10_000)  # fmt: skip
        ids.append(ticket_id)
    return ids


async def _child(database: dict[str, Any], now: int, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.scheduler.scanner_child", json.dumps(database), str(now),
        mode, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _finish(process: asyncio.subprocess.Process) -> dict[str, Any]:
    """Let a waiting `run` child scan; what it fired."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    async with asyncio.timeout(60):
        line = await process.stdout.readline()
        await process.wait()
    assert process.returncode == 0, line
    return dict(json.loads(line))


async def _each_once(db: Database, ids: list[int]) -> None:
    """Every ticket has exactly one of each event, in its history and in the outbox."""
    wanted = {znuny.history_type_id(k): k for k in
              ("EscalationResponseTimeStart", "EscalationSolutionTimeNotifyBefore")}  # fmt: skip
    async with db.connect() as conn:
        rows = await conn.execute(
            select(ticket_history.c.ticket_id, ticket_history.c.history_type_id).where(
                ticket_history.c.history_type_id.in_(wanted)
            )
        )
        seen = Counter((r.ticket_id, wanted[r.history_type_id]) for r in rows)
        mails = Counter(
            (await conn.execute(select(outbox.c.ticket_id).where(outbox.c.kind == "notification")))
            .scalars()
            .all()
        )
        total = await conn.scalar(select(func.count()).select_from(outbox))
    assert set(seen.values()) == {1} and len(seen) == 2 * len(ids)
    assert set(mails) == set(ids) and set(mails.values()) == {2}
    assert total == 2 * len(ids)


async def test_two_scanners_fire_each_event_once(
    provisioned: Database, service: TicketService, database_settings: dict[str, Any]
) -> None:
    start = epoch()
    ids = await _due_tickets(provisioned, service, start)
    children = [await _child(database_settings, start, "run") for _ in range(2)]
    results = await asyncio.gather(*(_finish(c) for c in children))
    print("claimed per scanner:", [r["claimed"] for r in results])
    fired: Counter[str] = Counter()
    for result in results:
        fired.update(result["fired"])
    assert fired == {"response escalated": TICKETS, "solution notify_before": TICKETS}
    await _each_once(provisioned, ids)


async def test_a_scanner_killed_mid_batch_loses_nothing(
    provisioned: Database, service: TicketService, database_settings: dict[str, Any]
) -> None:
    start = epoch()
    ids = await _due_tickets(provisioned, service, start)
    holder = await _child(database_settings, start, "hold")
    assert holder.stdout is not None
    async with asyncio.timeout(60):
        assert (await holder.stdout.readline()).decode().split() == ["claimed", "50"]
    fired: Counter[str] = Counter()
    if engine_name() == "postgresql":
        # While the holder keeps its 50 tickets locked, another scanner does the rest.
        during = await _finish(await _child(database_settings, start, "run"))
        assert during["claimed"] == TICKETS - 50
        fired.update(during["fired"])
    holder.send_signal(signal.SIGKILL)
    await holder.wait()
    after = await _finish(await _child(database_settings, start, "run"))
    fired.update(after["fired"])
    assert fired == {"response escalated": TICKETS, "solution notify_before": TICKETS}
    await _each_once(provisioned, ids)
