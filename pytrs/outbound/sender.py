"""The outbox sender: outbox rows in, mail at the relay out (SPEC S8).

One service per daemon (role "sender") with ``[outbound] connections`` lanes. Each lane claims
a batch of due rows (``outbox_repo.claim``: a lease, ``SKIP LOCKED`` on PostgreSQL), signs them
with DKIM in a worker thread, and sends them one after another over its own reused relay
connection (``gateway.smarthost``); each mail's outcome (``outbound.delivery``) is
committed before the lane sends the next one (``Recorder``; lanes whose outcomes arrive together
share a commit).
Lanes wake when ``notify()`` says rows were enqueued in this process, and poll otherwise.

Never sent twice. A row is sent only by the lane that holds its claim, and its outcome is
written only under that claim (the token is checked), so two senders — in one daemon or in
several sharing a PostgreSQL database — cannot both send it. What remains is the window that
every store-and-forward system has: the relay has the mail (its DATA went out, its 250 may
have come back) and the process dies before the commit that marks the row sent. That row is
still "sending"; after a restart on the same host (``release_dead_claims``) or once its lease
ends it is sent again. A lane has at most one mail in that window, since it waits for the
commit of each outcome before the next mail's MAIL FROM: a crash sends at most
``connections`` mails twice, whatever the batch size. (A connection lost after DATA went out
leaves the same doubt without a crash; that mail is retried too, as any MTA does.)

A lease is never outlived. Counted from before the claim (the lease in the database ends no
earlier), a lane starts mail only in the first half of the lease, every relay conversation
ends by three quarters of it (``transact``'s deadline covers connecting, NOOP and the
transaction), and the outcome is committed in the last quarter (≥ ``timeout_seconds``, as
``lease_seconds`` ≥ 4 × ``timeout_seconds``). Another sender takes a row over only when its
lease has ended, and by then its holder is no longer sending it: a slow relay or a claim that
waited for the database never causes a resend. Lease ends are wall-clock times, so daemons
sharing a database need synchronised clocks.

Recipients refused by some but not all: the mail goes to those who accepted it; refusals for
good are recorded on the ticket and the article (send-error) and the row ends ``sent``; a
temporary refusal is retried for that recipient only (``delivery.settle``). Addresses on the
suppression list (hard bounces) are not sent to: they count as refused for good.

Shutdown: ``stop()`` lets each lane finish the mail in hand, gives the rest of its batch back
untouched, and commits every outcome before ``run()`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from datetime import timedelta

from pytrs.config import Config
from pytrs.gateway.smarthost import NO_REPLY, Reply, Smarthost
from pytrs.metrics.registry import DKIM_SIGNATURES, OUTBOX_DELIVERIES
from pytrs.outbound import delivery
from pytrs.outbound.delivery import RetryPolicy
from pytrs.outbound.dkim import DkimSigner
from pytrs.runtime.waiting import wait_for_event
from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import ClaimedMail, Settlement

log = logging.getLogger(__name__)

# How long the recorder keeps retrying a commit that fails (database restarting …) before it
# gives up; the outcome is then lost and the row is sent again after its lease.
RECORD_RETRY_SECONDS = 120.0


class OutboxSender:
    """Delivers the outbox until stopped; ``run_once()`` sends one batch (used by tests)."""

    def __init__(
        self,
        config: Config,
        db: Database,
        signer: DkimSigner | None = None,
        *,
        name: str = "outbox-sender",
        only: Collection[int] | None = None,
    ) -> None:
        out = config.outbound
        # `pytrs outbox flush`: these rows only, not whatever else is due.
        self.only = only
        self.config = out
        self.db = db
        self.signer = signer or DkimSigner()
        self.name = name
        self.policy = RetryPolicy.from_config(out)
        self.lease = timedelta(seconds=out.lease_seconds)
        self.recorder = Recorder(db)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._host: Smarthost | None = None

    def notify(self, count: int = 1) -> None:
        """Rows were enqueued (and committed) in this process: look now, not at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        """Finish the mail in hand, give the rest back, then return from ``run()``."""
        self._stopping = True
        self._wakeup.set()

    def reconfigure(self, config: Config, signer: DkimSigner) -> None:
        """A reload: `config`'s relay settings and `signer`'s keys from each lane's next batch
        (a lane whose relay settings changed opens its next connection with the new ones); the
        mail in hand finishes as it started. The lanes' number needs a restart."""
        out = config.outbound
        self.config = out
        self.signer = signer
        self.policy = RetryPolicy.from_config(out)
        self.lease = timedelta(seconds=out.lease_seconds)
        self._wakeup.set()

    async def run(self) -> None:
        """Deliver until stopped, over ``[outbound] connections`` connections."""
        freed = await outbox_repo.release_dead_claims(self.db)
        if freed:
            log.info("%s: %d outbox row(s) of a dead daemon are due again", self.name, freed)
        try:
            async with asyncio.TaskGroup() as lanes:
                for index in range(self.config.connections):
                    lanes.create_task(self._lane(), name=f"{self.name}-{index + 1}")
        finally:
            await self.recorder.drain()

    async def run_once(self) -> int:
        """Claim and send one batch over a connection kept between calls; rows claimed."""
        if self._host is not None and self._host.config is not self.config:
            await self.close()
        if self._host is None:
            self._host = Smarthost(self.config)
        try:
            return await self._batch(self._host)
        finally:
            await self.recorder.drain()

    async def close(self) -> None:
        """Close the connection ``run_once`` keeps."""
        if self._host is not None:
            await self._host.close()
            self._host = None

    async def _lane(self) -> None:
        host = Smarthost(self.config)
        try:
            while not self._stopping:
                if host.config is not self.config:  # reloaded: the next batch uses the new relay
                    await host.close()
                    host = Smarthost(self.config)
                try:
                    claimed = await self._batch(host)
                except Exception:
                    # The database went away, most likely; the rows keep their leases.
                    log.exception("%s: batch failed; retrying after a pause", self.name)
                    claimed = 0
                if claimed == 0 and not self._stopping:
                    await self._idle(self.config.poll_interval_seconds)
        except asyncio.CancelledError:
            host.abort()
            raise
        await host.close()

    async def _idle(self, seconds: float) -> None:
        await wait_for_event(self._wakeup, seconds)
        self._wakeup.clear()

    async def _batch(self, host: Smarthost) -> int:
        """Claim, sign and send one batch; returns how many rows were claimed."""
        loop = asyncio.get_running_loop()
        # Read before the claim, so the lease in the database ends no earlier than this + lease.
        lease = self.lease.total_seconds()
        started = loop.time()
        mails = await outbox_repo.claim(self.db, self.config.batch_size, self.lease, only=self.only)
        if not mails:
            return 0
        # The lease's timetable: a mail is started in its first half, is off the wire by three
        # quarters (``transact``'s deadline), and its outcome committed in the last quarter
        # (≥ timeout_seconds). Another sender can take a row over only once its lease ended,
        # and by then this one can no longer be sending it.
        last_start, off_the_wire = started + lease / 2, started + lease * 3 / 4
        untried = list(mails)
        relay_down: Reply | None = None
        try:
            async with self.db.connect() as conn:
                blocked = await outbox_repo.suppressed(conn, {r for m in mails for r in m.pending})
            data = await self._sign(mails)
            while untried and not self._stopping and loop.time() < last_start:
                mail = untried.pop(0)
                if relay_down is not None:
                    # Not worth a connection attempt per mail: the same answer for the batch.
                    replies = dict.fromkeys(mail.pending, relay_down)
                else:
                    replies = await self._deliver(
                        host, mail, data[mail.id], blocked, deadline=off_the_wire
                    )
                    if host.unreachable:
                        relay_down = next(r for r in replies.values() if r.code == NO_REPLY)
                # Committed before the next mail goes out: a crash finds at most this one mail
                # of the lane accepted by the relay and not recorded, so sent again later.
                settlement = delivery.settle(mail, replies, self.policy, utcnow())
                await self.recorder.record(settlement)
                OUTBOX_DELIVERIES.labels(_RESULTS[settlement.state]).inc()
                _log_outcome(mail, replies, settlement.state)
        finally:
            # Shielded: a cancelled lane must still give its untouched rows back. The mail in
            # hand when it was cancelled keeps its lease: it may have reached the relay.
            if untried:
                await asyncio.shield(outbox_repo.release(self.db, untried))
        if relay_down is not None and not self._stopping:
            await self._idle(self.config.poll_interval_seconds)
        return len(mails)

    async def _deliver(
        self,
        host: Smarthost,
        mail: ClaimedMail,
        data: bytes,
        blocked: dict[str, outbox_repo.Suppression],
        *,
        deadline: float,
    ) -> dict[str, Reply]:
        replies = {r: _suppressed(blocked[r.lower()]) for r in mail.pending if r.lower() in blocked}
        targets = [r for r in mail.pending if r not in replies]
        if targets:
            replies.update(
                await host.transact(mail.envelope_from, targets, data, deadline=deadline)
            )
        return replies

    async def _sign(self, mails: Sequence[ClaimedMail]) -> dict[int, bytes]:
        if not self.signer:
            return {m.id: m.raw for m in mails}
        return await asyncio.to_thread(self._sign_all, mails)

    def _sign_all(self, mails: Sequence[ClaimedMail]) -> dict[int, bytes]:
        signed = {}
        for mail in mails:
            try:
                signed[mail.id] = self.signer.sign(mail.raw, mail.envelope_from)
            except Exception as exc:
                # A header dkimpy cannot parse: better delivered unsigned than not at all.
                log.warning("outbox %d %s: not DKIM-signed: %s", mail.id, mail.message_id, exc)
                DKIM_SIGNATURES.labels("error").inc()
                signed[mail.id] = mail.raw
        return signed


