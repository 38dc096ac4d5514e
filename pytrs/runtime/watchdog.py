"""systemd's watchdog and STATUS= line: a daemon that is stuck or has lost a service gets
restarted, and `systemctl status` says what it is doing.

Place in the flow: the daemon starts one `Watchdog` task beside its services. When systemd
asks for a watchdog (`WatchdogSec=` in the unit: `runtime.systemd.watchdog_seconds`), the task
sends WATCHDOG=1 every half interval, from the event loop itself, so a blocked loop sends
nothing. It withholds the ping while a supervised service has died for good (stopped after a
crash, before any shutdown) or has been restarting for longer than the interval — the worker
child processes report as the service "worker-processes" — and says once in the log why the
pings stopped. systemd then kills and restarts the process, as it would a hung one.

STATUS= is sent every few seconds and at once when a service changes state or the drain
begins: the figures come from `read_status` (the database, `metrics.status`), the trouble
from the service states.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from pytrs.runtime.services import RESTARTING, RUNNING, STOPPED, ServiceStates
from pytrs.runtime.systemd import sd_notify, watchdog_seconds

log = logging.getLogger(__name__)

# How often the figures are read from the database (never more often).
STATUS_SECONDS = 5.0
# How often the service states are looked at for a change worth a STATUS= line at once. They
# offer no event to await; reading a small dict twice a second costs nothing.
CHANGE_SECONDS = 0.5


class Watchdog:
    """Pings systemd while the daemon is healthy, and keeps its STATUS= line current."""

    def __init__(
        self,
        states: ServiceStates,
        read_status: Callable[[bool], Awaitable[str]],
        *,
        stopping: Callable[[], bool],
        interval: float | None = None,
        status_seconds: float = STATUS_SECONDS,
        notify: Callable[[str], None] = sd_notify,
    ) -> None:
        self.states = states
        self.read_status = read_status
        self.stopping = stopping
        self.interval = watchdog_seconds() if interval is None else interval or None
        self.status_seconds = status_seconds
        self.notify = notify
        self.silenced = ""  # why pings are withheld now ("" while they are sent)
        # Service → when its current run of crashes began. `supervise` marks each restart
        # attempt running for the moment before it crashes again; a service counts as back only
        # once it has run for a whole interval.
        self._down_since: dict[str, float] = {}

    async def run(self) -> None:
        """Ping (when asked to) and report until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self.interval:
                tasks.create_task(self._ping(self.interval), name="watchdog-ping")
            tasks.create_task(self._report(), name="watchdog-status")

    def withheld(self, interval: float) -> str:
        """Why the daemon does not deserve a ping now, "" when it does."""
        if self.stopping():
            return ""  # every service is stopped on purpose; the drain has its own deadline
        now = time.monotonic()
        reasons = []
        for name, state in self.states.items():
            # `supervise` marks a service it gave up on "crashed …"; a clean end is not death.
            if state.state == STOPPED and state.detail.startswith("crashed"):
                reasons.append(f"{name} stopped for good: {state.detail}")
            elif state.state == RESTARTING:
                since = self._down_since.setdefault(name, state.since)
                if now - since > interval:
                    reasons.append(f"{name} restarting for {now - since:.0f} s: {state.detail}")
            elif state.state == RUNNING and now - state.since > interval:
                self._down_since.pop(name, None)
        return "; ".join(reasons)

    async def _ping(self, interval: float) -> None:
        while True:
            why = self.withheld(interval)
            if not why:
                self.notify("WATCHDOG=1")
                if self.silenced:
                    log.warning("watchdog pings resumed")
            elif not self.silenced:
                log.error("watchdog pings stopped (systemd will restart pytrs): %s", why)
            self.silenced = why
            await asyncio.sleep(interval / 2)

    async def _report(self) -> None:
        loop = asyncio.get_running_loop()
        figures, shown = "", ""
        read_at: float | None = None
        was_stopping = False
        while True:
            stopping = self.stopping()
            due = read_at is None or loop.time() - read_at >= self.status_seconds
            if due or stopping != was_stopping:  # the drain's first line must not wait
                figures, read_at = await self.read_status(stopping), loop.time()
            line = "; ".join(filter(None, ("" if stopping else self._trouble(), figures)))
            if line != shown:
                self.notify(f"STATUS={line}")
                shown = line
            was_stopping = stopping
            await asyncio.sleep(CHANGE_SECONDS)

    def _trouble(self) -> str:
        problems = self.states.problems()
        return "; ".join(f"{name} {what}" for name, what in problems.items())
