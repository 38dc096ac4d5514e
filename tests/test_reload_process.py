"""SIGHUP on a real `pytrs run` process, with mail flowing: nothing lost, sessions kept, every
error of a refused file logged, systemd told, worker children reloaded too."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from .conftest import wait_until
from .helpers import make_mail, unique_id

LISTENING = re.compile(r"SMTP listening on \('127\.0\.0\.1', (\d+)\)")
OPS_LISTENING = re.compile(r"ops endpoints listening on \('127\.0\.0\.1', (\d+)\)")
SALES = (
    '[[queues]]\nname = "Sales"\n'
    '[[system_addresses]]\naddress = "sales@example.com"\nqueue = "Sales"\n'
)


def config_text(database: dict[str, Any], *, extra: str = "", web: str = "") -> str:
    """A whole file (tables appear once each, so tests write it whole rather than append)."""
    lines = ["[database]", f'url = "{database["url"]}"']
    if database.get("schema"):
        lines.append(f'schema = "{database["schema"]}"')
    lines += [
        "[smtp]", 'listen = ["127.0.0.1:0"]', "[web]", 'listen = ""', web,
        "[[queues]]", 'name = "Support"',
        "[[system_addresses]]", 'address = "support@example.com"', 'queue = "Support"',
    ]  # fmt: skip
    return "\n".join(lines) + "\n" + extra


class Daemon:
    """`python -m pytrs run` in a child process, its log in a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
        self.log = log
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytrs", "--config", str(config), "run"],
                stdout=subprocess.DEVNULL, stderr=stderr, env={**base, **(env or {})},
            )  # fmt: skip
        self.port = int(self.wait_for(LISTENING).group(1))

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(
        self, pattern: re.Pattern[str], count: int = 1, timeout: float = 60
    ) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = list(pattern.finditer(self.text()))
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{pattern.pattern!r} ×{count} not logged: {self.text()[-3000:]}")

    def reload(self, *, outcome: str = "configuration reloaded") -> None:
        """SIGHUP, then wait until `outcome` has been logged once more."""
        pattern = re.compile(re.escape(outcome))
        done = len(pattern.findall(self.text())) + 1
        self.proc.send_signal(signal.SIGHUP)
        self.wait_for(pattern, done)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _send(port: int, message_id: str, rcpt: str = "support@example.com") -> bool:
    raw = make_mail(subject=f"flow {message_id}", message_id=message_id)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.sendmail("alice@customer.example", [rcpt], raw)
        return True
    except (OSError, smtplib.SMTPException):
        return False


async def _articles(db: Any) -> Counter[str]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT a_message_id FROM article_data_mime"))
        return Counter(r[0] for r in rows)


class MailFlow:
    """Threads sending mail over fresh connections until stopped; records what was acked."""

    def __init__(self, port: int, threads: int = 2) -> None:
        self.port = port
        self.acked: list[str] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message_id = unique_id()
            (self.acked if _send(self.port, message_id) else self.failed).append(message_id)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


