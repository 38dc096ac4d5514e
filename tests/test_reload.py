"""`Daemon.reload()` in the test's loop: what a reload changes, service by service, with mail
flowing through a real relay and a real Dovecot; and what a refused one leaves untouched."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import text

from pytrs.config import Config
from pytrs.daemon import Daemon
from pytrs.outbound.dkim import DkimSigner
from pytrs.schema.database import Database

from .conftest import make_config, wait_until
from .dovecot import DovecotServer
from .helpers import inbox_ids, make_mail, put, send, unique_id
from .servers.relay import RecordingRelay, write_ed25519_key, write_rsa_key


class Reloading:
    """A daemon whose loader returns `make_config(database, **self.settings)`: a test changes
    `settings` as an admin edits the file, then calls `reload()`."""

    def __init__(self, database: dict[str, Any], settings: dict[str, Any]) -> None:
        self.database = database
        self.settings = settings
        self.daemon = Daemon(self.load(), loader=self.load)
        self.task: asyncio.Task[int] | None = None

    def load(self) -> Config:
        return make_config(self.database, **self.settings)

    async def start(self) -> Reloading:
        self.task = asyncio.create_task(self.daemon.run())
        started = asyncio.create_task(self.daemon.started.wait())
        await asyncio.wait({self.task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        return self

    def port(self, kind: str = "smtp") -> int:
        return next(address[1] for k, address in self.daemon.bound if k == kind)

    async def stop(self) -> int:
        assert self.task is not None
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def reloading(db: Database) -> AsyncIterator[Callable[..., Any]]:
    started: list[Reloading] = []

    async def start(database: dict[str, Any], **settings: Any) -> Reloading:
        handle = await Reloading(database, settings).start()
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.task is not None and not handle.task.done():
            await handle.stop()


def _outbound(relay: RecordingRelay) -> dict[str, Any]:
    return {
        "relay": relay.address, "poll_interval_seconds": 0.05, "timeout_seconds": 5.0,
        "retry_backoff_seconds": 0.05, "lease_seconds": 20.0,
    }  # fmt: skip


def _auto_reply(body: str) -> list[dict[str, Any]]:
    return [{"queue": "Support", "type": "auto reply", "subject": "Re: {{ article.subject }}",
             "body": body}]  # fmt: skip


def _dns(*signers: DkimSigner) -> Callable[..., bytes | None]:
    records = {
        f"{key.selector}._domainkey.{key.domain}.".encode(): key.dns_record().encode()
        for signer in signers
        for key in signer.keys.values()
    }
    return lambda name, timeout=5: records.get(name)


def _selector(raw: bytes) -> bytes:
    header = email.message_from_bytes(raw)["DKIM-Signature"]
    return dkim.util.parse_tag_value(re.sub(r"\s+", "", header).encode())[b"s"]


async def test_templates_dkim_keys_and_relay_apply_to_the_next_mail(
    database_settings: dict[str, Any], db: Database, reloading: Any, tmp_path: Path
) -> None:
    first_relay, second_relay = RecordingRelay(), RecordingRelay()
    await first_relay.start()
    await second_relay.start()
    try:
        old_key = [{"domain": "example.com", "selector": "old",
                    "private_key_file": str(write_rsa_key(tmp_path / "old.pem"))}]  # fmt: skip
        new_key = [{"domain": "example.com", "selector": "new",
                    "private_key_file": str(write_ed25519_key(tmp_path / "new.pem"))}]  # fmt: skip
        running = await reloading(
            database_settings, outbound=_outbound(first_relay), dkim_keys=old_key,
            auto_responses=_auto_reply("First wording: {{ ticket.tn }}\n"),
            web={"listen": "127.0.0.1:0"},
        )  # fmt: skip
        await send(running.port(), make_mail(sender="one@customer.example", subject="Before"))
        [before] = await first_relay.wait_for(1)
        assert b"First wording" in before.data and _selector(before.data) == b"old"

        running.settings.update(
            outbound=_outbound(second_relay), dkim_keys=new_key,
            auto_responses=_auto_reply("Second wording: {{ ticket.tn }}\n"),
        )  # fmt: skip
        assert await running.daemon.reload()
        # The web view's next request reads the new configuration.
        assert running.daemon.web is not None
        assert running.daemon.web.app.state.config is running.daemon.config
        assert running.daemon.config.outbound.relay == second_relay.address
        await send(running.port(), make_mail(sender="two@customer.example", subject="After"))
        [after] = await second_relay.wait_for(1)
        assert b"Second wording" in after.data and b"First wording" not in after.data
        assert _selector(after.data) == b"new"
        signers = [DkimSigner.from_config(running.load().dkim_keys)]
        assert dkim.verify(after.data, dnsfunc=_dns(*signers))
        await asyncio.sleep(0.3)
        assert len(first_relay.received) == 1  # nothing more went to the old relay
        assert await running.stop() == 0
    finally:
        await first_relay.stop()
        await second_relay.stop()


async def _queue_names(db: Database) -> set[str]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT name FROM queue WHERE valid_id = 1"))
        return {r[0] for r in rows}


async def test_a_file_the_database_refuses_changes_nothing(
    database_settings: dict[str, Any], db: Database, reloading: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Provisioning is the reload's last check: an auto-response from an address that is no
    system address is refused by it, and the new queue of the same file is not created."""
    running = await reloading(database_settings)
    queues = await _queue_names(db)
    running.settings.update(
        queues=[{"name": "Support"}, {"name": "Sales"}, {"name": "Billing"}, {"name": "Extra"}],
        auto_responses=[{**_auto_reply("x")[0], "sender": "nobody@example.com"}],
    )
    with caplog.at_level(logging.INFO):
        assert not await running.daemon.reload()
    assert await _queue_names(db) == queues
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert any("auto_responses[0].sender" in line for line in refused), refused
    assert "still running on the configuration loaded before" in refused[-1]
    # The running configuration still serves: mail to the old addresses is accepted.
    await send(running.port(), make_mail(message_id=unique_id()))
    assert await running.stop() == 0


