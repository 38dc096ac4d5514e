"""systemd's watchdog and STATUS= line, heard on a real AF_UNIX datagram socket (NOTIFY_SOCKET).

A `pytrs run` process with WATCHDOG_USEC says READY=1, pings regularly and reports the figures
as mail comes and its auto-replies are deferred by the relay; in-process daemons show that a
blocked event loop sends no ping, that a service which keeps crashing stops the pings (and the
STATUS line names it), and that without WATCHDOG_USEC nothing is pinged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytrs.metrics.status import StatusReader
from pytrs.outbound.sender import OutboxSender
from pytrs.runtime.services import ServiceStates, supervise
from pytrs.runtime.systemd import watchdog_seconds
from pytrs.runtime.watchdog import Watchdog
from pytrs.schema.database import create_database

from ..conftest import make_config, wait_until
from ..helpers import make_mail, send
from ..servers.relay import RecordingRelay
from ..test_cli import pytrs, write_config
from ..test_lifecycle import DaemonProcess
from .conftest import AUTO_REPLY

DEFER = "451 4.3.0 try again later"


class NotifySocket:
    """What systemd would hear: every datagram with the (monotonic) time it arrived."""

    def __init__(self) -> None:
        # A short path: AF_UNIX addresses are limited to 108 bytes.
        self.directory = tempfile.mkdtemp(prefix="pytrs-notify-", dir="/tmp")
        self.path = os.path.join(self.directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.heard: list[tuple[float, str]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.heard.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self._closed = True
        self._thread.join()
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def pings(self, after: float = 0.0, before: float = float("inf")) -> list[float]:
        return [at for at, text in list(self.heard) if text == "WATCHDOG=1" and after < at < before]

    async def hears(self, check: Any, within: float = 20.0) -> str:
        """The first message (in order) for which `check` holds; fails after `within` s."""

        async def found() -> str | None:
            return next((text for _, text in list(self.heard) if check(text)), None)

        return str(await wait_until(found, within=within))


@pytest.fixture
def notify(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    listener = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_a_daemon_process_pings_and_reports_its_figures(
    tmp_path: Path, database_settings: dict[str, Any], relay: RecordingRelay,
    notify: NotifySocket, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    extra = f"""
