"""Poison mail: retried with backoff, then quarantined with its error and raw bytes, then retried.

The failure is a real database failure: a trigger that aborts the article insert of one mail.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.vocabulary.inbox import InboxItem

from .conftest import wait_until
from .helpers import articles, inbox_states, make_mail, tickets

SQLITE_TRIGGER = """
CREATE TRIGGER poison BEFORE INSERT ON article_data_mime
WHEN NEW.a_subject LIKE '%POISON%'
BEGIN SELECT RAISE(ABORT, 'poisoned article refused'); END
"""
PG_FUNCTION = """
CREATE FUNCTION poison() RETURNS trigger AS $$
BEGIN
  IF NEW.a_subject LIKE '%POISON%' THEN RAISE EXCEPTION 'poisoned article refused'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = (
    "CREATE TRIGGER poison BEFORE INSERT ON article_data_mime "
    "FOR EACH ROW EXECUTE FUNCTION poison()"
)
MYSQL_TRIGGER = """
CREATE TRIGGER poison BEFORE INSERT ON article_data_mime FOR EACH ROW
BEGIN
  IF NEW.a_subject LIKE '%POISON%' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned article refused';
  END IF;
END
"""


async def _install_poison(db: Any) -> None:
    async with db.transaction() as conn:
        if db.is_sqlite:
            await conn.execute(text(SQLITE_TRIGGER))
        elif db.is_mysql:
            await conn.execute(text(MYSQL_TRIGGER))
        else:
            await conn.execute(text(PG_FUNCTION))
            await conn.execute(text(PG_TRIGGER))


async def _remove_poison(db: Any) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "DROP TRIGGER poison"
                + ("" if db.is_sqlite or db.is_mysql else " ON article_data_mime")
            )
        )


async def _store(db: Any, *raws: bytes) -> None:
    async with db.transaction() as conn:
        await inbox_repo.store(
            conn, [InboxItem("pipe", raw, recipient="support@example.com") for raw in raws]
        )


async def test_poison_mail_is_quarantined_and_others_go_on(config: Any, db: Any) -> None:
    await provision(db, config)
    addresses = AddressBook()
    await addresses.reload(db)
    worker = PostmasterWorker(config, db, addresses)
    await _install_poison(db)
    await _store(db, make_mail(subject="fine 1"), make_mail(subject="POISON pill"),
                 make_mail(subject="fine 2"))  # fmt: skip

    # The good mail is processed although it shares the batch with the poison.
    await worker.run_once()
    assert sorted(t["title"] for t in await tickets(db)) == ["fine 1", "fine 2"]
    assert await inbox_states(db) == {"done": 2, "pending": 1}

    async def quarantined() -> bool:
        await worker.run_once()
        return (await inbox_states(db)).get("quarantined") == 1

    await wait_until(quarantined, within=20)
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT attempts, last_error, raw FROM inbox_message WHERE state = 'quarantined'"
        ))).one()  # fmt: skip
    assert row.attempts == config.postmaster.max_attempts
    assert "poisoned article refused" in row.last_error
    assert b"Subject: POISON pill" in row.raw  # the raw message is kept
    assert len(await articles(db)) == 2  # nothing half-written

    await _remove_poison(db)
    assert await inbox_repo.retry(db) == 1
    await worker.drain()
    assert await inbox_states(db) == {"done": 3}
    assert sorted(t["title"] for t in await tickets(db)) == ["POISON pill", "fine 1", "fine 2"]


async def test_retry_cli_requeues(
    config: Any, db: Any, tmp_path: Any, database_settings: Any
) -> None:
    from .test_cli import pytrs, write_config

    await provision(db, config)
    addresses = AddressBook()
    await addresses.reload(db)
    worker = PostmasterWorker(config, db, addresses)
    await _install_poison(db)
    await _store(db, make_mail(subject="POISON again"))

    async def quarantined() -> bool:
        await worker.run_once()
        return (await inbox_states(db)).get("quarantined") == 1

    await wait_until(quarantined, within=20)
    cli_config = write_config(tmp_path / "pytrs.toml", database_settings)
    listing = pytrs(cli_config, "inbox", "list", "--state", "quarantined")
    assert b"quarantined" in listing.stdout and b"poisoned article refused" in listing.stdout
    await _remove_poison(db)
    async with db.connect() as conn:
        inbox_id = (await conn.execute(text("SELECT id FROM inbox_message"))).scalar_one()
    assert pytrs(cli_config, "inbox", "retry", str(inbox_id)).returncode == 0
    await worker.drain()
    assert await inbox_states(db) == {"done": 1}
    assert len(await tickets(db)) == 1
