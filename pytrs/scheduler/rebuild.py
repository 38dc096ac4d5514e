"""The rebuild job: recompute the open tickets' escalation clocks after a change of targets.

Place in the flow: a change of queue targets, SLAs or business calendars (provisioning at
start, `pytrs` commands, the web view) bumps the ESCALATION generation
(`schema.generations`) in its own transaction; the scheduler's clock runs this job every
interval, and when that generation is newer than the one recorded in `system_data` it
recomputes every open ticket through `tickets.escalation_index.rebuild`, in chunks of
`chunk_size` ids per transaction (each chunk's tickets locked first, as every writer of a
clock row does), then records the generation.

One daemon rebuilds at a time (a PostgreSQL session lock; SQLite serialises writers anyway).
A daemon killed mid-rebuild has recorded nothing, and its lock went with its connection: the
next run of any daemon starts again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import escalation_due
from pytrs.schema.database import Database
from pytrs.tickets.escalation_index import rebuild as recompute_tickets

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
Recompute = Callable[[AsyncConnection, Sequence[int], int], Awaitable[int]]


class EscalationRebuild:
    """Built once per scheduler; `run` is one check (and, when needed, one rebuild)."""

    def __init__(
        self,
        db: Database,
        *,
        chunk_size: int = CHUNK_SIZE,
        recompute: Recompute = recompute_tickets,
    ) -> None:
        self.db = db
        self.chunk_size = chunk_size
        self.recompute = recompute

    async def run(self, now: int | None = None) -> int | None:
        """Rebuild if the targets changed since the last rebuild; the number of tickets whose
        clocks changed, or None when there was nothing to do (or another daemon does it)."""
        async with self.db.connect() as conn:
            current, done = await escalation_due.generation_state(conn)
        if current <= done:
            return None
        async with escalation_due.rebuild_lock(self.db) as mine:
            return await self._rebuild(now) if mine else None

    async def _rebuild(self, now: int | None) -> int | None:
        async with self.db.connect() as conn:
            # Another daemon may have finished while we waited for the lock.
            current, done = await escalation_due.generation_state(conn)
        if current <= done:
            return None
        started = time.monotonic()
        after, tickets, changed = 0, 0, 0
        while True:
            at = int(time.time()) if now is None else now
            async with self.db.transaction() as conn:
                ids = await escalation_due.lock_open_tickets(conn, after, self.chunk_size)
                if ids:
                    changed += await self.recompute(conn, ids, at)
            tickets += len(ids)
            if len(ids) < self.chunk_size:
                break
            after = ids[-1]
        async with self.db.transaction() as conn:
            await escalation_due.record_rebuilt(conn, current)
        log.info(
            "escalation clocks rebuilt for generation %d: %d open ticket(s), %d changed, %.1f s",
            current, tickets, changed, time.monotonic() - started,
        )  # fmt: skip
        return changed