[postmaster]
poll_interval_seconds = 0.2
[outbound]
relay = "{relay.address}"
poll_interval_seconds = 0.1
timeout_seconds = 5.0
retry_backoff_seconds = 600.0
{AUTO_REPLY}"""
    config = write_config(tmp_path / "pytrs.toml", database_settings, extra)
    assert pytrs(config, "db", "upgrade").returncode == 0
    relay.rcpt_replies["alice@customer.example"] = DEFER
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every half second
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        await notify.hears(lambda text: text == "READY=1")
        assert "STATUS=starting: provisioning" in [t for _, t in notify.heard]
        await notify.hears(
            lambda t: t.startswith("STATUS=inbox 0 waiting, outbox 0 to send, 0 deferred")
        )
        for n in range(2):
            await send(daemon.port, make_mail(subject=f"Help {n}"))
        # The auto-replies reach the relay, which defers them: the figures move.
        await notify.hears(lambda t: t.startswith("STATUS=") and "2 deferred" in t, within=30)
        ready_at = next(at for at, text in notify.heard if text == "READY=1")
        pings = notify.pings(after=ready_at)
        assert len(pings) >= 5, notify.heard
        # Half the interval apart; a loaded machine may be a little late, never absent.
        assert max(_gaps(pings)) < 0.95, _gaps(pings)
        # Bob's auto-reply is held at the relay: the drain waits for the mail in hand.
        relay.data_faults.append("hold")
        await send(
            daemon.port, make_mail(sender="Bob <bob@customer.example>"), sender="bob@x.example"
        )
        await asyncio.wait_for(relay.held.wait(), 30)
        daemon.proc.send_signal(signal.SIGTERM)
        await notify.hears(lambda t: t == "STATUS=stopping: draining 0 inbox rows")
        relay.released.set()
        assert await asyncio.to_thread(daemon.proc.wait, 60) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
    heard = [text for _, text in notify.heard]
    assert heard.index("STOPPING=1") < heard.index("STATUS=stopping: draining 0 inbox rows")


async def test_a_blocked_loop_sends_no_ping(
    database_settings: dict[str, Any], start_daemon: Any, notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    await start_daemon(make_config(database_settings))
    await asyncio.sleep(1.0)
    assert len(notify.pings()) >= 3
    blocked_at = time.monotonic()
    # The daemon shares this loop: a callback that never yields, as a CPU-bound bug would.
    time.sleep(1.5)  # noqa: ASYNC251
    resumed_at = time.monotonic()
    await asyncio.sleep(1.0)
    # A ping sent just before the block may arrive a moment later; nothing else may.
    assert notify.pings(after=blocked_at + 0.1, before=resumed_at) == []
    assert len(notify.pings(after=resumed_at)) >= 3


async def test_a_service_that_keeps_crashing_stops_the_pings(
    database_settings: dict[str, Any], start_daemon: Any, relay: RecordingRelay,
    notify: NotifySocket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    async def exploding(self: OutboxSender) -> None:
        raise RuntimeError("relay table exploded")

    monkeypatch.setattr(OutboxSender, "run", exploding)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    config = make_config(
        database_settings, outbound={"relay": relay.address}, daemon={"drain_seconds": 1.0}
    )
    started = time.monotonic()
    running = await start_daemon(config)
    status = await notify.hears(
        lambda t: t.startswith("STATUS=outbox-sender restarting: crashed with RuntimeError")
    )
    assert "relay table exploded" in status and "inbox 0 waiting" in status
    # The supervisor waits 1 s, 2 s, 4 s … before its restarts, and the sender crashes again
    # at once each time: down since its first crash, past the 1 s interval the daemon no
    # longer earns its pings, not even in the moments the sender is marked running.
    await wait_until(lambda: _silent_for(notify, 1.5), within=10)
    await asyncio.sleep(3.0)  # across the next restart (at 3 s) and into the one after
    assert await _silent_for(notify, 4.0)
    assert notify.pings(after=started), "pings never started"
    assert any(
        "watchdog pings stopped" in r.getMessage() and "outbox-sender" in r.getMessage()
        for r in caplog.records
    )
    said = [r for r in caplog.records if "watchdog pings stopped" in r.getMessage()]
    assert len(said) == 1, "the reason is logged once"
    running.daemon.request_stop()


async def _silent_for(notify: NotifySocket, seconds: float) -> bool:
    last = max(notify.pings(), default=0.0)
    return time.monotonic() - last > seconds


async def test_without_watchdog_usec_nothing_is_pinged(
    database_settings: dict[str, Any], start_daemon: Any, notify: NotifySocket
) -> None:
    await start_daemon(make_config(database_settings))
    await notify.hears(lambda text: text == "READY=1")
    await notify.hears(lambda text: text.startswith("STATUS=inbox 0 waiting"))
    await asyncio.sleep(1.5)
    assert notify.pings() == []


async def test_a_service_dead_for_good_stops_the_pings(notify: NotifySocket) -> None:
    """A supervisor that gave up leaves its service stopped with the crash: no ping, and the
    STATUS line names it."""
    states = ServiceStates()

    async def broken() -> None:
        raise OSError("no route to the relay")

    with pytest.raises(OSError):
        await supervise("outbox-sender", broken, max_restarts=0, states=states)

    async def figures(stopping: bool) -> str:
        return "inbox 0 waiting"

    watchdog = Watchdog(states, figures, stopping=asyncio.Event(), interval=0.2)
    task = asyncio.create_task(watchdog.run())
    try:
        status = await notify.hears(lambda t: t.startswith("STATUS="))
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
    assert status == (
        "STATUS=outbox-sender stopped: crashed with OSError: no route to the relay; inbox 0 waiting"
    )
    assert notify.pings() == []
    assert watchdog.silenced.startswith("outbox-sender stopped for good")


async def test_a_service_restarted_in_time_keeps_the_pings(notify: NotifySocket) -> None:
    states = ServiceStates()
    states.set("inbox-writer", "running")

    async def figures(stopping: bool) -> str:
        return "inbox 0 waiting"

    watchdog = Watchdog(states, figures, stopping=asyncio.Event(), interval=0.6)
    task = asyncio.create_task(watchdog.run())
    try:
        await asyncio.sleep(0.5)
        states.set("inbox-writer", "restarting", "crashed with OSError: disk full")
        await notify.hears(lambda t: t.startswith("STATUS=inbox-writer restarting: crashed"))
        await asyncio.sleep(0.2)
        states.set("inbox-writer", "running")
        await asyncio.sleep(1.5)
    finally:
        task.cancel()
    assert max(_gaps(notify.pings())) < 0.5, _gaps(notify.pings())
    assert watchdog.silenced == ""


def test_watchdog_pid_of_another_process_is_not_ours() -> None:
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    # A worker child inherits its parent's environment: the parent is the one watched.
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_seconds({}) is None


async def test_a_database_outage_shows_in_the_status() -> None:
    # A PostgreSQL server that is down: nothing listens on port 1.
    config = make_config({"url": "postgresql+asyncpg://postgres@127.0.0.1:1/test"})
    db = create_database(config.database)
    try:
        line = await StatusReader(config, db).read()
        stopping = await StatusReader(config, db).read(stopping=True)
    finally:
        await db.close()
    assert line.startswith("database not answering: ")
    assert stopping.startswith("stopping: database not answering: ")
