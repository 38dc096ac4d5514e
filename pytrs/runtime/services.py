"""The daemon's services under supervision, and the state of each: what `/readyz` asks.

Place in the flow: the daemon runs each service (inbox writer, postmaster workers, outbox
sender, fetchers …) through `supervise`, which restarts it after a crash and moves its entry in
`ServiceStates` between running, restarting (with the error) and stopped; the worker processes
report the same way. The web app's readiness check reads `problems()`, the metrics
`running()`. A process not run by a daemon (tests' `create_app`) has none to report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RUNNING, RESTARTING, STOPPED = "running", "restarting", "stopped"


@dataclass(frozen=True, slots=True)
class ServiceState:
    state: str
    detail: str = ""  # why it is not running: the crash, "stop requested" …
    # time.monotonic() when it entered this state: how long a restart has lasted (the watchdog).
    since: float = 0.0


class ServiceStates:
    """Service name → its state; written by the supervisors, read by `/readyz` and `/metrics`."""

    def __init__(self) -> None:
        self._states: dict[str, ServiceState] = {}

    def set(self, name: str, state: str, detail: str = "") -> None:
        before = self._states.get(name)
        since = before.since if before is not None and before.state == state else time.monotonic()
        self._states[name] = ServiceState(state, detail, since)

    def items(self) -> list[tuple[str, ServiceState]]:
        """Each service and its state, by name."""
        return sorted(self._states.items())

    def stop_all(self, detail: str) -> None:
        """Shutdown has begun: nothing here is ready for new work any more."""
        for name in self._states:
            self.set(name, STOPPED, detail)

    def problems(self) -> dict[str, str]:
        """Each service that is not running, with its state and why."""
        return {
            name: f"{s.state}: {s.detail}" if s.detail else s.state
            for name, s in sorted(self._states.items())
            if s.state != RUNNING
        }

    def running(self) -> dict[str, bool]:
        """Each service and whether it runs (`pytrs_service_up`)."""
        return {name: s.state == RUNNING for name, s in sorted(self._states.items())}


async def supervise(
    name: str, run: Callable[[], Awaitable[None]], *, max_restarts: int = 5,
    states: ServiceStates | None = None,
) -> None:  # fmt: skip
    """Run a service, restarting it with backoff when it crashes; give up after a few crashes
    so that systemd can restart the whole process. Its state goes to `states` (`/readyz`)."""
    states = states or ServiceStates()
    delay = 1.0
    for attempt in range(max_restarts + 1):
        states.set(name, RUNNING)
        try:
            await run()
            states.set(name, STOPPED)
            return
        except asyncio.CancelledError:
            states.set(name, STOPPED, "cancelled")
            raise
        except Exception as exc:
            first_line = str(exc).partition("\n")[0]
            crash = f"crashed with {type(exc).__name__}: {first_line}"
            if attempt == max_restarts:
                states.set(name, STOPPED, crash)
                log.critical("%s crashed %d times; giving up", name, attempt + 1)
                raise
            states.set(name, RESTARTING, crash)
            log.exception("%s crashed; restarting in %.0f s", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
