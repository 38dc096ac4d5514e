"""The daemon as a process: `kill -9` during a burst loses nothing, SIGTERM drains and exits 0."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text

from .conftest import wait_until
from .helpers import make_mail, unique_id
from .test_cli import pytrs, write_config

LISTENING = re.compile(r"SMTP listening on \('127\.0\.0\.1', (\d+)\)")


class DaemonProcess:
    """`python -m pytrs run` in a child process, its log in a file."""

    def __init__(self, config: Path, log: Path, *options: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
        self.log = log
        with log.open("ab") as stderr:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytrs", "--config", str(config), "run", *options],
                stdout=subprocess.DEVNULL, stderr=stderr, env=env,
            )  # fmt: skip
        self.port = self._wait_port()

    def _wait_port(self, timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = LISTENING.findall(self.log.read_text(errors="replace"))
            if found:
                return int(found[-1])
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError("daemon did not start listening")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def _send_one(port: int, message_id: str) -> bool:
    raw = make_mail(subject=f"burst {message_id}", message_id=message_id)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.sendmail("alice@customer.example", ["support@example.com"], raw)
        return True
    except (OSError, smtplib.SMTPException):
        return False


async def _article_message_ids(db: Any) -> Counter[str]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT a_message_id FROM article_data_mime"))
        return Counter(r[0] for r in rows)


def _prepared(tmp_path: Path, database_settings: dict[str, Any]) -> Path:
    config = write_config(tmp_path / "pytrs.toml", database_settings,
                          extra="[postmaster]\npoll_interval_seconds = 0.2\n")  # fmt: skip
    upgrade = pytrs(config, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    return config


async def test_kill_9_during_a_burst_loses_and_duplicates_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = _prepared(tmp_path, database_settings)
    first = DaemonProcess(config, tmp_path / "first.log")
    ids = [unique_id() for _ in range(200)]
    acked: list[str] = []
    lock = threading.Lock()

    def send(message_id: str) -> None:
        if _send_one(first.port, message_id):
            with lock:
                acked.append(message_id)

    pool = ThreadPoolExecutor(max_workers=40)
    futures = [pool.submit(send, message_id) for message_id in ids]
    end = time.monotonic() + 60
    # The senders are threads; polling their shared list is the simplest way to time the kill.
    while len(acked) < 60 and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    first.proc.kill()  # SIGKILL in the middle of the burst
    first.proc.wait(30)
    for future in futures:
        await asyncio.wrap_future(future)
    pool.shutdown()
    assert 60 <= len(acked) < 200, f"{len(acked)} acknowledged; the kill missed the burst"

    second = DaemonProcess(config, tmp_path / "second.log")
    try:

        async def every_acked_is_an_article() -> bool:
            seen = await _article_message_ids(db)
            return all(seen[m] >= 1 for m in acked)

        await wait_until(every_acked_is_an_article, within=60)
        # Whatever the first daemon accepted without answering may also be stored; nothing twice.
        async with db.connect() as conn:
            pending = (await conn.execute(text(
                "SELECT count(*) FROM inbox_message WHERE state = 'pending'"
            ))).scalar_one()  # fmt: skip
        assert pending == 0
        seen = await _article_message_ids(db)
        assert max(seen.values()) == 1
        assert all(seen[m] == 1 for m in acked)
    finally:
        assert second.stop() == 0


async def test_sigterm_drains_and_exits_zero(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = _prepared(tmp_path, database_settings)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    ids = [unique_id() for _ in range(30)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda m: _send_one(daemon.port, m), ids))
    assert all(results)
    assert daemon.stop(signal.SIGTERM) == 0
    seen = await _article_message_ids(db)
    assert all(seen[m] == 1 for m in ids), "SIGTERM exited before the inbox was drained"
    log = (tmp_path / "daemon.log").read_text()
    assert "draining" in log and "pytrs stopped" in log


CHILD_STARTED = re.compile(r"worker process (\d+) started")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent's reaper) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


async def test_worker_processes_route_drain_and_never_outlive_the_daemon(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    # The child's own poll interval is far longer than the test's wait: only the wake-up
    # through its stdin can route the mail in time, however slow the machine is.
    config = write_config(
        tmp_path / "pytrs.toml", database_settings,
        extra="[postmaster]\nprocesses = 1\npoll_interval_seconds = 120.0\n",
    )  # fmt: skip
    assert pytrs(config, "db", "upgrade").returncode == 0
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    second: DaemonProcess | None = None
    try:
        ids = [unique_id() for _ in range(40)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert all(pool.map(lambda m: _send_one(daemon.port, m), ids))

        async def all_routed() -> bool:
            seen = await _article_message_ids(db)
            return all(seen[m] == 1 for m in ids)

        await wait_until(all_routed, within=30)
        [child] = [int(p) for p in CHILD_STARTED.findall((tmp_path / "daemon.log").read_text())]
        assert _alive(child)
        assert daemon.stop(signal.SIGTERM) == 0
        assert not _alive(child)

        # A daemon killed with -9 leaves no worker behind: the child sees its stdin close.
        second = DaemonProcess(config, tmp_path / "second.log")
        log_text = ""
        for _ in range(400):
            log_text = (tmp_path / "second.log").read_text()
            if CHILD_STARTED.search(log_text):
                break
            await asyncio.sleep(0.05)
        [orphan] = [int(p) for p in CHILD_STARTED.findall(log_text)]
        second.proc.kill()
        second.proc.wait(10)
        for _ in range(300):
            if not _alive(orphan):
                break
            await asyncio.sleep(0.1)
        assert not _alive(orphan), "the worker child outlived its daemon"
    finally:  # a failed check must not leave a daemon running for the rest of the suite
        for started in (daemon, second):
            if started is not None and started.proc.poll() is None:
                started.proc.kill()
                started.proc.wait(10)


async def test_two_daemons_fetch_one_mailbox_exactly_once_and_take_over(
    tmp_path: Path, database_settings: dict[str, Any], db: Any, dovecot: Any, mailbox: Any
) -> None:
    from .helpers import inbox_ids, put

    user, password = mailbox
    account = "\n".join([
        "[[mail_accounts]]", 'type = "imap"', f'host = "{dovecot.host}"',
        f"port = {dovecot.imap_port}", f'user = "{user}"', f'password = "{password}"',
        'mode = "move"', 'name = "shared"', "poll_interval_seconds = 0.5", "lease_seconds = 3.0",
    ])  # fmt: skip
    config = _prepared(tmp_path, database_settings)
    config.write_text(config.read_text() + account + "\n")
    first = DaemonProcess(config, tmp_path / "first.log")
    second = DaemonProcess(config, tmp_path / "second.log")
    try:
        ids = put(dovecot, mailbox, 15)

        async def all_in(expected: list[str]) -> bool:
            return (await inbox_ids(db)) == Counter(expected)

        await wait_until(lambda: all_in(ids), within=30)
        async with db.connect() as conn:
            owner = (await conn.execute(text("SELECT owner FROM mailbox_state"))).scalar_one()
        leader = first if owner.endswith(f":{first.proc.pid}") else second
        follower = second if leader is first else first
        leader.proc.kill()  # the fetching daemon dies without releasing its lease
        leader.proc.wait(10)
        more = put(dovecot, mailbox, 5)
        await wait_until(lambda: all_in(ids + more), within=30)
        async with db.connect() as conn:
            owner = (await conn.execute(text("SELECT owner FROM mailbox_state"))).scalar_one()
        assert owner.endswith(f":{follower.proc.pid}")
        assert dovecot.uids(*mailbox) == []

        # Whatever the dead daemon had claimed but not routed is routed by the survivor.
        async def all_articles() -> bool:
            return len(await _article_message_ids(db)) == 20

        await wait_until(all_articles, within=40)
    finally:
        for daemon in (first, second):
            if daemon.proc.poll() is None:
                assert daemon.stop() == 0
    seen = await _article_message_ids(db)
    assert max((await inbox_ids(db)).values()) == 1 and len(seen) == 20


def _shared_bytes(pid: int) -> int:
    """Resident pages `pid` shares with other processes, from /proc/PID/smaps_rollup."""
    shared = 0
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith(("Shared_Clean:", "Shared_Dirty:")):
                shared += int(line.split()[1]) * 1024
    return shared


async def test_the_default_worker_child_is_forked_sharing_pages_and_restarted_when_killed(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    # No `processes` in the file: on two CPUs or more the daemon forks one worker child.
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    assert pytrs(config, "db", "upgrade").returncode == 0
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        log_text = (tmp_path / "daemon.log").read_text()
        forked = re.findall(r"worker process (\d+) started \(forked\)", log_text)
        if len(os.sched_getaffinity(0)) < 2:
            assert not forked  # one CPU: the workers run in the daemon's own process
            return
        [child] = [int(p) for p in forked]
        # Forked after the imports, it shares them with the daemon instead of importing its own
        # copy (a child started with exec shares only the interpreter's and libraries' files).
        assert _shared_bytes(child) > 40 * 2**20
        # It steps back behind the process answering SMTP when the cores are busy.
        parent_nice = os.getpriority(os.PRIO_PROCESS, daemon.proc.pid)
        assert os.getpriority(os.PRIO_PROCESS, child) == min(parent_nice + 5, 19)
        first = unique_id()
        assert _send_one(daemon.port, first)

        async def routed(message_id: str) -> bool:
            return (await _article_message_ids(db))[message_id] == 1

        await wait_until(lambda: routed(first), within=30)
        # The child logs its decision just after the commit the test saw: wait for the line.
        line = f"[worker {child}] pytrs.postmaster.worker: inbox"
        for _ in range(100):
            if line in daemon_log(tmp_path):
                break
            await asyncio.sleep(0.1)
        assert line in daemon_log(tmp_path)
        os.kill(child, signal.SIGKILL)
        for _ in range(300):
            restarted = re.findall(r"worker process (\d+) started$", daemon_log(tmp_path), re.M)
            if restarted:
                break
            await asyncio.sleep(0.1)
        [again] = [int(p) for p in restarted]
        assert again != child and _alive(again)
        second = unique_id()
        assert _send_one(daemon.port, second)
        await wait_until(lambda: routed(second), within=30)
        assert daemon.stop(signal.SIGTERM) == 0
        assert not _alive(again)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)


def daemon_log(tmp_path: Path) -> str:
    return (tmp_path / "daemon.log").read_text()
