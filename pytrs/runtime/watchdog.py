"""systemd's watchdog and STATUS= line: a daemon that is stuck or has lost a service gets
restarted, and `systemctl status` says what it is doing.

Place in the flow: the daemon starts one `Watchdog` task beside its services. When systemd
asks for a watchdog (`WatchdogSec=` in the unit: `runtime.systemd.watchdog_seconds`), the task
sends WATCHDOG=1 every half interval, from the event loop itself, so a blocked loop sends
nothing. It withholds the ping while a supervised service has died for good (stopped after a
crash, before any shutdown) or has been down — restarting, or crashing again at each restart —
for longer than the interval (the worker child processes report as the service
"worker-processes"), and says once in the log why the pings stopped. systemd then kills and
restarts the process, as it would a hung one.

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
from pytrs.runtime.waiting import wait_for_event

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
        stopping: asyncio.Event,
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
        # Service → (when it went down, the crash): from its first crash until it has run for
        # half an interval again. `supervise` marks each restart attempt running, and a
        # service crashing at every start is running for a moment between its restarts: it
        # stays down all the same.
        self._down: dict[str, tuple[float, str]] = {}

    async def run(self) -> None:
        """Ping (when asked to) and report until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self.interval:
                tasks.create_task(self._ping(self.interval), name="watchdog-ping")
            tasks.create_task(self._report(), name="watchdog-status")

    def withheld(self, interval: float) -> str:
        """Why the daemon does not deserve a ping now, "" when it does."""
        if self.stopping.is_set():
            return ""  # every service is stopped on purpose; the drain has its own deadline
        now = time.monotonic()
        self._observe(now, interval)
        reasons = [
            f"{name} stopped for good: {state.detail}"
            for name, state in self.states.items()
            # `supervise` marks a service it gave up on "crashed …"; a clean end is not death.
            if state.state == STOPPED and state.detail.startswith("crashed")
        ]
        reasons += [
            f"{name} down for {now - since:.0f} s: {crash}"
            for name, (since, crash) in sorted(self._down.items())
            if now - since > interval
        ]
        return "; ".join(reasons)

    def _observe(self, now: float, interval: float) -> None:
        """Note which services went down and which are back (called twice a second)."""
        for name, state in self.states.items():
            if state.state == RESTARTING:
                since = self._down.get(name, (state.since, ""))[0]
                self._down[name] = (since, state.detail)
            elif state.state == RUNNING and now - state.since >= interval / 2:
                self._down.pop(name, None)

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
            stopping = self.stopping.is_set()
            if self.interval and not stopping:
                self._observe(time.monotonic(), self.interval)
            due = read_at is None or loop.time() - read_at >= self.status_seconds
            if due or stopping != was_stopping:  # the drain's first line must not wait
                figures, read_at = await self.read_status(stopping), loop.time()
            line = "; ".join(filter(None, ("" if stopping else self._trouble(), figures)))
            if line != shown:
                self.notify(f"STATUS={line}")
                shown = line
            was_stopping = stopping
            if stopping:
                await asyncio.sleep(CHANGE_SECONDS)
            else:  # the drain's line goes out the moment the stop is asked for
                await wait_for_event(self.stopping, CHANGE_SECONDS)

    def _trouble(self) -> str:
        problems = self.states.problems()
        return "; ".join(f"{name} {what}" for name, what in problems.items())
