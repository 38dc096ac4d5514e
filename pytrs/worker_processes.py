"""Postmaster workers in child processes (`[postmaster] processes = N`).

Python runs one process on one core at a time; answering SMTP and routing mail then share it.
With spare cores the daemon can start children that run only the worker role
(`pytrs run --role worker --notify-stdin`) against the same database: the inbox is the hand-over,
so nothing else changes. The parent tells its children about new inbox rows through their stdin
(one line with a count per commit, so they need not poll), restarts a child that dies, passes a
reload on (a "reload N" line, answered "reloaded N ok|refused" on the child's stdout), and
stops them with SIGTERM (they drain) at shutdown. A child whose stdin closes — its parent is
gone, even by `kill -9` — drains and exits, so no orphan outlives the daemon.

Metrics: with `metrics_dir`, the children count in prometheus-client's multiprocess mode in
that directory (`PROMETHEUS_MULTIPROC_DIR` in their environment only), and the parent's
`/metrics` adds their counts to its own (`metrics.exposition`). While a child is being
restarted the service "worker-processes" is reported restarting, so `/readyz` says not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable

from pytrs.config import Config
from pytrs.metrics.exposition import MULTIPROC_ENV
from pytrs.runtime.services import RESTARTING, RUNNING, ServiceStates

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
# A child's stdin line asking it to reload (numbered), and its answer on stdout.
RELOAD_LINE = re.compile(rb"reload (\d+)\n")
RELOAD_ANSWER = re.compile(rb"reloaded (\d+) (ok|refused)\n")


class WorkerProcesses:
    """Starts, feeds, supervises and stops the worker children of one daemon."""

    NAME = "worker-processes"

    def __init__(
        self, config: Config, count: int, *, metrics_dir: str = "",
        states: ServiceStates | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.count = count
        self.metrics_dir = metrics_dir
        self.states = states or ServiceStates()
        self.children: list[asyncio.subprocess.Process] = []
        self._stopping = False
        # The reload under way: its number and each asked child's answer (by pid).
        self._reload_number = 0
        self._answers: dict[int, asyncio.Future[str]] = {}
        self._readers: set[asyncio.Task[None]] = set()

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "pytrs"]
        if self.config.source:
            command += ["--config", os.path.abspath(self.config.source)]
        else:  # the parent runs on the built-in defaults (`--defaults`): so does the child
            command.append("--defaults")
        return [*command, "run", "--role", "worker", "--notify-stdin"]

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        if self.metrics_dir:
            env[MULTIPROC_ENV] = self.metrics_dir
        # systemd hears the daemon alone: a child's READY=1 or STATUS= would speak for it.
        for variable in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(variable, None)
        process = await asyncio.create_subprocess_exec(
            *self._command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        log.info("worker process %d started", process.pid)
        reader = asyncio.create_task(self._read_answers(process), name=f"worker-{process.pid}")
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return process

    async def _read_answers(self, process: asyncio.subprocess.Process) -> None:
        """A child's stdout until it closes: reload answers; anything else passed on."""
        assert process.stdout is not None
        async for line in process.stdout:
            found = RELOAD_ANSWER.fullmatch(line)
            if found is None:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                continue
            answer = self._answers.get(process.pid)
            if int(found[1]) == self._reload_number and answer is not None and not answer.done():
                answer.set_result(found[2].decode())

    async def run(self) -> None:
        """Keep `count` children alive until `stop()`; each restart waits a moment."""
        self.children = [await self._spawn() for _ in range(self.count)]
        self.states.set(self.NAME, RUNNING)
        watchers = [asyncio.create_task(self._watch(n)) for n in range(self.count)]
        try:
            await asyncio.gather(*watchers)
        finally:
            for watcher in watchers:
                watcher.cancel()

    async def _watch(self, slot: int) -> None:
        while True:
            code = await self.children[slot].wait()
            pid = self.children[slot].pid
            answer = self._answers.get(pid)
            if answer is not None and not answer.done():
                answer.set_result(f"exited with {code}")
            if self._stopping:
                return
            log.error("worker process %d exited with %s; restarting", pid, code)
            self.states.set(self.NAME, RESTARTING, f"worker process {pid} exited with {code}")
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            if self._stopping:
                return
            self.children[slot] = await self._spawn()
            if all(child.returncode is None for child in self.children):
                self.states.set(self.NAME, RUNNING)

    def notify(self, count: int) -> None:
        """Tell every child that `count` rows were committed (never blocks the gateway)."""
        for child in self.children:
            if child.stdin is not None and child.returncode is None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    child.stdin.write(b"%d\n" % count)

    async def reload(self, config: Config, patience: float) -> dict[int, str]:
        """Pass a reload on and wait (up to `patience` seconds) for each child's answer: "ok",
        "refused", "exited with …" or "no answer", by pid. Each child reads the same file again
        and applies it between two batches, as its parent does (a batch under way finishes as
        it started, so nothing is lost or routed twice); a child started later reads the new
        file anyway. Told through stdin rather than by SIGHUP, which would end a child still
        starting up."""
        self.config = config
        self._reload_number += 1
        loop = asyncio.get_running_loop()
        self._answers = {}
        for child in self.children:
            if child.stdin is not None and child.returncode is None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    child.stdin.write(b"reload %d\n" % self._reload_number)
                    self._answers[child.pid] = loop.create_future()
        if self._answers:
            await asyncio.wait(set(self._answers.values()), timeout=patience)
        return {pid: a.result() if a.done() else "no answer" for pid, a in self._answers.items()}

    async def stop(self, deadline: float) -> None:
        """SIGTERM every child (they drain), then SIGKILL what is still running at `deadline`."""
        self._stopping = True
        for child in self.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        for child in self.children:
            remaining = max(0.1, deadline - loop.time())
            try:
                await asyncio.wait_for(child.wait(), remaining)
            except TimeoutError:
                log.warning("worker process %d did not drain in time; killing it", child.pid)
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()


async def follow_parent(
    notify: Callable[[int], None],
    on_parent_gone: Callable[[], None],
    reload: Callable[[], asyncio.Task[bool]] | None = None,
) -> None:
    """In a child: turn stdin lines into worker notifications (a count) or reloads (each
    answered on stdout once the reload that covers it is done); stdin's end means the parent
    is gone."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        asked = RELOAD_LINE.fullmatch(line)
        if asked is not None:
            if reload is not None:
                reload().add_done_callback(_answer_parent(int(asked[1])))
            continue
        with contextlib.suppress(ValueError):
            notify(int(line))
    log.info("parent daemon is gone; draining and exiting")
    on_parent_gone()


def _answer_parent(number: int) -> Callable[[asyncio.Task[bool]], None]:
    def answer(done: asyncio.Task[bool]) -> None:
        ok = not done.cancelled() and done.exception() is None and done.result()
        sys.stdout.write(f"reloaded {number} {'ok' if ok else 'refused'}\n")
        sys.stdout.flush()

    return answer
