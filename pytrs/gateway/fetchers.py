"""Mailbox fetching as daemon services: one isolated task per `[[mail_accounts]]` entry.

Each account task takes the account's lease (so that one daemon of several fetches it), opens
a session, syncs, then waits for the server to push new mail (IMAP IDLE) or polls. Any failure —
wrong password, TLS error, a hung server (every call has a deadline), a lost connection — is
recorded for admins (`pytrs accounts`) and retried with exponential backoff; it never touches
the other accounts. A pass that fetched clears a stale error; a server action the server refuses
after the commit (MOVE, STORE+EXPUNGE) does not stop fetching: it stays the account's last error
while the fetcher retries it with a backoff of its own (gateway/imap.py). A reload
(`MailboxFetchers.reconfigure`) works account by account: an added one starts, a removed one
stops after the mail it is storing, a changed one stops and its new task starts once the old one
let go of the lease, and an unchanged one is not touched (its IDLE connection stays open).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pytrs.config import Config, MailAccountConfig
from pytrs.gateway.imap import ImapFetcher, ImapSession
from pytrs.gateway.oauth2 import access_token
from pytrs.gateway.pop3 import Pop3Fetcher
from pytrs.metrics.registry import FETCH_ERRORS
from pytrs.runtime.waiting import wait_for_event
from pytrs.schema import mailbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.inbox_repo import process_identity

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
# Longest wait between lease renewals (an IDLE wait is cut into pieces of this length).
RENEW_SECONDS = 30.0


class AccountTask:
    """Fetches one account until stopped."""

    def __init__(
        self,
        account: MailAccountConfig,
        db: Database,
        config: Config,
        stop: asyncio.Event,
        on_commit: Callable[[int], None] | None = None,
        *,
        owner: str = "",
        lease_seconds: float | None = None,
    ) -> None:
        self.account = account
        self.db = db
        self.stop = stop
        self.owner = owner or process_identity()
        self.lease_seconds = lease_seconds or account.lease_seconds
        # Consecutive failures, for the backoff; a pass that fetched sets it back to 0 (a
        # session that worked for hours and then broke starts over from the shortest wait).
        self.failures = 0
        self.fetcher = ImapFetcher(
            account, db, default_max_size=config.smtp.max_message_size, on_commit=on_commit
        )
        self.pop3 = Pop3Fetcher(
            account, db, default_max_size=config.smtp.max_message_size, on_commit=on_commit
        )

    async def run(self) -> None:
        while not self.stop.is_set():
            if not await self._lease():
                await self._pause(self.lease_seconds / 3)
                continue
            try:
                await self._session()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = min(BACKOFF_FIRST_SECONDS * 2 ** (self.failures - 1), BACKOFF_MAX_SECONDS)
                text = f"{type(exc).__name__}: {exc}".strip()
                log.warning("account %s: %s; retrying in %.1f s", self.account.name, text, delay)
                FETCH_ERRORS.labels(self.account.name).inc()
                await self._record_failure(text, delay)
                await self._pause(delay)
        await mailbox_repo.release_lease(self.db, self.account.name, self.owner)

    async def _lease(self) -> bool:
        try:
            return await mailbox_repo.acquire_lease(
                self.db, self.account.name, self.owner, self.lease_seconds
            )
        except Exception:
            log.exception("account %s: cannot read its lease", self.account.name)
            return False

    async def _record_failure(self, text: str, delay: float) -> None:
        try:
            next_attempt = utcnow() + timedelta(seconds=delay)
            await mailbox_repo.record_failure(self.db, self.account.name, text, next_attempt)
        except Exception:
            log.exception("account %s: cannot record its failure", self.account.name)

    async def _session(self) -> None:
        if self.account.type.startswith("pop3"):
            await self._pop3_passes()
            return
        account = self.account
        if account.auth == "xoauth2":
            session = ImapSession(account, oauth2_token=await access_token(self.db, account))
        else:
            session = ImapSession(account, account.resolve_password())
        try:
            async with asyncio.timeout(account.timeout_seconds):
                await session.open(self.fetcher.readonly)
            while not self.stop.is_set():
                result = await self.fetcher.sync(session)
                failure = result.action_failure
                await mailbox_repo.record_success(
                    self.db, account.name,
                    action_error=failure.text if failure else None,
                    action_error_at=failure.at if failure else None,
                    action_retry_at=failure.retry_at if failure else None,
                )  # fmt: skip
                self.failures = 0
                if result.fetched or result.skipped:
                    log.info(
                        "account %s: %d fetched, %d acted on, %d left (too large)",
                        account.name, result.fetched, result.acted, result.skipped,
                    )  # fmt: skip
                if not await self._lease():
                    return  # another daemon holds the account now
                await self._wait_for_mail(session)
        finally:
            await session.close()

    async def _pop3_passes(self) -> None:
        # POP3 cannot push: a pass per poll interval, a fresh connection each time.
        while not self.stop.is_set():
            async with asyncio.timeout(self.account.timeout_seconds * 10):
                result = await self.pop3.sync()
            await mailbox_repo.record_success(self.db, self.account.name)
            self.failures = 0
            if result.fetched or result.skipped:
                log.info(
                    "account %s: %d fetched, %d deleted, %d left (too large)",
                    self.account.name, result.fetched, result.acted, result.skipped,
                )  # fmt: skip
            if not await self._lease():
                return
            await self._pause(min(self.account.poll_interval_seconds, self.lease_seconds / 3))

    async def _wait_for_mail(self, session: ImapSession) -> None:
        # Refused server actions come due again without new mail: wake up for them too.
        retry = self.fetcher.action_retry_in()
        longest = min(RENEW_SECONDS, self.lease_seconds / 3, retry if retry is not None else 1e9)
        if "IDLE" in session.capabilities:
            await session.idle(self.stop, max(longest, 0.1))
            if not self.stop.is_set():
                # After IDLE the mailbox view may lag; re-select to see the new UIDNEXT.
                await session.select(self.fetcher.readonly)
        else:
            await self._pause(max(min(self.account.poll_interval_seconds, longest), 0.1))

    async def _pause(self, seconds: float) -> None:
        await wait_for_event(self.stop, seconds)


class MailboxFetchers:
    """All account tasks of one daemon; a reload adds, stops and restarts them by account."""

    def __init__(
        self,
        config: Config,
        db: Database,
        on_commit: Callable[[int], None] | None = None,
        **task_options: Any,
    ) -> None:
        self.db = db
        self.on_commit = on_commit
        self.task_options = task_options
        self.stop = asyncio.Event()
        self.config = config
        self.tasks = [self._account_task(account, config) for account in config.mail_accounts]
        self._running: dict[asyncio.Task[None], AccountTask] = {}
        # A changed account's new task, started once its old one has released the lease.
        self._successors: dict[str, AccountTask] = {}
        self._changed = asyncio.Event()
        self._started = False

    def _account_task(self, account: MailAccountConfig, config: Config) -> AccountTask:
        # Each task stops on its own event: a reload stops one account, shutdown all.
        return AccountTask(
            account, self.db, config, asyncio.Event(), self.on_commit, **self.task_options
        )

    async def run(self) -> None:
        """Fetch every account until `request_stop()`; a task that raises ends the others."""
        self._started = True
        for task in self.tasks:
            self._launch(task)
        try:
            while not self.stop.is_set() or self._running:
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                waiting: set[asyncio.Future[Any]] = {*self._running, changed}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                for finished in [task for task in self._running if task in done]:
                    account = self._running.pop(finished).account
                    finished.result()  # an account task never raises but when it is a bug
                    successor = self._successors.pop(account.name, None)
                    if successor is not None and not self.stop.is_set():
                        self._launch(successor)
        finally:
            # Cancelled until they have ended: on Python 3.11, asyncio.wait_for (aioimaplib
            # waits for every answer with it) swallows a cancellation that arrives as the
            # answer does, and the account would go on fetching with this daemon gone.
            left = set(self._running)
            while left:
                for running in left:
                    running.cancel()
                _, left = await asyncio.wait(left, timeout=0.5)

    def _launch(self, task: AccountTask) -> None:
        running = asyncio.create_task(task.run(), name=f"account:{task.account.name}")
        self._running[running] = task

    def reconfigure(self, config: Config) -> None:
        """A reload: start added accounts, stop removed ones (each finishes the batch it is
        storing), restart changed ones; an unchanged account keeps its task and connection."""
        old = {task.account.name: task for task in self.tasks}
        kept: list[AccountTask] = []
        for account in config.mail_accounts:
            current = old.pop(account.name, None)
            if current is not None and _setup(account, config) == _setup(
                current.account, self.config
            ):
                kept.append(current)
                continue
            task = self._account_task(account, config)
            kept.append(task)
            if current is None:
                log.info("account %s added: fetching", account.name)
            else:
                log.info("account %s changed: reconnecting with the new settings", account.name)
                current.stop.set()
            if not self._started or self.stop.is_set():
                continue
            if any(t.account.name == account.name for t in self._running.values()):
                # Still stopping (changed, or removed by an earlier reload): two tasks of one
                # account would share its lease, and the old one's release end the new one's.
                self._successors[account.name] = task
            else:
                self._launch(task)
        for gone in old.values():
            log.info("account %s removed: stops after the mail it is storing", gone.account.name)
            gone.stop.set()
            self._successors.pop(gone.account.name, None)
        self.tasks = kept
        self.config = config
        self._changed.set()

    def request_stop(self) -> None:
        self.stop.set()
        for task in (*self._running.values(), *self.tasks):
            task.stop.set()
        self._successors.clear()
        self._changed.set()


def _setup(account: MailAccountConfig, config: Config) -> tuple[MailAccountConfig, int]:
    """What an account task is built from: its entry, and the size limit it falls back to."""
    return account, config.smtp.max_message_size
