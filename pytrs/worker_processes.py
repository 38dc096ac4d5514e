"""Postmaster workers in child processes (`[postmaster] processes = N`).

Python runs one process on one core at a time; answering SMTP and routing mail then share it.
With spare cores the daemon can start children that run only the worker role
(`pytrs run --role worker --notify-stdin`) against the same database: the inbox is the hand-over,
so nothing else changes. The parent tells its children about new inbox rows through their stdin
(one line with a count per commit, so they need not poll), restarts a child that dies, passes a
reload on (a "reload N" line, answered "reloaded N ok|refused" on the child's stdout), and
stops them at shutdown by closing their stdin: a child whose stdin closes (its parent stops,
or is gone, even by `kill -9`) drains and exits, so no orphan outlives the daemon.

Memory: a child started with exec imports pytrs again, about 70 MiB of its own. So `pytrs
run` forks its first children (`prefork`) before it starts its event loop or any thread: they
run the same command line a started child would, but share the parent's imported code and
data page for page until one of them writes it (`gc.freeze` keeps the collector from writing
to every object). A child restarted later is started with exec, as before.

Metrics: with `metrics_dir`, the children count in prometheus-client's multiprocess mode in
that directory (`PROMETHEUS_MULTIPROC_DIR` in their environment only), and the parent's
`/metrics` adds their counts to its own (`metrics.exposition`). While a child is being
restarted the service "worker-processes" is reported restarting, so `/readyz` says not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

from pytrs.config import Config
from pytrs.metrics.exposition import MULTIPROC_ENV, count_in_directory
from pytrs.runtime.services import RESTARTING, RUNNING, ServiceStates

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
# A child's stdin line asking it to reload (numbered), and its answer on stdout.
RELOAD_LINE = re.compile(rb"reload (\d+)\n")
RELOAD_ANSWER = re.compile(rb"reloaded (\d+) (ok|refused)\n")
# What a child must not inherit: systemd hears the daemon alone (a child's READY=1 or STATUS=
# would speak for it).
_PARENT_ONLY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# A forked child that fails in a way the command line did not turn into an exit code.
_EXIT_SOFTWARE = 70


# How much nicer than its parent a worker child runs: when the cores are busy the kernel lets
# the process answering SMTP go first, and the child routes with the time left over.
WORKER_NICENESS = 5


def lower_priority() -> None:
    """In a worker child: step back behind the daemon's own process (never an error: a
    child that cannot change its niceness still works)."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


class Child(Protocol):
    """What the supervision needs of a child: asyncio's Process, or a `ForkedChild`."""

    pid: int

    @property
    def returncode(self) -> int | None: ...
    @property
    def stdin(self) -> asyncio.WriteTransport | asyncio.StreamWriter | None: ...
    @property
    def stdout(self) -> asyncio.StreamReader | None: ...
    async def wait(self) -> int: ...
    def send_signal(self, signal: int) -> None: ...
    def kill(self) -> None: ...


def child_arguments(config: Config) -> list[str]:
    """The command line of a worker child (without the interpreter)."""
    # A parent on the built-in defaults (`--defaults`) has a child on them too.
    start = ["--config", os.path.abspath(config.source)] if config.source else ["--defaults"]
    return [*start, "run", "--role", "worker", "--notify-stdin"]


@dataclass
class Preforked:
    """A child forked before the parent's event loop started: its pid and the parent's ends
    of its stdin and stdout pipes (owned by the parent until a `ForkedChild` adopts them)."""

    pid: int
    to_child: int
    from_child: int
    adopted: bool = False

    def abandon(self) -> None:
        """The daemon did not start: closing its stdin tells the child to drain and exit."""
        if not self.adopted:
            self.adopted = True
            for fd in (self.to_child, self.from_child):
                with contextlib.suppress(OSError):
                    os.close(fd)


def prefork(config: Config, count: int, metrics_dir: str) -> list[Preforked]:
    """Fork `count` worker children now; call before any event loop or thread exists.

    Each child runs `pytrs <child_arguments> ` in-process, its stdin and stdout being pipes to
    this process, and never returns from here (it exits with the command's status).
    """
    arguments = child_arguments(config)
    sys.stdout.flush()
    sys.stderr.flush()
    # What is imported now stays shared with the children only while nobody writes to it:
    # frozen objects are left out of every collection, which would otherwise touch them all.
    gc.collect()
    gc.freeze()
    children: list[Preforked] = []
    for _ in range(count):
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            # The parent's ends of earlier children's pipes too: a child holding another's
            # stdin open would keep it from ever seeing its parent go.
            inherited = [fd for c in children for fd in (c.to_child, c.from_child)]
            _run_forked_child(
                arguments, down_read, up_write, [down_write, up_read, *inherited], metrics_dir
            )
        os.close(down_read)
        os.close(up_write)
        children.append(Preforked(pid, down_write, up_read))
        log.info("worker process %d started (forked)", pid)
    return children


