"""The postmaster worker: inbox rows in, tickets and articles out.

One loop per worker: claim a batch of due inbox rows (a short transaction that counts the
attempt), parse them (pure, in a thread for big batches), look up every ticket they could belong
to, decide with `routing`, and apply all decisions plus the inbox outcomes in one transaction.
A message whose parse or routing raises is isolated: it is retried later with backoff and, after
`max_attempts`, quarantined with its error and raw bytes; a batch whose transaction fails is
re-run message by message so that one poison message cannot block the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.authentication.authenticity import AgentAuthenticator
from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.metrics import registry as metrics
from pytrs.postmaster.agents import identify_agents
from pytrs.postmaster.apply import apply_batch
from pytrs.postmaster.batch import ApplyContext, Planned
from pytrs.postmaster.changes import Lookups
from pytrs.postmaster.filter_rules import NO_RULES, current_rules
from pytrs.postmaster.planning import (
    Parsed,
    is_ignored,
    lookup_keys,
    name_placeholders,
    outside_references,
    plan_batch,
    split_waiting,
)
from pytrs.postmaster.routing_setup import RoutingSetup
from pytrs.responders.answers import Answering, Responder, Responses
from pytrs.responders.loop_protection import LoopPolicy
from pytrs.responders.responses import ResponseTable
from pytrs.responders.stored_responses import current_responses
from pytrs.routing.decision import Action, Policy
from pytrs.routing.subject import CleanOptions
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.runtime.big_messages import BIG_MESSAGE_BYTES, BigMessageSlots
from pytrs.runtime.waiting import wait_for_event
from pytrs.schema import inbox_repo, known_repo, ticket_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.inbox_repo import ClaimedMessage
from pytrs.schema.ticket_repo import QueueInfo
from pytrs.tickets.numbers import counter_for, new_numbers
from pytrs.tickets.outgoing import Outgoing, store_outgoing
from pytrs.tickets.writes import Writes

log = logging.getLogger(__name__)

# Parsing more than this many bytes in one go moves to a thread so SMTP stays responsive.
_THREAD_PARSE_BYTES = 256 * 1024
# How long a reply waits when its parent is still being processed by another worker.
REPLY_WAIT = timedelta(seconds=0.5)
# Longest wait for a fuller batch after a partial one (adds at most this to routing latency).
GATHER_SECONDS = 0.05
# How often an idle worker looks for claims left by a dead daemon of this host.
FREE_DEAD_CLAIMS_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker derives from the configuration, built whole before any worker uses it
    (at start, and on reload so that a template that does not compile changes nothing)."""

    config: Config
    responder: Responder | None
    authenticator: AgentAuthenticator
    routing: RoutingSetup

    @classmethod
    def build(cls, config: Config, name: str) -> WorkerSettings:
        """Raises ConfigError for unusable authentication settings or templates."""
        return cls(
            config, Responder.from_config(config, name), AgentAuthenticator(config),
            RoutingSetup.from_config(config),
        )  # fmt: skip