class Recorder:
    """Commits outcomes while their lanes wait: each lane's own outcome is committed before the
    lane sends its next mail, so a crash finds at most one mail per lane (per relay connection)
    accepted by the relay and not recorded.

    Outcomes of several lanes that arrive while a commit is running go into the next commit
    together (group commit, as the inbox writer does): no lane waits for more than its own
    outcome, and four lanes share one fsync on SQLite instead of queueing for four. A group that
    fails is committed again one outcome at a time, so one bad row costs only its own lane.
    Commits are shielded from a lane's cancellation; ``drain`` waits for those still running.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Settlement, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def record(self, settlement: Settlement) -> None:
        """Commit `settlement` (retrying a failing database for a while); never raises."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((settlement, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name="outbox-recorder")
        await asyncio.shield(done)

    async def drain(self) -> None:
        """Return once every outcome handed over so far is committed (or given up on)."""
        while self._committer is not None and not self._committer.done():
            await asyncio.shield(self._committer)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                stale = await outbox_repo.settle(self.db, [s for s, _ in group])
            except Exception:
                stale = []
                for settlement, _ in group:
                    stale.extend(await self._commit_one(settlement))
            _log_stale(stale)
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    async def _commit_one(self, settlement: Settlement) -> list[int]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + RECORD_RETRY_SECONDS
        delay = 0.1
        mail = settlement.mail
        while True:
            try:
                return await outbox_repo.settle(self.db, [settlement])
            except Exception:
                if loop.time() > give_up:
                    log.critical(
                        "outbox %d %s: could not record its outcome; it will be sent again "
                        "when its lease ends",
                        mail.id,
                        mail.message_id,
                    )
                    return []
                log.exception(
                    "outbox %d: recording its outcome failed; retrying in %.1f s", mail.id, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


# A row's state after an attempt, as `pytrs_outbox_deliveries_total` names it.
_RESULTS = {
    outbox_repo.SENT: "sent", outbox_repo.PENDING: "deferred", outbox_repo.FAILED: "failed",
}  # fmt: skip


def _log_stale(stale: list[int]) -> None:
    for mail_id in stale:
        log.error(
            "outbox %d: its lease ran out and another sender took it over while it was being "
            "sent; it may have been sent twice",
            mail_id,
        )


def _suppressed(entry: outbox_repo.Suppression) -> Reply:
    until = entry.until.strftime("%Y-%m-%d %H:%M")
    # 5.7.1 (not 5.1.x): the refusal is ours, and must not extend the suppression itself.
    text = f"5.7.1 not sent by pytrs: address suppressed until {until} UTC ({entry.reason})"
    return Reply(550, text)


def _log_outcome(mail: ClaimedMail, replies: dict[str, Reply], state: str) -> None:
    for recipient, reply in replies.items():
        outcome = "sent" if reply.accepted else "refused" if reply.permanent else "deferred"
        # For `log_format = "json"`; `state` is the row's: pending (a retry), sent or failed.
        fields = {"outbox_id": mail.id, "message_id": mail.message_id, "ticket_id": mail.ticket_id,
                  "recipient": recipient, "outcome": outcome, "reply": str(reply),
                  "state": state}  # fmt: skip
        if reply.accepted:
            log.info(
                "outbox %d %s: sent to %s (%s)", mail.id, mail.message_id, recipient, reply,
                extra=fields,
            )  # fmt: skip
        else:
            log.warning(
                "outbox %d %s: %s to %s: %s", mail.id, mail.message_id, outcome, recipient, reply,
                extra=fields,
            )  # fmt: skip