async def test_sighup_while_mail_flows_loses_nothing_and_keeps_sessions(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    base = config_text(database_settings, extra="[postmaster]\npoll_interval_seconds = 0.2\n")
    config = tmp_path / "pytrs.toml"  # the `db` fixture migrated the database
    config.write_text(base)
    daemon = Daemon(config, tmp_path / "daemon.log")
    held: smtplib.SMTP | None = None
    try:
        # A session opened before the reloads, used again after them.
        held = smtplib.SMTP("127.0.0.1", daemon.port, timeout=20)
        first, last = unique_id(), unique_id()
        held.sendmail("held@customer.example", ["support@example.com"],
                      make_mail(subject="held 1", message_id=first))  # fmt: skip
        flow = MailFlow(daemon.port)
        await asyncio.sleep(0.5)
        # A new queue and address: accepted right after the reload, no 2 s refresh wait.
        config.write_text(base + SALES)
        await asyncio.to_thread(daemon.reload)
        sales = unique_id()
        assert _send(daemon.port, sales, "sales@example.com")
        # Removed again, with two signals at once: they coalesce, never run side by side.
        config.write_text(base)
        daemon.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(daemon.reload)
        await asyncio.sleep(1.0)  # a coalesced reload may still follow
        with (
            pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
            smtplib.SMTP("127.0.0.1", daemon.port, timeout=20) as client,
        ):
            client.sendmail("alice@customer.example", ["sales@example.com"], make_mail())
        assert refused.value.recipients["sales@example.com"][0] == 550
        held.sendmail("held@customer.example", ["support@example.com"],
                      make_mail(subject="held 2", message_id=last))  # fmt: skip
        await asyncio.to_thread(daemon.reload)
        await asyncio.sleep(0.5)
        flow.stop()
        held.quit()
        held = None
        assert not flow.failed, f"{len(flow.failed)} mails refused during the reloads"
        assert len(flow.acked) > 20, "too little mail flowed to mean anything"
        wanted = [first, last, sales, *flow.acked]

        async def all_stored() -> bool:
            seen = await _articles(db)
            return all(seen[m] >= 1 for m in wanted)

        await wait_until(all_stored, within=60)
        assert daemon.stop() == 0
        seen = await _articles(db)
        assert all(seen[m] == 1 for m in wanted) and max(seen.values()) == 1
        log = daemon.text()
        # One reload at a time: every start is followed by its end before the next start (in
        # the daemon's own lines; its worker child logs its own reloads, labelled).
        own = "\n".join(line for line in log.splitlines() if "[worker " not in line)
        steps = re.findall(r"reload: reading|configuration reloaded", own)
        assert steps == ["reload: reading", "configuration reloaded"] * (len(steps) // 2)
        assert 3 <= len(steps) // 2 <= 4
        assert "Traceback" not in log
    finally:
        if held is not None:
            held.close()
        daemon.kill()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _reloads(port: int, result: str) -> float:
    found = re.search(rf'pytrs_config_reloads_total{{result="{result}"}} (\S+)', _metrics(port))
    return float(found.group(1)) if found else 0.0


class NotifySocket:
    """What systemd would read from NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.path = os.path.join(tempfile.mkdtemp(prefix="pytrs-notify-"), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)

    def messages(self) -> list[str]:
        """What arrived since the last call, but the watchdog's `STATUS=` figures, which
        come every few seconds whatever the daemon is doing."""
        out = []
        while True:
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                return out
            if not message.startswith("STATUS="):
                out.append(message)

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(os.path.dirname(self.path))


async def test_a_broken_file_is_refused_with_every_error_then_a_fixed_one_applies(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    web = 'metrics_listen = "127.0.0.1:0"'
    good = config_text(database_settings, web=web)
    config = tmp_path / "pytrs.toml"  # the `db` fixture migrated the database
    config.write_text(good)
    notify = NotifySocket()
    daemon = Daemon(config, tmp_path / "daemon.log", env={"NOTIFY_SOCKET": notify.path})
    try:
        ops = int(daemon.wait_for(OPS_LISTENING).group(1))
        assert notify.messages() == ["READY=1"]
        # Three mistakes: two values out of range, an address of a queue that is not declared.
        broken = good + "[postmaster]\nbatch_size = 0\n" + SALES.replace('Sales"\n[[', 'Sa"\n[[')
        config.write_text(broken.replace("[smtp]", "[smtp]\nmax_recipients = 0"))
        refusal = partial(daemon.reload, outcome="still running on the configuration")
        await asyncio.to_thread(refusal)
        log = daemon.text()
        refused = [line for line in log.splitlines() if "reload refused: " in line]
        assert any("reload refused: smtp.max_recipients: " in line for line in refused), refused
        assert any("reload refused: postmaster.batch_size: " in line for line in refused)
        assert any("system_addresses[1].queue" in line for line in refused), refused
        assert "reload refused: 3 error(s)" in refused[-1] and len(refused) == 4
        assert _reloads(ops, "refused") == 1 and _reloads(ops, "ok") == 0
        assert _send(daemon.port, unique_id())  # still serving, on the old configuration
        sent = notify.messages()
        assert sent[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert sent[1:] == ["READY=1\nSTATUS=reload refused; previous configuration kept"]

        # Fixed, and quieter: WARNING stops the INFO lines; a restart-only key is named.
        fixed = good + '[daemon]\nlog_level = "WARNING"\n'
        fixed = fixed.replace("[smtp]", "[smtp]\nmax_recipients = 2").replace(
            "[database]", "[database]\npool_size = 3"
        )
        config.write_text(fixed)
        daemon.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: asyncio.to_thread(_reloads, ops, "ok"), within=30)
        assert "database.pool_size changed: takes effect at the next restart" in daemon.text()
        assert notify.messages()[-1] == "READY=1\nSTATUS=configuration reloaded"
        quiet_from = len(daemon.text())
        message_id = unique_id()
        assert _send(daemon.port, message_id)
        await wait_until(lambda: _has(db, message_id), within=30)
        # The new recipient limit holds for the next session.
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=20) as client:
            rcpts = ["support@example.com"] * 3
            too_many = client.sendmail("a@customer.example", rcpts, make_mail())
        assert too_many["support@example.com"][0] == 452, too_many
        assert " INFO " not in daemon.text()[quiet_from:]
        config.write_text(good)
        await asyncio.to_thread(daemon.reload)  # logged at INFO again
        assert _reloads(ops, "ok") == 2
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        notify.close()


async def _has(db: Any, message_id: str) -> bool:
    return (await _articles(db))[message_id] == 1


async def test_sighup_during_shutdown_is_ignored(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = tmp_path / "pytrs.toml"  # the `db` fixture migrated the database
    config.write_text(config_text(database_settings, extra="[daemon]\ndrain_seconds = 2.0\n"))
    daemon = Daemon(config, tmp_path / "daemon.log")
    client = None
    try:
        # A session in DATA holds the shutdown for a moment (its grace), long enough to signal.
        client = smtplib.SMTP("127.0.0.1", daemon.port, timeout=20)
        client.ehlo()
        client.mail("alice@customer.example")
        client.rcpt("support@example.com")
        client.putcmd("DATA")
        assert client.getreply()[0] == 354
        client.send(b"Subject: unfinished\r\n")
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_for(re.compile("stop requested"))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for(re.compile("SIGHUP during shutdown: ignored"))
        assert daemon.proc.wait(60) == 0
        assert "reload: reading" not in daemon.text()
    finally:
        if client is not None:  # an open socket left to the collector fails a later test
            client.close()
        daemon.kill()


async def test_worker_children_apply_the_reload(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    """With `[postmaster] processes = 1` the routing happens in a child: a routing rule added
    to the file (an external ticket number) applies to the next mail after SIGHUP."""
    base = config_text(
        database_settings, extra="[postmaster]\nprocesses = 1\npoll_interval_seconds = 0.2\n"
    )
    rule = (
        '[[external_ticket_numbers]]\nname = "vendor"\nnumber_pattern = "Incident-(\\\\d{6})"\n'
        'dynamic_field = "Vendor"\n'
    )
    config = tmp_path / "pytrs.toml"  # the `db` fixture migrated the database
    config.write_text(base)
    notify = NotifySocket()
    daemon = Daemon(config, tmp_path / "daemon.log", env={"NOTIFY_SOCKET": notify.path})
    try:
        daemon.wait_for(re.compile(r"worker process \d+ started"))
        before, after = unique_id(), unique_id()
        assert _send_subject(daemon.port, before, "Incident-111111 opened")
        await wait_until(lambda: _has(db, before), within=30)
        config.write_text(base + rule)
        flow = MailFlow(daemon.port, threads=1)
        await asyncio.to_thread(daemon.reload)
        # The parent says it is done once its child (same log) has applied the reload too.
        applied = re.compile("configuration reloaded from")
        await asyncio.to_thread(daemon.wait_for, applied, 2)
        assert _send_subject(daemon.port, after, "Incident-222222 opened")
        flow.stop()
        assert not flow.failed

        async def routed() -> bool:
            seen = await _articles(db)
            return all(seen[m] == 1 for m in [before, after, *flow.acked])

        await wait_until(routed, within=60)
        assert await _vendor_numbers(db) == ["222222"]
        assert len(re.findall(r"worker process \d+ started", daemon.text())) == 1
        assert "did not apply the reload" not in daemon.text()
        assert daemon.stop() == 0
        seen = await _articles(db)
        assert max(seen.values()) == 1
        # The daemon alone speaks to systemd: its child says nothing on the socket.
        said = notify.messages()
        assert said.count("READY=1") == 1 and said[0] == "READY=1", said
    finally:
        daemon.kill()
        notify.close()


def _send_subject(port: int, message_id: str, subject: str) -> bool:
    raw = make_mail(subject=subject, message_id=message_id)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.sendmail("desk@vendor.example", ["support@example.com"], raw)
    return True


async def _vendor_numbers(db: Any) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT v.value_text FROM dynamic_field_value v JOIN dynamic_field f"
            " ON f.id = v.field_id WHERE f.name = 'Vendor'"
        ))  # fmt: skip
        return [r[0] for r in rows]