class PostmasterWorker:
    """Processes the inbox until stopped; `run_once()` processes one batch (used by tests)."""

    def __init__(
        self, config: Config, db: Database, addresses: AddressBook, *, name: str = "worker-1",
        on_outbox: Callable[[int], None] | None = None, big_messages: BigMessageSlots | None = None,
    ) -> None:  # fmt: skip
        """`on_outbox(n)` is told after each commit that queued `n` outbox rows (the daemon
        wakes its sender); a big claim waits for one of `big_messages` (shared with the
        gateway in the same process). Raises ConfigError for unusable authentication settings."""
        self.db = db
        self.addresses = addresses
        self.name = name
        self.on_outbox = on_outbox
        self.big_messages = big_messages
        self.responses: ResponseTable | None = None
        self.rules = NO_RULES
        self._apply(WorkerSettings.build(config, name))
        self._next: WorkerSettings | None = None
        self.wakeup = asyncio.Event()
        self._stopping = False
        # Rows committed by this process's gateway since the last claim: a partial batch waits
        # (up to `gather_seconds`) for a full one, so a busy inbox is claimed in few, large
        # transactions instead of one per SMTP commit.
        self._arrived = 0
        self._batch_ready = asyncio.Event()
        self.gather_seconds = GATHER_SECONDS
        self._full = False
        self._freed_at = 0.0

    def notify(self, count: int = 1) -> None:
        """`count` new inbox rows were committed (called by the InboxWriter)."""
        self._arrived += count
        if self._arrived >= self.batch_size:
            self._batch_ready.set()
        self.wakeup.set()

    def stop(self) -> None:
        """Drain what is due, then return from `run()` (the daemon enforces a deadline)."""
        self._stopping = True
        self.wakeup.set()

    def reconfigure(self, settings: WorkerSettings) -> None:
        """Use `settings` (built by `WorkerSettings.build`) from the next batch on: a batch
        under way finishes with the settings it started with."""
        self._next = settings

    def _apply(self, settings: WorkerSettings) -> None:
        config = settings.config
        self.config = config
        self.responder = settings.responder
        self.authenticator = settings.authenticator
        # Shared with the dry run (`pytrs filters test`), which decides as this worker would.
        self.routing = settings.routing
        self.numbers: TicketNumberGenerator = self.routing.numbers
        self._loop_policy: tuple[dict[str, str], LoopPolicy] | None = None
        pm = config.postmaster
        self.batch_size = pm.batch_size
        self.batch_max_bytes = pm.batch_max_bytes
        self.max_attempts = pm.max_attempts
        self.backoff = timedelta(seconds=pm.retry_backoff_seconds)
        self.lease = timedelta(seconds=pm.lease_seconds)
        self.poll_interval = pm.poll_interval_seconds
        tc = config.ticket
        self.clean = CleanOptions(
            re_prefixes=tc.subject_re, fwd_prefixes=tc.subject_fwd, size=tc.subject_size
        )

    async def run(self) -> None:
        """Process batches until stopped; after `stop()`, first drain what is due."""
        while True:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("%s: batch failed; retrying after a pause", self.name)
                if self._stopping:
                    return
                done = 0
            if done == 0:
                if self._stopping:
                    return
                await self._free_dead_claims()
                await self._sleep(self.poll_interval)
            elif done < self.batch_size and not self._full and not self._stopping:
                await self._gather()

    async def _free_dead_claims(self) -> None:
        """Now and then, when idle: rows claimed by a dead daemon of this host are due again
        (another host's claims wait for their lease)."""
        now = asyncio.get_running_loop().time()
        if now - self._freed_at < FREE_DEAD_CLAIMS_SECONDS:
            return
        self._freed_at = now
        try:
            freed = await inbox_repo.release_dead_claims(self.db)
        except Exception:
            log.exception("%s: could not check for dead claims", self.name)
            return
        if freed:
            log.info("%s: %d message(s) claimed by a dead daemon are due again", self.name, freed)

    async def _gather(self) -> None:
        """After a partial batch, give the gateway a moment to fill the next one."""
        if self._arrived >= self.batch_size:
            return
        self._batch_ready.clear()
        await wait_for_event(self._batch_ready, self.gather_seconds)

    async def drain(self, patience: float = 2.0) -> int:
        """Process until nothing is due, waiting up to `patience` seconds for rows due soon
        (replies held back for their parent); returns how many rows were claimed."""
        total = 0
        while True:
            count = await self.run_once()
            total += count
            if count:
                continue
            due = await inbox_repo.next_due(self.db)
            wait = (due - utcnow()).total_seconds() if due else None
            if wait is None or wait > patience:
                return total
            await asyncio.sleep(max(wait, 0.01))

    async def _sleep(self, seconds: float) -> None:
        self.wakeup.clear()
        await wait_for_event(self.wakeup, seconds)

    async def run_once(self) -> int:
        """Claim and process one batch; returns the number of rows claimed."""
        self._arrived = 0
        if self._next is not None:  # a reload: between batches, never within one
            self._apply(self._next)
            self._next = None
        leased = await inbox_repo.lease_rows(
            self.db, self.batch_size, self.lease, max_bytes=self.batch_max_bytes
        )
        if leased is None:
            return 0
        if self.big_messages is None or leased.size <= BIG_MESSAGE_BYTES:
            return await self._run_claimed(await inbox_repo.load_leased(self.db, leased))
        slot = self.big_messages.slot()
        try:
            # Before the mail is loaded: a big one costs its bytes, then its parse.
            await slot.take()
            return await self._run_claimed(await inbox_repo.load_leased(self.db, leased))
        finally:
            slot.release()

    async def _run_claimed(self, claimed: list[ClaimedMessage]) -> int:
        if not claimed:
            return 0
        size = sum(len(m.raw) for m in claimed)
        # A batch already holding half its byte bound is worth its transaction: no gathering
        # after it (the byte bound, not a lack of mail, may have made it short).
        self._full = size * 2 >= self.batch_max_bytes
        # What the daemon caches may have changed meanwhile (an import, another daemon's start):
        # one cheap query each tells, and only a change reloads.
        self.rules = await current_rules(self.db, self.rules)
        await self.addresses.refresh(self.db)
        parsed, failed = await self._parse_all(claimed)
        for message, error in failed:
            await self._fail(message, error)
        if parsed:
            try:
                await self._identify_agents(parsed)
            except Exception as exc:
                # Without knowing which mail is an agent's, none can be routed correctly:
                # every message of the batch backs off and tries again.
                for one in parsed:
                    await self._fail(one.claimed, describe(exc))
                return len(claimed)
            try:
                await self._process(parsed)
            except Exception as exc:
                if len(parsed) == 1:
                    await self._fail(parsed[0].claimed, describe(exc))
                else:
                    log.warning(
                        "%s: batch of %d failed; retrying one by one", self.name, len(parsed)
                    )
                    for one in parsed:
                        try:
                            await self._process([one])
                        except Exception as exc:
                            await self._fail(one.claimed, describe(exc))
        return len(claimed)

    async def _parse_all(
        self, claimed: Sequence[ClaimedMessage]
    ) -> tuple[list[Parsed], list[tuple[ClaimedMessage, str]]]:
        def work() -> tuple[list[Parsed], list[tuple[ClaimedMessage, str]]]:
            ok: list[Parsed] = []
            bad: list[tuple[ClaimedMessage, str]] = []
            for message in claimed:
                try:
                    ok.append(self.routing.prepare(message, self.rules.compiled))
                except Exception as exc:
                    bad.append((message, describe(exc)))
            return ok, bad

        if sum(len(m.raw) for m in claimed) > _THREAD_PARSE_BYTES:
            return await asyncio.to_thread(work)
        return work()

    def policy(self) -> Policy:
        return self.routing.policy(self.addresses.queues_by_address)

    async def _process(self, batch: list[Parsed]) -> None:
        wanted = lookup_keys(batch, self.numbers)
        senders = {p.mail.from_address for p in batch if p.mail.from_address}
        async with self.db.transaction() as conn:
            owned = await inbox_repo.lock_claimed(
                conn, [p.claimed.id for p in batch], batch[0].claimed.claim_token
            )
            batch = [p for p in batch if p.claimed.id in owned]
            ignored = [p for p in batch if is_ignored(p.control)]
            if ignored:
                await inbox_repo.mark_processed(conn, [_ignored_outcome(p) for p in ignored])
                batch = [p for p in batch if not is_ignored(p.control)]
            if not batch:
                metrics.MAIL_PROCESSED.labels("ignored").inc(len(ignored))
                return
            # Before the stored articles and copies: see `inbox_repo.in_flight`.
            in_flight = await self._in_flight(conn, batch)
            lookup = await known_repo.load_known(conn, wanted)
            known = lookup.known
            batch, waiting = split_waiting(batch, known, in_flight, self.numbers)
            queues = await ticket_repo.load_queues(conn)
            customers = await ticket_repo.find_customers(conn, senders)
            planned = plan_batch(batch, known, queues, self.numbers, self.policy())
            await self._assign_numbers(conn, planned)
            ctx = ApplyContext(
                queues, customers, self.config.ticket.hook, utcnow(),
                await _lookups(conn, planned, queues), lookup.article_by_message_id, self.clean,
                suppression_days=self.config.outbound.suppression_days,
                suppress_on_complaint=self.config.outbound.suppress_on_complaint,
            )  # fmt: skip
            results = await apply_batch(conn, planned, ctx)
            answers = await self._respond(conn, planned, ctx)
            await inbox_repo.mark_processed(conn, results, ctx.now)
        _count_committed(planned, ignored, answers)
        queued = len(answers.outgoing) if answers is not None else 0
        if queued and self.on_outbox is not None:
            self.on_outbox(queued)
        if waiting:
            await inbox_repo.defer(self.db, [p.claimed for p in waiting], REPLY_WAIT)
            log.info("%s: %d message(s) wait for a parent or first copy", self.name, len(waiting))
        for plan in planned:
            self._log_decision(plan)

    async def _respond(
        self, conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext
    ) -> Responses | None:
        """Auto-responses, relayed agent answers and notifications, in this transaction:
        decided and composed by the responder, stored by the ticket service; what was sent or
        refused goes into each mail's routing trace. Returns what was queued, if anything."""
        if self.responder is None or not planned:
            return None
        self.responses = await current_responses(
            conn, self.responses, znuny=self.config.database.mode == "znuny"
        )
        done = {r["id"]: r for r in ctx.results if r["state"] == inbox_repo.DONE}
        items = [
            Answering(p.claimed.id, p.mail, p.item, p.decision, p.control,
                      done[p.claimed.id]["ticket_id"], done[p.claimed.id]["article_id"])
            for p in planned if p.claimed.id in done
        ]  # fmt: skip
        if not items or not self.responder.may_answer(items, self.responses):
            return None
        addresses = self.addresses.queues_by_address
        if self._loop_policy is None or self._loop_policy[0] is not addresses:
            # Rebuilt only when the address book was reloaded (it is replaced as a whole).
            self._loop_policy = (addresses, LoopPolicy.build(self.config, addresses))
        policy = self._loop_policy[1]
        answers = await self.responder.answer(conn, items, self.responses, policy)
        writes = Writes(ctx.now)
        await store_outgoing(conn, [
            Outgoing(a.ticket, a.composed, a.kind, a.history, a.article_id,
                     "system" if a.new_article else None)
            for a in answers.outgoing
        ], writes)  # fmt: skip
        await writes.flush(conn)
        for result in ctx.results:
            notes = answers.notes.get(result["id"])
            if notes and result.get("trace"):
                trace = json.loads(result["trace"])
                trace["responses"] = notes
                result["trace"] = json.dumps(trace, ensure_ascii=False)
        return answers

    async def _identify_agents(self, parsed: list[Parsed]) -> None:
        await identify_agents(self.db, self.authenticator, self.numbers, parsed)

    async def _in_flight(self, conn: AsyncConnection, batch: list[Parsed]) -> inbox_repo.InFlight:
        """Parents and earlier copies of the batch's mail still in the inbox (being processed
        elsewhere)."""
        return await inbox_repo.in_flight(
            conn,
            message_ids=outside_references(batch),
            keys={p.claimed.dedup_key for p in batch if p.claimed.dedup_key},
            exclude=[p.claimed.id for p in batch],
        )

    async def _assign_numbers(self, conn: AsyncConnection, planned: list[Planned]) -> None:
        new = [p for p in planned if p.decision.action is Action.NEW_TICKET]
        if not new:
            return

        # On PostgreSQL the counter moves in short transactions of its own, so no row lock is
        # held during the batch (and, beside Znuny, Znuny sees the rows at once); SQLite's
        # batch transaction holds the write lock anyway.
        allocate = counter_for(self.config.database.mode, conn, self.numbers, self.db)
        found = await new_numbers(conn, self.numbers, len(new), allocate, secrets.randbelow)
        for p, tn in zip(new, found, strict=True):
            p.tn = tn
        name_placeholders(planned)

    async def _fail(self, message: ClaimedMessage, error: str) -> None:
        state = await inbox_repo.record_failure(
            self.db, message, error, self.max_attempts, self.backoff
        )
        metrics.MAIL_FAILURES.labels(
            "quarantined" if state == inbox_repo.QUARANTINED else "retry"
        ).inc()
        log.warning(
            "inbox %d: processing failed (attempt %d, now %s): %s",
            message.id, message.attempts, state, error.partition("\n")[0],
            extra={"inbox_id": message.id, "attempt": message.attempts, "state": state},
        )  # fmt: skip

    def _log_decision(self, plan: Planned) -> None:
        d = plan.decision
        tn = plan.tn or (d.ticket.tn if d.ticket else "")
        # The same facts as fields, for `log_format = "json"` (the text line ignores them).
        fields = {
            "inbox_id": plan.claimed.id, "message_id": plan.mail.message_id,
            "ticket": tn or None, "decision": d.action.value, "queue": d.queue,
            "via": d.followup_via or None,
        }  # fmt: skip
        log.info(
            "inbox %d %s: %s queue=%s ticket=%s via=%s",
            plan.claimed.id, plan.mail.message_id, d.action.value, d.queue, tn,
            d.followup_via or "-", extra=fields,
        )  # fmt: skip