def _run_forked_child(
    arguments: Sequence[str], stdin: int, stdout: int, parents: Sequence[int], metrics_dir: str
) -> NoReturn:
    code = _EXIT_SOFTWARE
    try:
        for fd in parents:
            os.close(fd)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.close(stdin)
        os.close(stdout)
        for variable in _PARENT_ONLY_ENV:
            os.environ.pop(variable, None)
        if metrics_dir:
            os.environ[MULTIPROC_ENV] = metrics_dir
            count_in_directory()
        # Imported here: the command line imports the daemon, which imports this module.
        from pytrs.cli import main

        code = main(list(arguments))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else _EXIT_SOFTWARE
    except BaseException:  # the parent logs the exit code; the why goes to stderr
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class ForkedChild:
    """A preforked child under the event loop: pipes as transports, its exit through a pidfd
    (so that no other waiter can reap it and no reused pid can be signalled)."""

    def __init__(self, child: Preforked) -> None:
        self.pid = child.pid
        self._child = child
        self._returncode: int | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._stdout = asyncio.StreamReader()
        self._exited: asyncio.Future[int] | None = None
        self._pidfd = -1

    @property
    def returncode(self) -> int | None:
        return self._returncode

    @property
    def stdin(self) -> asyncio.WriteTransport | None:
        return self._stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        return self._stdout

    async def adopt(self) -> ForkedChild:
        loop = asyncio.get_running_loop()
        self._child.adopted = True
        self._exited = loop.create_future()
        reading = os.fdopen(self._child.from_child, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self._stdout), reading)
        writing = os.fdopen(self._child.to_child, "wb", buffering=0)
        self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, writing)
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._reap)
        self._reap()  # it may have ended before the loop started
        return self

    def _reap(self) -> None:
        if self._returncode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._returncode = os.waitstatus_to_exitcode(status)
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if self._stdin is not None:
            self._stdin.close()
        assert self._exited is not None
        if not self._exited.done():
            self._exited.set_result(self._returncode)

    async def wait(self) -> int:
        assert self._exited is not None
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self._returncode is None and self._pidfd >= 0:
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WorkerProcesses:
    """Starts, feeds, supervises and stops the worker children of one daemon."""

    NAME = "worker-processes"

    def __init__(
        self, config: Config, count: int, *, metrics_dir: str = "",
        states: ServiceStates | None = None, preforked: Sequence[Preforked] = (),
    ) -> None:  # fmt: skip
        """`preforked`: children `prefork` started for this daemon (at most `count` used)."""
        self.config = config
        self.count = count
        self.metrics_dir = metrics_dir
        self.states = states or ServiceStates()
        self.preforked = list(preforked)
        self.children: list[Child] = []
        self._stopping = False
        # The reload under way: its number and each asked child's answer (by pid).
        self._reload_number = 0
        self._answers: dict[int, asyncio.Future[str]] = {}
        self._readers: set[asyncio.Task[None]] = set()

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "pytrs", *child_arguments(self.config)]

    async def _spawn(self) -> Child:
        """A preforked child if one is left, else a new one started with exec."""
        process: Child
        if self.preforked:
            process = await ForkedChild(self.preforked.pop(0)).adopt()
        else:
            env = dict(os.environ)
            if self.metrics_dir:
                env[MULTIPROC_ENV] = self.metrics_dir
            for variable in _PARENT_ONLY_ENV:
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

    async def _read_answers(self, process: Child) -> None:
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
        self._abandon_preforked()
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

    def _abandon_preforked(self) -> None:
        for child in self.preforked:
            child.abandon()
        self.preforked = []

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
        """Close every child's stdin (they drain), then SIGKILL what is still running at
        `deadline`."""
        self._stopping = True
        self._abandon_preforked()
        for child in self.children:
            # The end of its stdin is the child's request to drain and exit: a child still
            # starting reads it once started (it ignores SIGTERM until then), and a SIGTERM as
            # well would be a second request, which means "exit now".
            if child.returncode is None and child.stdin is not None:
                child.stdin.close()
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
    log.info("stdin closed (the parent daemon stops or is gone); draining and exiting")
    on_parent_gone()


def _answer_parent(number: int) -> Callable[[asyncio.Task[bool]], None]:
    def answer(done: asyncio.Task[bool]) -> None:
        ok = not done.cancelled() and done.exception() is None and done.result()
        sys.stdout.write(f"reloaded {number} {'ok' if ok else 'refused'}\n")
        sys.stdout.flush()

    return answer
