"""`/admin/accounts`: each configured mail account's health and backlog — the same data as
`pytrs accounts` (`mailbox_repo.health`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema import inbox_repo, mailbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.vocabulary.inbox import InboxItem

from ..conftest import make_config
from ..helpers import make_mail

ACCOUNTS = [
    {"type": "imaps", "host": "imap.example.com", "user": "help", "password": "x", "name": "help"},
    {
        "type": "pop3",
        "host": "pop.example.com",
        "user": "old",
        "password": "x",
        "name": "old",
        "mode": "keep",
    },
]


@pytest.fixture
def accounts() -> list[dict[str, str]]:
    return ACCOUNTS


@pytest.fixture
def config(database_settings: dict[str, Any], accounts: list[dict[str, str]]) -> Config:
    return make_config(database_settings, mail_accounts=accounts)


async def test_health_and_backlog(
    config: Config, db: Database, make_user: Callable[..., Awaitable[int]], login: Any
) -> None:
    await mailbox_repo.record_success(db, "help")
    await mailbox_repo.record_failure(
        db, "old", "<b>login refused</b>", utcnow() + timedelta(minutes=5)
    )
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [
            InboxItem(source=mailbox_repo.inbox_source("imaps", "help"), raw=make_mail(subject=s))
            for s in ("one", "two")
        ])  # fmt: skip
    health = {row["account"]: row for row in await mailbox_repo.health(db, config)}
    assert (health["help"]["backlog"], health["old"]["backlog"]) == (2, 0)
    assert health["help"]["last_success_at"] is not None and health["old"]["last_error"]
    await make_user("root", role="admin")
    page = (await (await login("root")).get("/admin/accounts")).text
    assert "imap.example.com" in page and "pop.example.com" in page
    assert "&lt;b&gt;login refused&lt;/b&gt;" in page
    assert "<td>2</td>" in page  # the backlog of `help`


@pytest.mark.parametrize("accounts", [[]])
async def test_no_accounts(make_user: Callable[..., Awaitable[int]], login: Any) -> None:
    await make_user("root", role="admin")
    page = (await (await login("root")).get("/admin/accounts")).text
    assert "No <code>[[mail_accounts]]</code>" in page