async def _lookups(
    conn: AsyncConnection, planned: list[Planned], queues: dict[str, QueueInfo]
) -> Lookups:
    """Agents, dynamic fields and SLAs, loaded only when a control header or rule needs them."""
    names = {name for p in planned for name in p.control}
    wants_users = any(("Owner" in n or "Responsible" in n) for n in names)
    wants_fields = any("DynamicField-" in n for n in names) or any(
        p.decision.external is not None for p in planned
    )
    return Lookups(
        await ticket_repo.valid_users(conn) if wants_users else {},
        await ticket_repo.dynamic_field_ids(conn) if wants_fields else {},
        {name: q.id for name, q in queues.items()},
        await ticket_repo.valid_slas(conn) if any("SLA" in n for n in names) else {},
    )


def _count_committed(
    planned: list[Planned], ignored: list[Parsed], answers: Responses | None
) -> None:
    """Metrics of a committed batch: outcomes, tickets, latency, auto-responses."""
    now = utcnow()
    metrics.MAIL_PROCESSED.labels("ignored").inc(len(ignored))
    # Counted per outcome, not per mail: a labelled child is looked up under a lock.
    actions = Counter(plan.decision.action for plan in planned)
    for action, count in actions.items():
        metrics.MAIL_PROCESSED.labels(action.value).inc(count)
    metrics.TICKETS_CREATED.inc(actions[Action.NEW_TICKET])
    metrics.TICKET_FOLLOW_UPS.inc(actions[Action.FOLLOW_UP])
    for plan in planned:
        if plan.claimed.received_at is not None:
            latency = (now - plan.claimed.received_at).total_seconds()
            metrics.PROCESSING_LATENCY.observe(max(latency, 0.0))
    if answers is not None:
        for kind in answers.sent:
            metrics.AUTO_RESPONSES_SENT.labels(kind).inc()
        for reason in answers.suppressed:
            metrics.AUTO_RESPONSES_SUPPRESSED.labels(reason).inc()


def _ignored_outcome(p: Parsed) -> dict[str, Any]:
    """X-PyTRS-Ignore: no ticket, but the mail is kept in the inbox with the reason."""
    trace = {
        "action": "ignore",
        "reasons": [f"X-PyTRS-Ignore: {p.control.get('X-PyTRS-Ignore', '')}"],
        "rules": [{"rule": h.rule, "matched": [list(m) for m in h.matched]} for h in p.rule_hits],
        "control": p.control,
    }
    return {"id": p.claimed.id, "state": inbox_repo.IGNORED, "trace": json.dumps(trace)}


def describe(exc: BaseException) -> str:
    """A one-line summary (shown in lists and logs) followed by the traceback (kept for admins).

    Only the exception's first line goes into the summary: database errors append the SQL
    parameters, which may hold message text that does not belong in logs.
    """
    first = str(exc).strip().partition("\n")[0][:300]
    summary = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return summary + "\n\n" + "".join(traceback.format_exception(exc))
