"""POP3 fetching against a real Dovecot: keep and delete, UIDL deduplication across a crash
before QUIT, start-from-now, TLS variants and oversized mail."""

from __future__ import annotations

import poplib
from collections import Counter
from typing import Any

import pytest

from pytrs.config import MailAccountConfig
from pytrs.gateway.pop3 import Pop3Error, Pop3Fetcher
from pytrs.schema import mailbox_repo

from .dovecot import DovecotServer
from .helpers import inbox_ids, make_mail, put
from .pop3_server import pop3_server


def pop3_account(
    dovecot: DovecotServer, user: str, password: str, **extra: Any
) -> MailAccountConfig:
    settings = {
        "type": "pop3", "host": dovecot.host, "port": dovecot.pop3_port, "user": user,
        "password": password, "mode": "delete", "name": f"pop-{user}", "timeout_seconds": 30.0,
        **extra,
    }  # fmt: skip
    return MailAccountConfig(**settings)


def fetcher(acct: MailAccountConfig, db: Any) -> Pop3Fetcher:
    return Pop3Fetcher(acct, db, default_max_size=64 * 1024 * 1024)


async def test_delete_mode_fetches_then_deletes(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    ids = put(dovecot, mailbox, 3)
    result = await fetcher(pop3_account(dovecot, *mailbox), db).sync()
    assert result.fetched == 3 and result.acted == 3
    assert await inbox_ids(db) == Counter(ids)
    assert dovecot.count(*mailbox) == 0


async def test_keep_mode_remembers_uidls(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    ids = put(dovecot, mailbox, 2)
    acct = pop3_account(dovecot, *mailbox, mode="keep")
    assert (await fetcher(acct, db).sync()).fetched == 2
    assert (await fetcher(acct, db).sync()).fetched == 0
    more = put(dovecot, mailbox, 1)
    assert (await fetcher(acct, db).sync()).fetched == 1
    assert await inbox_ids(db) == Counter(ids + more)
    assert dovecot.count(*mailbox) == 3


class CrashBeforeQuit(Pop3Fetcher):
    """Dies after committing and marking deletions, before QUIT makes them happen."""

    async def _pass(self, client: poplib.POP3) -> Any:
        await super()._pass(client)
        raise ConnectionResetError("crash injected before QUIT")


async def test_crash_before_quit_deletes_later_without_duplicates(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    ids = put(dovecot, mailbox, 3)
    acct = pop3_account(dovecot, *mailbox)
    with pytest.raises(ConnectionResetError):
        await CrashBeforeQuit(acct, db, default_max_size=10**8).sync()
    assert dovecot.count(*mailbox) == 3  # no QUIT, no deletion
    result = await fetcher(acct, db).sync()
    assert result.fetched == 0 and result.acted == 3
    assert await inbox_ids(db) == Counter(ids)
    assert dovecot.count(*mailbox) == 0


async def test_start_from_now(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    put(dovecot, mailbox, 2)
    acct = pop3_account(dovecot, *mailbox, mode="keep", start_from_now=True)
    assert (await fetcher(acct, db).sync()).fetched == 0
    await mailbox_repo.record_success(db, acct.name)
    new = put(dovecot, mailbox, 1)
    assert (await fetcher(acct, db).sync()).fetched == 1
    assert await inbox_ids(db) == Counter(new)


@pytest.mark.parametrize("kind", ["pop3s", "pop3+starttls"])
async def test_tls_variants(
    kind: str,
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    ids = put(dovecot, mailbox, 1)
    port = dovecot.pop3s_port if kind == "pop3s" else dovecot.pop3_port
    acct = pop3_account(dovecot, *mailbox, type=kind, port=port, ca_file=str(dovecot.ca_file))
    assert (await fetcher(acct, db).sync()).fetched == 1
    assert await inbox_ids(db) == Counter(ids)


async def test_oversized_stays_and_wrong_password_is_an_error(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
) -> None:
    small = put(dovecot, mailbox, 1)
    dovecot.append(*mailbox, make_mail(subject="big", body="z" * 150_000))
    acct = pop3_account(dovecot, *mailbox, max_message_size=100_000)
    result = await fetcher(acct, db).sync()
    assert result.fetched == 1 and result.skipped == 1
    assert await inbox_ids(db) == Counter(small)
    assert dovecot.count(*mailbox) == 1
    with pytest.raises(Pop3Error):
        await fetcher(pop3_account(dovecot, mailbox[0], "nope"), db).sync()


async def test_pop3_account_runs_as_a_daemon_service(
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
    db: Any,
    database_settings: Any,
    tmp_path: Any,
) -> None:
    import asyncio

    from pytrs.gateway.fetchers import MailboxFetchers

    from .conftest import make_config, wait_until
    from .test_cli import pytrs, write_config

    settings = {
        "type": "pop3", "host": dovecot.host, "port": dovecot.pop3_port, "user": mailbox[0],
        "password": mailbox[1], "mode": "delete", "name": "pop-service",
        "poll_interval_seconds": 0.3,
    }  # fmt: skip
    fetchers = MailboxFetchers(make_config(database_settings, mail_accounts=[settings]), db)
    task = asyncio.create_task(fetchers.run())
    try:
        ids = put(dovecot, mailbox, 2)

        async def arrived() -> bool:
            return (await inbox_ids(db)) == Counter(ids)

        await wait_until(arrived, within=15)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
    extra = "\n".join(["[[mail_accounts]]", *(f"{k} = {v!r}".replace("'", '"') for k, v in
                       settings.items() if k != "poll_interval_seconds")]) + "\n"  # fmt: skip
    shown = pytrs(write_config(tmp_path / "pytrs.toml", database_settings, extra), "accounts")
    assert shown.returncode == 0, shown.stderr
    assert b"pop-service" in shown.stdout and b"fetched: 2" in shown.stdout


@pytest.mark.parametrize(
    "uidls",
    [
        pytest.param([b"nul\x00a", b"nul\x00b"], id="nul"),
        pytest.param([b"u" * 300 + b"a", b"u" * 300 + b"b"], id="over-long"),
    ],
)
async def test_uidls_a_broken_server_sends_are_stored_and_kept_apart(
    db: Any, uidls: list[bytes]
) -> None:
    # A NUL (PostgreSQL refuses it in text) used to fail the commit; a UIDL over the column's
    # 250 characters was cut, so a later message sharing its first 250 looked seen and was
    # never fetched.
    first, second = (
        (uidl, make_mail(subject=f"m{i}").replace(b"\n", b"\r\n")) for i, uidl in enumerate(uidls)
    )
    mails = [first]
    with pop3_server(mails) as port:
        acct = MailAccountConfig(
            type="pop3",
            host="127.0.0.1",
            port=port,
            user="u",
            password="p",
            mode="keep",
            name="broken-pop",
            timeout_seconds=10.0,
        )
        assert (await fetcher(acct, db).sync()).fetched == 1
        mails.append(second)
        assert (await fetcher(acct, db).sync()).fetched == 1
        assert (await fetcher(acct, db).sync()).fetched == 0  # both remembered, apart
    assert sum((await inbox_ids(db)).values()) == 2
