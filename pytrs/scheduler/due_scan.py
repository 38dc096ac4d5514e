"""The due scan: fire every escalation and pending event whose time has come, each once.

Place in the flow: the scheduler's clock (`scheduler.clock`) runs `DueScanner.run` every
`[scheduler] interval_seconds`. One run claims due tickets in batches, each batch in ONE
transaction:

1. claim up to `batch_size` tickets whose clock row is due (`schema.escalation_due`: the index
   on `next_due`, `SKIP LOCKED` on PostgreSQL), and read their clock rows again under the lock;
2. work out the events (`tickets.escalation.due_events`) and write the advanced clocks
   (`fired`, new `next_due`) FIRST, so that whatever follows can never fire them again;
3. per event: its history entry (Znuny's `Escalation…TimeNotifyBefore` / `…TimeStart`), the
   notifications to agents (`scheduler.notifications`, stored in the outbox), and for the
   pending time of a `pending auto close±` ticket the state change through the ticket service
   (whose flush recomputes the clock);
4. commit, then wake the outbox sender.

A daemon killed before the commit leaves the batch as it was: the next scan (of any daemon)
fires it. Nothing is fired twice, because the clock row and the outbox rows commit together.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.calendars import WorkingCalendar, always
from pytrs.metrics import registry as metrics
from pytrs.scheduler.notifications import Calendar, Notice, NotificationFailed, Notifier
from pytrs.schema import escalation_due, ticket_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.escalation_due import Agent, Claimed
from pytrs.schema.ticket_repo import TicketSummary
from pytrs.tickets import history
from pytrs.tickets.errors import TicketError
from pytrs.tickets.escalation import Clock, DueEvent, due_events, fired
from pytrs.tickets.escalation import history_type as escalation_history_type
from pytrs.tickets.escalation_index import load_policy
from pytrs.tickets.model import Actor, HistoryEntry, TicketUpdate
from pytrs.tickets.outgoing import Outgoing, store_outgoing
from pytrs.tickets.service import TicketService
from pytrs.tickets.writes import Writes

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Znuny's Ticket::StateAfterPending: the state a `pending auto` ticket gets at its time.
STATE_AFTER_PENDING = {
    "pending auto close+": "closed successful",
    "pending auto close-": "closed unsuccessful",
}


@dataclass(slots=True)
class ScanOutcome:
    """What one run (or one batch) did, for logs, metrics and tests."""

    claimed: int = 0
    fired: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, event) → count
    queued: int = 0  # outbox rows
    closed: int = 0  # tickets auto-closed

    def add(self, other: ScanOutcome) -> None:
        self.claimed += other.claimed
        self.fired.update(other.fired)
        self.queued += other.queued
        self.closed += other.closed


class DueScanner:
    """Built once per scheduler; `run` is one due scan."""

    def __init__(
        self, db: Database, service: TicketService, notifier: Notifier, *,
        timezone: str = "UTC", batch_size: int = BATCH_SIZE,
        on_outbox: Callable[[int], None] | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.service = service
        self.notifier = notifier
        self.timezone = timezone
        self.batch_size = batch_size
        # Told after each commit that queued n outbox rows (the daemon wakes its sender).
        self.on_outbox = on_outbox

    async def run(self, now: int | None = None) -> ScanOutcome:
        """Fire everything due at `now` (default: the current time), batch after batch until
        nothing is due that another scanner does not hold."""
        started = time.monotonic()
        total = ScanOutcome()
        seen: set[int] = set()
        while True:
            at = int(time.time()) if now is None else now
            async with self.db.transaction() as conn:
                batch, ids = await self.scan_batch(conn, at)
            total.add(batch)
            for (kind, event), count in batch.fired.items():
                metrics.ESCALATION_EVENTS.labels(kind, event).inc(count)
            if batch.queued and self.on_outbox is not None:
                self.on_outbox(batch.queued)
            # A short batch means nothing else is due (or another scanner holds it); the same
            # tickets claimed again would mean a clock that does not advance: stop, not spin.
            if len(ids) < self.batch_size or ids <= seen:
                break
            seen |= ids
        metrics.SCHEDULER_SCAN_DURATION.observe(time.monotonic() - started)
        if total.fired:
            fired_text = ", ".join(f"{n} {k} {e}" for (k, e), n in sorted(total.fired.items()))
            log.info(
                "due scan: %s; %d notification(s) queued, %d ticket(s) closed",
                fired_text, total.queued, total.closed,
            )  # fmt: skip
        return total

    async def scan_batch(self, conn: AsyncConnection, now: int) -> tuple[ScanOutcome, set[int]]:
        """One batch in the caller's transaction; (what it did, the ids it claimed)."""
        ids = await escalation_due.claim_due(conn, now, self.batch_size)
        claimed = await escalation_due.load_claimed(conn, ids)
        due: list[tuple[Claimed, list[DueEvent]]] = []
        advanced = []
        for c in claimed:
            clock = Clock(c.ticket_id, **c.clock)
            events = due_events(clock, now)
            after = fired(clock, events)
            advanced.append({"ticket_id": c.ticket_id, "next_due": after.next_due(),
                             **_clock_values(after)})  # fmt: skip
            if events:
                due.append((c, events))
        # The advanced clocks first: whatever follows in this transaction cannot fire again.
        await escalation_due.store_clocks(conn, advanced)
        outcome = ScanOutcome(claimed=len(ids))
        if due:
            await self._dispatch(conn, due, now, outcome)
        return outcome, set(ids)

    async def _dispatch(
        self, conn: AsyncConnection, due: Sequence[tuple[Claimed, list[DueEvent]]], now: int,
        outcome: ScanOutcome,
    ) -> None:  # fmt: skip
        tickets = await ticket_repo.ticket_summaries(
            conn, [c.ticket_id for c, _ in due], customer_side=False
        )
        recipients = await _recipients(conn, tickets.values())
        calendar_for = await self._calendars(conn)
        writes = Writes(utcnow())
        outgoing: list[Outgoing] = []
        closing: list[tuple[int, str]] = []
        for claimed, events in due:
            ticket = tickets[claimed.ticket_id]
            calendar = calendar_for(claimed.queue_id, claimed.sla_id)
            for event in events:
                outcome.fired[(event.kind, event.event)] += 1
                if event.kind == "pending":
                    if ticket.state_type == "pending auto":
                        closing.append((ticket.id, STATE_AFTER_PENDING.get(ticket.state, "")))
                        continue
                    if ticket.state_type != "pending reminder":
                        continue  # left the pending state in this very instant: nothing to say
                elif ticket.state_type in ("closed", "removed", "merged"):
                    continue
                else:
                    kind = escalation_history_type(event.kind, event.event)
                    writes.history([_entry(ticket, *history.escalation(kind, event.deadline))])
                notice = Notice(event.kind, event.event, event.deadline)
                try:
                    sent, problems = self.notifier.compose(
                        ticket, notice, calendar=calendar, now=now,
                        recipients=recipients[ticket.id],
                    )  # fmt: skip
                except NotificationFailed as exc:
                    sent, problems = [], [f"notification not sent: {exc}"]
                outgoing += sent
                for problem in problems:
                    # Recorded on the ticket: the event fired, and who was not told about it.
                    log.warning("ticket %s: %s %s: %s", ticket.tn, event.kind, event.event,
                                problem)  # fmt: skip
                    text = f"{event.kind} {event.event}: {problem}"
                    writes.history([_entry(ticket, *history.misc(text))])
        await store_outgoing(conn, outgoing, writes)
        await writes.flush(conn)
        outcome.queued += len(outgoing)
        for ticket_id, state in closing:
            outcome.closed += await self._close(conn, tickets[ticket_id], state)

    async def _close(self, conn: AsyncConnection, ticket: TicketSummary, state: str) -> int:
        """The pending time of a `pending auto` ticket has come: close it as its state says."""
        if not state:
            log.warning("ticket %s: no state follows %r (pending auto)", ticket.tn, ticket.state)
            return 0
        try:
            changes = await self.service.update(
                conn, ticket.id, TicketUpdate(state=state), actor=Actor.SYSTEM
            )
        except TicketError as exc:  # refused before anything was written
            log.warning("ticket %s: could not close at its pending time: %s", ticket.tn, exc)
            writes = Writes(utcnow())
            writes.history([_entry(ticket, *history.misc(f"auto close failed: {exc}"))])
            await writes.flush(conn)
            return 0
        return 1 if changes else 0

    async def _calendars(self, conn: AsyncConnection) -> Callable[[int, int | None], Calendar]:
        """The business calendar of a ticket by queue and SLA, as the escalation index
        counts it (the policy is cached per ESCALATION generation). A ticket without a
        calendar of its own counts round the clock and is shown in `[scheduler] timezone`."""
        policy = await load_policy(conn)
        default = always(self.timezone)

        def calendar_for(queue_id: int, sla_id: int | None) -> Calendar:
            found = policy.calendar_for(queue_id, sla_id)
            if isinstance(found, WorkingCalendar) and found is not policy.default:
                return found
            return default

        return calendar_for


async def _recipients(
    conn: AsyncConnection, tickets: Collection[TicketSummary]
) -> dict[int, list[Agent]]:
    """Per ticket: its owner when that is a real agent with an address, else the agents with
    `rw` on its queue."""
    owners = await escalation_due.owners(conn, {t.owner_id for t in tickets})
    unowned = {t.queue_id for t in tickets if t.owner_id not in owners}
    writers = await escalation_due.queue_writers(conn, unowned)
    return {
        t.id: [owners[t.owner_id]] if t.owner_id in owners else writers.get(t.queue_id, [])
        for t in tickets
    }


def _clock_values(clock: Clock) -> dict[str, int]:
    return {c: int(getattr(clock, c)) for c in escalation_due.CLOCK_COLUMNS}


def _entry(t: TicketSummary, kind: str, name: str) -> HistoryEntry:
    return HistoryEntry(
        kind, name, t.id, t.queue_id, t.state_id, t.owner_id, t.priority_id, t.type_id
    )
