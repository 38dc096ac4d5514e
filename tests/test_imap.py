"""IMAP fetching against a real Dovecot: modes, exactly-once across crashes and UIDVALIDITY
changes, start-from-now, TLS, IDLE push, isolation of a failing account, oversized mail, and two
fetchers sharing one account."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.config import MailAccountConfig
from pytrs.gateway.fetchers import MailboxFetchers
from pytrs.gateway.imap import ImapFetcher, ImapSession, SyncResult
from pytrs.schema import mailbox_repo
from pytrs.schema.database import create_database

from .conftest import make_config, wait_until
from .dovecot import DovecotServer
from .helpers import inbox_ids, make_mail, put


def account_settings(
    dovecot: DovecotServer, user: str, password: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "imap", "host": dovecot.host, "port": dovecot.imap_port, "user": user,
        "password": password, "mode": "keep", "name": f"acct-{user}",
        "poll_interval_seconds": 60.0, "timeout_seconds": 30.0, **extra,
    }  # fmt: skip


def account(dovecot: DovecotServer, user: str, password: str, **extra: Any) -> MailAccountConfig:
    return MailAccountConfig(**account_settings(dovecot, user, password, **extra))


async def sync_once(
    acct: MailAccountConfig, db: Any, fetcher_class: type[ImapFetcher] = ImapFetcher
) -> SyncResult:
    fetcher = fetcher_class(acct, db, default_max_size=64 * 1024 * 1024)
    session = ImapSession(acct, acct.resolve_password())
    try:
        await session.open(fetcher.readonly)
        return await fetcher.sync(session)
    finally:
        await session.close()


async def test_keep_mode_fetches_once_and_leaves_mail_unseen(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 3)
    acct = account(dovecot, *mailbox, mode="keep")
    assert (await sync_once(acct, db)).fetched == 3
    assert (await sync_once(acct, db)).fetched == 0  # the cursor remembers
    more = put(dovecot, mailbox, 1)
    assert (await sync_once(acct, db)).fetched == 1
    assert await inbox_ids(db) == Counter(ids + more)
    assert dovecot.count(*mailbox) == 4
    assert all("\\Seen" not in flags for flags in dovecot.flags(*mailbox).values())  # PEEK


@pytest.mark.parametrize("mode", ["move", "delete"])
async def test_move_and_delete_act_after_commit(
    mode: str, dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 3)
    acct = account(dovecot, *mailbox, mode=mode, move_to="Done")
    result = await sync_once(acct, db)
    assert result.fetched == 3 and result.acted == 3
    assert await inbox_ids(db) == Counter(ids)
    assert dovecot.uids(*mailbox) == []
    if mode == "move":
        assert len(dovecot.uids(*mailbox, folder="Done")) == 3


class CrashBeforeServerAction(ImapFetcher):
    """The process dies right after the inbox commit, before the server hears about it."""

    async def _act(self, session: ImapSession, uids: list[int]) -> None:
        raise ConnectionResetError("crash injected between inbox commit and server action")


class CrashAfterFirstBatch(ImapFetcher):
    calls = 0

    async def _store_batch(self, session: ImapSession, batch: list[int], cursor: Any) -> Any:
        CrashAfterFirstBatch.calls += 1
        if CrashAfterFirstBatch.calls > 1:
            raise ConnectionResetError("crash injected in the middle of a pass")
        return await super()._store_batch(session, batch, cursor)


async def test_crash_between_commit_and_server_action_makes_no_duplicate(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 4)
    acct = account(dovecot, *mailbox, mode="move")
    with pytest.raises(ConnectionResetError):
        await sync_once(acct, db, CrashBeforeServerAction)
    assert await inbox_ids(db) == Counter(ids)
    assert len(dovecot.uids(*mailbox)) == 4  # still on the server
    result = await sync_once(acct, db)  # the restarted fetcher
    assert result.fetched == 0 and result.acted == 4
    assert await inbox_ids(db) == Counter(ids)  # exactly once
    assert dovecot.uids(*mailbox) == []


async def test_restart_in_the_middle_of_a_pass(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 5)
    acct = account(dovecot, *mailbox, mode="delete", batch_size=2)
    CrashAfterFirstBatch.calls = 0
    with pytest.raises(ConnectionResetError):
        await sync_once(acct, db, CrashAfterFirstBatch)
    assert len(await inbox_ids(db)) == 2
    await sync_once(acct, db)
    assert await inbox_ids(db) == Counter(ids)
    assert dovecot.uids(*mailbox) == []


async def test_uidvalidity_change_neither_duplicates_nor_skips(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 2)
    acct = account(dovecot, *mailbox, mode="keep")
    await sync_once(acct, db)
    before = dovecot.uidvalidity(*mailbox)
    dovecot.reset_uidvalidity(mailbox[0])
    assert dovecot.uidvalidity(*mailbox) != before
    more = put(dovecot, mailbox, 1)
    await sync_once(acct, db)
    assert await inbox_ids(db) == Counter(ids + more)
    cursor = await mailbox_repo.get_cursor(db, acct.name, "INBOX")
    assert cursor is not None and cursor.uidvalidity == dovecot.uidvalidity(*mailbox)


async def test_start_from_now_skips_existing_mail(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    put(dovecot, mailbox, 3)
    acct = account(dovecot, *mailbox, mode="keep", start_from_now=True)
    assert (await sync_once(acct, db)).fetched == 0
    new = put(dovecot, mailbox, 2)
    assert (await sync_once(acct, db)).fetched == 2
    assert await inbox_ids(db) == Counter(new)


@pytest.mark.parametrize("kind", ["imaps", "imap+starttls"])
async def test_tls_variants(
    kind: str, dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(dovecot, mailbox, 1)
    port = dovecot.imaps_port if kind == "imaps" else dovecot.imap_port
    acct = account(dovecot, *mailbox, type=kind, port=port, ca_file=str(dovecot.ca_file))
    assert (await sync_once(acct, db)).fetched == 1
    assert await inbox_ids(db) == Counter(ids)


async def test_oversized_mail_stays_on_the_server_and_is_reported(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    small = put(dovecot, mailbox, 1)
    big = make_mail(subject="big", body="y" * 200_000)
    dovecot.append(*mailbox, big)
    acct = account(dovecot, *mailbox, mode="delete", max_message_size=100_000)
    result = await sync_once(acct, db)
    assert result.fetched == 1 and result.skipped == 1
    assert await inbox_ids(db) == Counter(small)
    assert len(dovecot.uids(*mailbox)) == 1  # the big one is left
    [state] = await mailbox_repo.states(db)
    assert '"size"' in state["skipped"]


async def test_a_30_mb_message_arrives_intact(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any
) -> None:
    body = ("0123456789abcdef" * 64 + "\n") * 29_000  # about 30 MB of text
    raw = make_mail(subject="thirty megabytes", body=body)
    dovecot.append(*mailbox, raw)
    acct = account(dovecot, *mailbox, mode="delete", max_message_size=40 * 1024 * 1024)
    assert (await sync_once(acct, db)).fetched == 1
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT raw FROM inbox_message"))).scalar_one()
    assert len(stored) > 29 * 1024 * 1024
    assert stored.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


async def test_idle_push_and_a_wrong_password_isolated(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any, database_settings: Any
) -> None:
    good = account_settings(dovecot, *mailbox, mode="delete")
    bad = account_settings(dovecot, mailbox[0], "wrong-password", name="broken")
    config = make_config(database_settings, mail_accounts=[bad, good])
    fetchers = MailboxFetchers(config, db)
    task = asyncio.create_task(fetchers.run())
    try:

        async def failed_login_recorded() -> bool:
            return any(s["account"] == "broken" and s["last_error"]
                       for s in await mailbox_repo.states(db))  # fmt: skip

        await wait_until(failed_login_recorded, within=20)
        # The poll interval is 60 s: only IDLE can bring this message in quickly.
        await asyncio.sleep(1.0)
        ids = put(dovecot, mailbox, 1)

        async def arrived() -> bool:
            return (await inbox_ids(db)) == Counter(ids)

        await wait_until(arrived, within=10)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
    assert "auth" in dovecot.log_text().lower()
    states = {s["account"]: s for s in await mailbox_repo.states(db)}
    assert "LOGIN failed" in states["broken"]["last_error"]
    assert states[f"acct-{mailbox[0]}"]["last_success_at"] is not None


async def test_mail_announced_outside_idle_wakes_the_next_idle(
    dovecot: DovecotServer, mailbox: tuple[str, str]
) -> None:
    """Mail that lands after a pass's SEARCH is announced once, in the answer to whatever
    command runs next (or unasked); IDLE must not then wait out its timeout for news the server
    already gave. Seen in CI: a reconnected account left a mail for its 30 s poll interval."""
    acct = account(dovecot, *mailbox)
    session = ImapSession(acct, acct.resolve_password())
    try:
        await session.open(readonly=True)
        assert await session.uids() == []
        put(dovecot, mailbox, 1)
        assert session.client is not None
        await session.client.noop()  # the EXISTS goes to this command's answer
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await session.idle(asyncio.Event(), seconds=20) is True
        assert loop.time() - started < 5
        await session.select(readonly=True)
        assert len(await session.uids()) == 1
        # After the new SELECT, nothing is pending: IDLE waits for the next change.
        assert await session.idle(asyncio.Event(), seconds=1) is False
    finally:
        await session.close()


async def test_two_fetchers_share_one_account_without_duplicates(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any, database_settings: Any
) -> None:
    settings = account_settings(dovecot, *mailbox, mode="move", poll_interval_seconds=0.3)
    config = make_config(database_settings, mail_accounts=[settings])
    engines = [create_database(config.database) for _ in range(2)]
    fetchers = [
        MailboxFetchers(config, engine, owner=f"daemon-{n}", lease_seconds=3.0)
        for n, engine in enumerate(engines)
    ]
    tasks = [asyncio.create_task(f.run()) for f in fetchers]
    try:
        ids = put(dovecot, mailbox, 10)

        async def all_in() -> bool:
            return (await inbox_ids(db)) == Counter(ids)

        await wait_until(all_in, within=20)
        [state] = await mailbox_repo.states(db)
        leader = int(str(state["owner"]).rsplit("-", 1)[1])
        # The leader dies without a goodbye; the other takes over once the lease runs out.
        tasks[leader].cancel()
        more = put(dovecot, mailbox, 3)

        async def taken_over() -> bool:
            return (await inbox_ids(db)) == Counter(ids + more)

        await wait_until(taken_over, within=30)
        [state] = await mailbox_repo.states(db)
        assert state["owner"] == f"daemon-{1 - leader}"
    finally:
        for f in fetchers:
            f.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in engines:
            await engine.close()
    assert max((await inbox_ids(db)).values()) == 1


async def test_a_hung_server_times_out_without_stopping_the_others(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any, database_settings: Any
) -> None:
    # A server that accepts the connection and then never says a word.
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    hung = account_settings(dovecot, "x", "y", port=port, name="hung", timeout_seconds=1.0)
    good = account_settings(dovecot, *mailbox, mode="delete", poll_interval_seconds=0.5)
    fetchers = MailboxFetchers(make_config(database_settings, mail_accounts=[hung, good]), db)
    task = asyncio.create_task(fetchers.run())
    try:
        ids = put(dovecot, mailbox, 2)

        async def both_seen() -> bool:
            states = {s["account"]: s for s in await mailbox_repo.states(db)}
            hung_failed = bool(states.get("hung", {}).get("last_error"))
            return hung_failed and (await inbox_ids(db)) == Counter(ids)

        await wait_until(both_seen, within=20)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
        silent.close()
        for writer in held:
            writer.close()
        await silent.wait_closed()
    states = {s["account"]: s for s in await mailbox_repo.states(db)}
    assert "Timeout" in states["hung"]["last_error"]


async def test_daemon_turns_mailbox_mail_into_tickets(
    dovecot: DovecotServer, mailbox: tuple[str, str], database_settings: Any, start_daemon: Any,
    db: Any,
) -> None:  # fmt: skip
    from .helpers import all_processed, tickets

    settings = account_settings(dovecot, *mailbox, mode="move", queue="Sales")
    daemon = await start_daemon(make_config(database_settings, mail_accounts=[settings]))
    assert daemon.daemon.fetchers is not None
    put(dovecot, mailbox, 2)

    async def two_tickets() -> bool:
        return await all_processed(db) and len(await tickets(db)) == 2

    await wait_until(two_tickets, within=20)
    assert {t["queue"] for t in await tickets(db)} == {"Sales"}  # the account's fixed queue
    assert dovecot.uids(*mailbox) == []
