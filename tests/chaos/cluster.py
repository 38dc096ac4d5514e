"""Several `pytrs run` daemons as real processes on one database, and the chaos that kills
them: the harness of the chaos test (tests/chaos/test_chaos.py).

Each `Member` is one daemon with its roles, its configuration file and an SMTP port of its own
that every incarnation binds again. The ports are taken below the kernel's ephemeral range,
so that no outgoing connection (the test makes thousands) can sit on a dead member's port
while it waits to be restarted. Each incarnation logs to a file of its own; a daemon that exits
without being killed is an incident the test reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The daemon's own line, not its worker child's ("… [worker PID] … pytrs started: …").
STARTED = re.compile(r"^(?!.*\[worker ).*pytrs started:", re.M)
# Below net.ipv4.ip_local_port_range (32768-60999 by default) and above the well-known
# services: a port nobody gets by binding port 0 or by connecting out.
PORT_RANGE = (21000, 32000)


def quiet_ports(count: int, rng: random.Random) -> list[int]:
    """`count` distinct ports of PORT_RANGE that are free right now on 127.0.0.1."""
    found: list[int] = []
    while len(found) < count:
        port = rng.randrange(*PORT_RANGE)
        if port in found:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    return found


@dataclass
class Incident:
    """A daemon that exited on its own: the test fails on it, naming its log."""

    member: str
    returncode: int | None
    log: Path
    what: str = "exited by itself"

    def describe(self) -> str:
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return f"{self.member} {self.what} ({self.returncode}), {self.log}:\n{tail}"


@dataclass
class Member:
    """One daemon of the cluster and its incarnations."""

    name: str
    roles: tuple[str, ...]
    config: Path
    port: int
    logs_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    kills: int = 0
    incidents: list[Incident] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.logs_dir / f"{self.name}.{self.incarnation}.log"

    def start(self) -> None:
        self.incarnation += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
        roles = [arg for role in self.roles for arg in ("--role", role)]
        with self.log.open("ab") as stderr:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytrs", "--config", str(self.config), "run", *roles],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
            )  # fmt: skip

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def started(self) -> bool:
        """Whether the current incarnation is up (its services started, its port bound)."""
        return self.running() and STARTED.search(self.log.read_text(errors="replace")) is not None

    def kill(self) -> bool:
        """SIGKILL the running incarnation; False when there was none to kill."""
        if not self.running():
            return False
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.kills += 1
        return True

    def check(self) -> None:
        """Note an incarnation that exited by itself, and start the next one."""
        if self.proc is not None and self.proc.poll() is not None:
            self.incidents.append(Incident(self.name, self.proc.returncode, self.log))
            self.proc = None
            self.start()

    def terminate(self, timeout: float = 90) -> int:
        """SIGTERM: the daemon drains and exits; its exit code."""
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def discard(self) -> None:
        """Teardown: whatever is still running is killed (our own process, by its pid)."""
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)


@dataclass
class ChaosLog:
    """What the chaos did, for the summary: (seconds since start, member) per kill."""

    kills: list[tuple[float, str]] = field(default_factory=list)
    # (seconds since start, member) per graceful restart (SIGTERM, which must exit 0)
    restarts: list[tuple[float, str]] = field(default_factory=list)
    # (seconds since start, member) per reload (SIGHUP with the file unchanged)
    reloads: list[tuple[float, str]] = field(default_factory=list)


class Cluster:
    """The members, the chaos monkey that kills them, and the watch that restarts them."""

    def __init__(self, members: list[Member], rng: random.Random) -> None:
        self.members = members
        self.rng = rng
        self.chaos = ChaosLog()
        self._paused: set[str] = set()  # killed, waiting to be restarted
        self._began = time.monotonic()

    def start(self) -> None:
        for member in self.members:
            member.start()

    async def all_started(self, within: float = 120) -> None:
        end = time.monotonic() + within
        while not all(m.started() for m in self.members):
            self.watch()
            if time.monotonic() > end:
                down = [m.name for m in self.members if not m.started()]
                raise AssertionError(f"daemons {down} did not start: see {self.members[0].log}")
            await asyncio.sleep(0.2)

    def watch(self) -> None:
        """Restart whoever exited without being killed (recorded as an incident)."""
        for member in self.members:
            if member.name not in self._paused:
                member.check()

    async def monkey(
        self, until: asyncio.Event, *, every: tuple[float, float], pause: tuple[float, float],
        graceful: float = 0.0, reload: float = 0.0,
    ) -> None:  # fmt: skip
        """Until `until` is set: every `every` seconds (uniform), SIGKILL a random member and
        start it again after `pause` seconds; a `graceful` share of the time, a member that is
        up gets SIGTERM instead (a `systemctl restart`), and must drain and exit 0, and a
        `reload` share of the time SIGHUP (a `systemctl reload`, the file unchanged)."""
        restarts: set[asyncio.Task[None]] = set()
        try:
            while not until.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), self.rng.uniform(*every))
                if until.is_set():
                    break
                victim = self.rng.choice(self.members)
                if victim.name in self._paused:
                    continue
                at = time.monotonic() - self._began
                strike = self.rng.random()
                drain = strike < graceful and victim.started()
                if graceful <= strike < graceful + reload and victim.started():
                    assert victim.proc is not None
                    victim.proc.send_signal(signal.SIGHUP)
                    self.chaos.reloads.append((at, victim.name))
                    continue
                if drain:
                    assert victim.proc is not None
                    victim.proc.terminate()
                    self.chaos.restarts.append((at, victim.name))
                elif victim.kill():
                    self.chaos.kills.append((at, victim.name))
                else:
                    continue
                self._paused.add(victim.name)
                task = asyncio.create_task(
                    self._restart(victim, self.rng.uniform(*pause), drain=drain)
                )
                restarts.add(task)
                task.add_done_callback(restarts.discard)
        finally:
            await asyncio.gather(*restarts)

    async def _restart(self, member: Member, after: float, *, drain: bool) -> None:
        if drain:
            assert member.proc is not None
            code = await asyncio.to_thread(member.proc.wait, 120)
            if code != 0:
                incident = Incident(member.name, code, member.log, "did not drain on SIGTERM")
                member.incidents.append(incident)
        await asyncio.sleep(after)
        member.start()
        self._paused.discard(member.name)

    async def watching(self, until: asyncio.Event) -> None:
        while not until.is_set():
            self.watch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), 0.2)

    def complaints(self) -> tuple[list[str], list[str]]:
        """The warnings and the errors (tracebacks included) every incarnation logged."""
        warnings, errors = [], []
        for log in sorted(self.members[0].logs_dir.glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                level = line.split(" ", 3)[2] if line[:2] == "20" and line.count(" ") > 2 else ""
                if level == "WARNING":
                    warnings.append(f"{log.name}: {line}")
                elif level in ("ERROR", "CRITICAL") or line.startswith("Traceback"):
                    errors.append(f"{log.name}: {line}")
        return warnings, errors

    def incidents(self) -> list[Incident]:
        return [i for m in self.members for i in m.incidents]

    def discard(self) -> None:
        for member in self.members:
            member.discard()
