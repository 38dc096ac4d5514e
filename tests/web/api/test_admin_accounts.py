"""`GET /api/v1/accounts`: each configured mail account with its health, backoff, fetch cursors
and backlog — the data of `pytrs accounts` and `/admin/accounts` — and no secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema import inbox_repo, mailbox_repo
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.mailbox_repo import Cursor
from pytrs.schema.tables import pop3_seen
from pytrs.vocabulary.inbox import InboxItem

from ...conftest import make_config
from ...helpers import make_mail
from ..test_admin_accounts import ACCOUNTS


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return make_config(database_settings, mail_accounts=ACCOUNTS)


async def test_health_backoff_cursors_and_backlog(
    db: Database, make_user: Callable[..., Awaitable[int]], make_token: Any, api_client: Any
) -> None:
    await make_user("root", role="admin")
    admin = api_client(await make_token("root", scope="admin"))
    await mailbox_repo.record_success(db, "help")
    await mailbox_repo.set_cursor(db, "help", "INBOX", Cursor(uidvalidity=77, last_uid=12))
    retry_at = utcnow() + timedelta(minutes=5)
    for _ in range(2):
        await mailbox_repo.record_failure(db, "old", "login refused", retry_at)
    async with db.transaction() as conn:
        await inbox_repo.store(
            conn,
            [
                InboxItem(
                    source=mailbox_repo.inbox_source("imaps", "help"), raw=make_mail(subject=s)
                )
                for s in ("one", "two")
            ],
        )
        await conn.execute(
            conflict_insert(conn, pop3_seen).values(account="old", uidl="u1", seen_at=utcnow())
        )
    answer = await admin.get("/accounts")
    assert answer.status_code == 200, answer.text
    help_, old = answer.json()
    assert (help_["account"], help_["type"], help_["host"]) == ("help", "imaps", "imap.example.com")
    assert help_["last_success_at"] and help_["backlog"] == 2 and help_["last_error"] is None
    assert [(c["folder"], c["uidvalidity"], c["last_uid"]) for c in help_["cursors"]] == [
        ("INBOX", 77, 12)
    ]
    assert (old["last_error"], old["consecutive_failures"]) == ("login refused", 2)
    assert old["next_attempt_at"] and old["backlog"] == 0
    assert [(c["folder"], c["uidls_seen"]) for c in old["cursors"]] == [("INBOX", 1)]
    assert "password" not in answer.text
