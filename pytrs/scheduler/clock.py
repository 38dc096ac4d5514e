"""The scheduler role's clock: APScheduler 3.x running the jobs inside the daemon's loop.

Place in the flow: the daemon (role "scheduler") builds one `Scheduler` after provisioning and
runs it as a supervised service. Every `[scheduler] interval_seconds` it runs the due scan
(`scheduler.due_scan`: escalation events, pending reminders, auto-close) and the rebuild check
(`scheduler.rebuild`). Each job runs at most once at a time in this process
(`max_instances=1`), and runs that were missed while it ran are merged into one
(`coalesce=True`). The database is the source of truth: APScheduler keeps nothing, so a
restart or a second daemon needs nothing from it.

A job that fails is logged in one line (the traceback at debug level), counted in
`pytrs_scheduler_job_errors_total`, and tried again at the next interval: the scheduler never
stops because of it. At shutdown the running job is given a moment to commit, then cancelled
(its transaction rolls back, and the next start fires what it had claimed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pytrs.config import Config
from pytrs.metrics import registry as metrics
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notifier
from pytrs.scheduler.rebuild import EscalationRebuild
from pytrs.schema.database import Database
from pytrs.tickets.service import TicketService

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0


class Scheduler:
    """The jobs of the scheduler role and the clock that runs them."""

    def __init__(
        self, config: Config, db: Database, *, on_outbox: Callable[[int], None] | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:  # fmt: skip
        """Raises ConfigError when mail cannot be composed or a `[scheduler]` template does
        not compile. `config` must carry the runtime secrets (the loop-marker key)."""
        self.config = config
        self.db = db
        self.on_outbox = on_outbox
        self.due_scan = self.build_scan(config)
        self.rebuild = EscalationRebuild(db)
        self.interval = config.scheduler.interval_seconds
        self.stop_grace = stop_grace
        self._running: set[asyncio.Task[Any]] = set()
        # APScheduler says "Running job …" and "… executed successfully" for every run, and
        # warns at every interval that a job still running (a long rebuild) was skipped, which
        # is what max_instances=1 is for. Failures are ours to log (`_guarded`).
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self._stop = asyncio.Event()
        self._clock: AsyncIOScheduler | None = None

    def build_scan(self, config: Config) -> DueScanner:
        """The due scan as `config` words its notifications; raises ConfigError when mail
        cannot be composed or a `[scheduler]` template does not compile."""
        service = TicketService.from_config(config)
        notifier = Notifier(config, service.composer)
        return DueScanner(
            self.db, service, notifier, timezone=config.scheduler.timezone,
            on_outbox=self.on_outbox,
        )  # fmt: skip

    def reconfigure(self, config: Config, due_scan: DueScanner) -> None:
        """A reload: the next scan uses `due_scan` (from `build_scan(config)`); a scan under
        way finishes with the templates it started with. A new interval applies from now."""
        self.config = config
        self.due_scan = due_scan
        interval = config.scheduler.interval_seconds
        if interval != self.interval:
            self.interval = interval
            if self._clock is not None:
                for name in self.jobs():
                    self._clock.reschedule_job(name, trigger="interval", seconds=interval)

    def jobs(self) -> dict[str, Callable[[], Awaitable[object]]]:
        return {"escalation-rebuild": self.rebuild.run, "due-scan": self._scan}

    async def _scan(self) -> object:
        # Looked up at each run, not when the job was added: a reload replaces the scanner.
        return await self.due_scan.run()

    async def run(self) -> None:
        """Run the jobs every interval until `stop`; then let the running job finish for a
        moment and cancel it."""
        clock = AsyncIOScheduler(timezone=UTC)
        for name, job in self.jobs().items():
            clock.add_job(
                self._guarded, "interval", args=(name, job), seconds=self.interval, id=name,
                name=name, max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )  # fmt: skip
        clock.start()
        self._clock = clock
        try:
            await self._stop.wait()
        finally:
            # Paused first, shut down last: APScheduler's shutdown cancels the jobs it is
            # running at once, which took their grace away (a job cancelled in the middle of
            # its first database call could keep SQLite's one connection from the drain).
            clock.pause()
            await self._finish_running()
            clock.shutdown(wait=False)

    def stop(self) -> None:
        self._stop.set()

    async def _finish_running(self) -> None:
        if not self._running:
            return
        _done, pending = await asyncio.wait(set(self._running), timeout=self.stop_grace)
        for task in pending:
            log.warning("scheduler job %s did not finish in time; cancelling", task.get_name())
            task.cancel()
        if pending:  # their transactions roll back before the daemon goes on stopping
            await asyncio.wait(pending, timeout=self.stop_grace)

    async def _guarded(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run one job; a failure is logged and counted, never fatal."""
        task = asyncio.current_task()
        if task is not None:
            task.set_name(f"scheduler:{name}")
            self._running.add(task)
        try:
            await job()
        except asyncio.CancelledError:
            # Only `_finish_running` cancels a job (at shutdown): its transaction rolled back.
            # The task ends quietly rather than have APScheduler log a traceback.
            log.info("scheduler job %s cancelled at shutdown; the next start does it", name)
        except Exception as exc:
            metrics.SCHEDULER_JOB_ERRORS.labels(name).inc()
            first_line = str(exc).partition("\n")[0]
            log.warning("scheduler job %s failed: %s: %s", name, type(exc).__name__, first_line)
            log.debug("scheduler job %s failed", name, exc_info=True)
        finally:
            if task is not None:
                self._running.discard(task)