async def test_a_daemon_without_a_file_refuses_to_reload(
    config: Config, db: Database, start_daemon: Any, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_daemon(config)
    with caplog.at_level(logging.INFO):
        assert not await running.daemon.reload()
    assert any("not started from a configuration file" in r.getMessage() for r in caplog.records)
    assert await running.stop() == 0


def _account(dovecot: DovecotServer, user: str, password: str) -> dict[str, Any]:
    return {
        "type": "imap", "host": dovecot.host, "port": dovecot.imap_port, "user": user,
        "password": password, "name": user, "poll_interval_seconds": 60.0,
    }  # fmt: skip


def _logins(dovecot: DovecotServer, user: str) -> int:
    return len(re.findall(rf"Login: user=<{user}>", dovecot.log_text()))


async def test_mail_accounts_added_removed_and_unchanged(
    database_settings: dict[str, Any], db: Database, reloading: Any, dovecot: DovecotServer
) -> None:
    """The unchanged account keeps its task and its IDLE connection (no new login at Dovecot,
    and the mail put after the reload arrives through it); the added one starts fetching; the
    removed one stops and leaves new mail on the server."""
    users = {}
    for name in ("kept", "gone", "new"):
        user, password = f"{name}{secrets.token_hex(4)}", secrets.token_hex(8)
        dovecot.add_user(user, password)
        users[name] = (user, password)
    kept, gone, new = users["kept"], users["gone"], users["new"]
    running = await reloading(
        database_settings, mail_accounts=[_account(dovecot, *kept), _account(dovecot, *gone)]
    )
    first = put(dovecot, kept, 1) + put(dovecot, gone, 1)
    await wait_until(lambda: _arrived(db, first), within=30)
    fetchers = running.daemon.fetchers
    [kept_task] = [t for t in fetchers.tasks if t.account.name == kept[0]]
    logins_before = _logins(dovecot, kept[0])

    running.settings["mail_accounts"] = [_account(dovecot, *kept), _account(dovecot, *new)]
    assert await running.daemon.reload()
    assert [t.account.name for t in fetchers.tasks] == [kept[0], new[0]]
    assert fetchers.tasks[0] is kept_task and not kept_task.stop.is_set()
    later = put(dovecot, kept, 1) + put(dovecot, new, 1)
    await wait_until(lambda: _arrived(db, first + later), within=30)
    # `put` logged in once for the kept account; pytrs did not log in again.
    assert _logins(dovecot, kept[0]) == logins_before + 1
    left = put(dovecot, gone, 1)
    await asyncio.sleep(2.0)
    assert left[0] not in await inbox_ids(db)
    assert len(dovecot.uids(*gone)) == 1  # still on the server

    # A changed account reconnects with its new settings (a new login) and keeps fetching.
    changed = {**_account(dovecot, *kept), "poll_interval_seconds": 30.0}
    running.settings["mail_accounts"] = [changed, _account(dovecot, *new)]
    assert await running.daemon.reload()
    assert fetchers.tasks[0] is not kept_task and fetchers.tasks[0].account == changed_config(
        running, 0
    )
    await wait_until(lambda: _logged_in(dovecot, kept[0], logins_before + 2), within=30)
    last = put(dovecot, kept, 1)
    await wait_until(lambda: _arrived(db, first + later + last), within=30)

    # Removed and put back at once: the new task waits for the old one to let go.
    accounts = running.settings["mail_accounts"]
    running.settings["mail_accounts"] = accounts[:1]
    assert await running.daemon.reload()
    running.settings["mail_accounts"] = accounts
    assert await running.daemon.reload()
    back = put(dovecot, new, 1)
    await wait_until(lambda: _arrived(db, first + later + last + back), within=30)
    names = [t.account.name for t in fetchers._running.values()]
    assert sorted(names) == sorted([kept[0], new[0]])
    assert await running.stop() == 0


def changed_config(running: Reloading, index: int) -> Any:
    return running.load().mail_accounts[index]


async def _logged_in(dovecot: DovecotServer, user: str, count: int) -> bool:
    return _logins(dovecot, user) >= count


async def _arrived(db: Database, message_ids: list[str]) -> bool:
    seen = await inbox_ids(db)
    return all(seen[m] == 1 for m in message_ids)


async def test_scheduler_templates_and_interval(
    database_settings: dict[str, Any], db: Database, reloading: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    running = await reloading(database_settings)
    scheduler = running.daemon.scheduler
    old_scan = scheduler.due_scan
    running.settings["scheduler"] = {
        "escalated_subject": "Late: {{ ticket.title",
        "interval_seconds": 7,
    }
    with caplog.at_level(logging.INFO):
        assert not await running.daemon.reload()
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused[0].startswith("reload refused: scheduler.escalated_subject: "), refused
    assert scheduler.due_scan is old_scan and scheduler.interval != 7

    running.settings["scheduler"] = {
        "escalated_subject": "Late: {{ ticket.title }}",
        "interval_seconds": 7,
    }
    assert await running.daemon.reload()
    assert scheduler.due_scan is not old_scan
    assert scheduler.due_scan.notifier.config.scheduler.escalated_subject.startswith("Late: ")
    assert scheduler.interval == 7
    job = scheduler._clock.get_job("due-scan")
    assert job.trigger.interval.total_seconds() == 7
    assert await running.stop() == 0


async def test_reloads_asked_for_during_one_fold_into_one_more(
    database_settings: dict[str, Any], db: Database, reloading: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    running = await reloading(database_settings)

    def reading() -> int:
        return sum(r.getMessage().startswith("reload: reading") for r in caplog.records)

    with caplog.at_level(logging.INFO):
        # Asked for before a reload has read the file: the same reload serves them all.
        assert await asyncio.gather(*(running.daemon.reload() for _ in range(3))) == [True] * 3
        assert reading() == 1
        # Asked for while one is under way (it read the file already): one more, after it.
        first = asyncio.create_task(running.daemon.reload())
        while reading() < 2:  # noqa: ASYNC110 (the log is what tells that it is under way)
            await asyncio.sleep(0)
        later = await asyncio.gather(*(running.daemon.reload() for _ in range(3)))
        assert await first and later == [True] * 3
    steps = [
        r.getMessage().split(" from")[0].split(":")[0]
        for r in caplog.records
        if r.getMessage().startswith(("reload: reading", "configuration reloaded"))
    ]
    assert steps == ["reload", "configuration reloaded"] * 3
    assert await running.stop() == 0
