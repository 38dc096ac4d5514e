"""The state of each service of this process, as its supervisor sees it: what `/readyz` asks.

Place in the flow: the daemon registers its services (inbox writer, postmaster workers or
worker processes, outbox sender, fetchers, web …) and `daemon.supervise` moves each between
running, restarting (after a crash, with the error) and stopped; the web app's readiness check
reads `problems()`. A process not run by a daemon (tests' `create_app`) has none to report.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNNING, RESTARTING, STOPPED = "running", "restarting", "stopped"


@dataclass(frozen=True, slots=True)
class ServiceState:
    state: str
    detail: str = ""  # why it is not running: the crash, "stop requested" …


class ServiceStates:
    """Service name → its state; written by the supervisors, read by `/readyz` and `/metrics`."""

    def __init__(self) -> None:
        self._states: dict[str, ServiceState] = {}

    def set(self, name: str, state: str, detail: str = "") -> None:
        self._states[name] = ServiceState(state, detail)

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
