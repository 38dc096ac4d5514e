"""IMAP fetching against a real Cyrus IMAP 3.6, the server whose namespace differs from Dovecot's
(personal folders under `INBOX.`, separator `.`, a top-level CREATE refused): every mode, IDLE,
the default move target taken from NAMESPACE, and a refused move that must not stop new mail
from coming in (reported by `pytrs accounts`, retried, cleared once the server accepts)."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytrs.config import MailAccountConfig
from pytrs.gateway import imap
from pytrs.gateway.fetchers import MailboxFetchers
from pytrs.schema import mailbox_repo

from .conftest import make_config, wait_until
from .cyrus import ADMIN, CyrusServer, cyrus_binaries
from .helpers import inbox_ids, make_mail, unique_id
from .test_imap import sync_once

if cyrus_binaries() is None:
    pytest.skip(
        "Cyrus IMAP is not installed (cyrus-common, sasl2-bin, cyrus-imapd's imapd; .ci/run)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def cyrus() -> Iterator[CyrusServer]:
    server = CyrusServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(cyrus: CyrusServer) -> tuple[str, str]:
    """A fresh Cyrus user (name, password) with an empty INBOX."""
    user, password = f"u{secrets.token_hex(4)}", secrets.token_hex(8)
    cyrus.add_user(user, password)
    return user, password


def put(cyrus: CyrusServer, mailbox: tuple[str, str], count: int) -> list[str]:
    ids = [unique_id() for _ in range(count)]
    for message_id in ids:
        cyrus.append(*mailbox, make_mail(subject=f"fetched {message_id}", message_id=message_id))
    return ids


def settings(cyrus: CyrusServer, mailbox: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "imap", "host": cyrus.host, "port": cyrus.imap_port, "user": mailbox[0],
        "password": mailbox[1], "mode": "keep", "name": f"cyrus-{mailbox[0]}",
        "poll_interval_seconds": 60.0, "timeout_seconds": 30.0, **extra,
    }  # fmt: skip


async def test_keep_mode_fetches_once_and_leaves_mail_unseen(
    cyrus: CyrusServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(cyrus, mailbox, 3)
    acct = MailAccountConfig(**settings(cyrus, mailbox, mode="keep"))
    assert (await sync_once(acct, db)).fetched == 3
    assert (await sync_once(acct, db)).fetched == 0
    more = put(cyrus, mailbox, 1)
    assert (await sync_once(acct, db)).fetched == 1
    assert await inbox_ids(db) == Counter(ids + more)
    flags = cyrus.flags(*mailbox)
    assert len(flags) == 4 and all("\\Seen" not in f for f in flags.values())


async def test_delete_mode_removes_what_is_stored(
    cyrus: CyrusServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(cyrus, mailbox, 3)
    acct = MailAccountConfig(**settings(cyrus, mailbox, mode="delete"))
    result = await sync_once(acct, db)
    assert (result.fetched, result.acted, result.pending) == (3, 3, 0)
    assert await inbox_ids(db) == Counter(ids)
    assert cyrus.uids(*mailbox) == [] and cyrus.flags(*mailbox) == {}  # expunged


async def test_move_mode_with_an_explicit_target(
    cyrus: CyrusServer, mailbox: tuple[str, str], db: Any
) -> None:
    ids = put(cyrus, mailbox, 2)
    acct = MailAccountConfig(**settings(cyrus, mailbox, mode="move", move_to="INBOX.Done"))
    result = await sync_once(acct, db)
    assert (result.fetched, result.acted, result.action_failure) == (2, 2, None)
    assert await inbox_ids(db) == Counter(ids)
    assert cyrus.uids(*mailbox) == []
    assert len(cyrus.uids(*mailbox, folder="INBOX.Done")) == 2


async def test_issue_scenario_move_with_the_default_target_and_idle(
    cyrus: CyrusServer, mailbox: tuple[str, str], db: Any, database_settings: dict[str, Any]
) -> None:
    """Issue 17: move mode, no target. The target comes from NAMESPACE (INBOX.pytrs-processed),
    mail is imported exactly once, and mail arriving later comes in by IDLE (the poll interval
    is a minute)."""
    ids = put(cyrus, mailbox, 3)
    account = settings(cyrus, mailbox, mode="move")
    fetchers = MailboxFetchers(make_config(database_settings, mail_accounts=[account]), db)
    task = asyncio.create_task(fetchers.run())
    try:

        async def moved(expected: list[str]) -> bool:
            return (await inbox_ids(db)) == Counter(expected) and cyrus.uids(*mailbox) == []

        await wait_until(lambda: moved(ids), within=20)
        await asyncio.sleep(1.0)  # in IDLE by now
        more = put(cyrus, mailbox, 2)
        await wait_until(lambda: moved(ids + more), within=15)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
    assert "INBOX.pytrs-processed" in cyrus.folders(*mailbox)
    assert len(cyrus.uids(*mailbox, folder="INBOX.pytrs-processed")) == 5
    assert max((await inbox_ids(db)).values()) == 1  # exactly once
    [state] = await mailbox_repo.states(db)
    assert state["last_error"] is None and state["messages_fetched"] == 5


async def test_a_refused_move_never_blocks_new_mail(
    cyrus: CyrusServer, mailbox: tuple[str, str], db: Any, database_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    """A top-level target Cyrus refuses to create: the CREATE refusal (folder and the server's
    words) is the account's last error, shown by `pytrs accounts`; mail still comes in; once the
    admin makes the folder usable the waiting moves are done and the error is cleared."""
    from .test_cli import pytrs, write_config

    monkeypatch.setattr(imap, "ACTION_RETRY_FIRST_SECONDS", 0.5)
    monkeypatch.setattr(imap, "ACTION_RETRY_MAX_SECONDS", 1.0)
    ids = put(cyrus, mailbox, 2)
    account = settings(cyrus, mailbox, mode="move", move_to="pytrs-processed")
    fetchers = MailboxFetchers(make_config(database_settings, mail_accounts=[account]), db)
    task = asyncio.create_task(fetchers.run())
    try:

        async def refused_and_fetched(expected: list[str]) -> bool:
            [state] = await mailbox_repo.states(db) or [{}]
            error = str(state.get("last_error") or "")
            fetched = (await inbox_ids(db)) == Counter(expected)
            # The error names the moves now waiting: all of `expected` once the retry after
            # the last fetch has run (the one before it still counts fewer).
            waiting = f"move of {len(expected)} stored message(s)" in error
            return fetched and waiting and "'pytrs-processed': NO Permission denied" in error

        await wait_until(lambda: refused_and_fetched(ids), within=20)
        await asyncio.sleep(1.0)
        more = put(cyrus, mailbox, 2)  # comes in while the moves keep failing
        await wait_until(lambda: refused_and_fetched(ids + more), within=15)
        assert len(cyrus.uids(*mailbox)) == 4  # nothing moved, nothing lost

        extra = "\n".join(["[[mail_accounts]]", *(f"{k} = {v!r}".replace("'", '"') for k, v in
                           account.items())]) + "\n"  # fmt: skip
        shown = pytrs(write_config(tmp_path / "pytrs.toml", database_settings, extra), "accounts")
        assert shown.returncode == 0, shown.stderr
        out = shown.stdout.decode()
        assert "server action failing (move of 4 stored message(s)" in out, out
        assert "cannot create the move target 'pytrs-processed': NO Permission denied" in out, out
        assert "next attempt:" in out

        # The admin fixes the server: a shared top-level folder the user may fill.
        with cyrus.imap(ADMIN, cyrus.admin_password) as conn:
            assert conn.create("pytrs-processed")[0] == "OK"
            assert conn.setacl("pytrs-processed", mailbox[0], "lrswipkxtecda")[0] == "OK"

        async def recovered() -> bool:
            [state] = await mailbox_repo.states(db)
            return state["last_error"] is None and cyrus.uids(*mailbox) == []

        await wait_until(recovered, within=20)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
    assert len(cyrus.uids(*mailbox, folder="pytrs-processed")) == 4
    assert await inbox_ids(db) == Counter(ids + more)  # exactly once
    shown = pytrs(tmp_path / "pytrs.toml", "accounts")
    assert "last error" not in shown.stdout.decode() and b"fetched: 4" in shown.stdout
