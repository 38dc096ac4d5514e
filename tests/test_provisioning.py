"""Provisioning at start retires only what the configuration file owns (issue: "Provisioning
retires rows it did not create"): rows made by hand (SQL here, the Znuny admin interface in real
life) survive every start; rows the file made or named are retired once the file drops them;
a database upgraded from 0007 keeps that promise for rows provisioned before the record existed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema import migrate
from pytrs.schema.database import Database, create_database

from .conftest import make_config

NOW = "CURRENT_TIMESTAMP"
AUDIT_COLUMNS = "create_time, create_by, change_time, change_by"
AUDIT = f"{NOW}, 1, {NOW}, 1"

# Every kind the file provisions, made by hand (as an admin or another tool would).
HAND_MADE = [
    f"INSERT INTO queue (name, group_id, follow_up_id, follow_up_lock, valid_id, {AUDIT_COLUMNS}) "
    f"VALUES ('Hand', 1, 1, 0, 1, {AUDIT})",
    f"INSERT INTO system_address (value0, value1, queue_id, valid_id, {AUDIT_COLUMNS}) "
    f"SELECT 'hand@example.com', 'Hand', id, 1, {AUDIT} FROM queue WHERE name = 'Hand'",
    f"INSERT INTO users (login, pw, first_name, last_name, email, valid_id, {AUDIT_COLUMNS}) "
    f"VALUES ('hand', '', 'Hand', 'Made', 'hand@agents.example', 1, {AUDIT})",
    "INSERT INTO mail_account (login, pw, host, account_type, queue_id, trusted, "
    f"authentication_type, comments, valid_id, {AUDIT_COLUMNS}) "
    f"VALUES ('hand', '', 'imap.example.com', 'IMAPS', 0, 0, 'password', 'hand-box', 1, {AUDIT})",
    "INSERT INTO auto_response (name, text0, text1, type_id, system_address_id, content_type, "
    f"language, comments, valid_id, {AUDIT_COLUMNS}) "
    "SELECT 'hand-reply', 'Hello', 'Re: {{ article.subject }}', 1, id, 'text/plain', 'en', "
    f"'made by hand', 1, {AUDIT} FROM system_address WHERE value0 = 'hand@example.com'",
    f"INSERT INTO queue_auto_response (queue_id, auto_response_id, {AUDIT_COLUMNS}) "
    f"SELECT q.id, r.id, {AUDIT} FROM queue q, auto_response r "
    "WHERE q.name = 'Hand' AND r.name = 'hand-reply'",
]

# What each kind's row is called, by table and key column.
KINDS = {
    "queue": "name",
    "system_address": "value0",
    "users": "login",
    "mail_account": "comments",
    "auto_response": "name",
}


def _file(database: dict[str, Any], *, filed: bool, reply_queue: str = "Filed") -> Config:
    """A configuration naming the `Filed*` rows of every kind when `filed`, else with every
    provisioned section empty."""
    if not filed:
        return make_config(
            database, queues=[], system_addresses=[], agents=[], mail_accounts=[],
            auto_responses=[],
        )  # fmt: skip
    queues = [{"name": "Filed", "follow_up": "possible"}, {"name": "Filed2"}]
    return make_config(
        database,
        queues=queues,
        system_addresses=[{"address": "filed@example.com", "queue": "Filed"}],
        agents=[{"login": "filed", "email": "filed@agents.example", "queues": ["Filed"]}],
        mail_accounts=[
            {"name": "filed-box", "type": "imaps", "host": "imap.example.com", "user": "filed",
             "password": "secret", "queue": "Filed"}
        ],
        auto_responses=[
            {"name": "filed-reply", "queue": reply_queue, "sender": "filed@example.com",
             "type": "auto reply", "subject": "Re: {{ article.subject }}", "body": "Thanks."}
        ],
    )  # fmt: skip


async def _valid(db: Database) -> dict[tuple[str, str], int]:
    """(table, key) → valid_id of every row of every provisioned kind."""
    out = {}
    async with db.connect() as conn:
        for table, key in KINDS.items():
            rows = await conn.execute(text(f"SELECT {key}, valid_id FROM {table}"))
            out.update({(table, str(name)): valid for name, valid in rows})
    return out


async def _links(db: Database) -> set[tuple[str, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT r.name, q.name FROM queue_auto_response l "
                "JOIN auto_response r ON r.id = l.auto_response_id "
                "JOIN queue q ON q.id = l.queue_id"
            )
        )
        return {(r, q) for r, q in rows}


async def _sql(db: Database, *statements: str) -> None:
    async with db.transaction() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def test_hand_made_rows_survive_and_dropped_file_rows_are_retired(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await _sql(db, *HAND_MADE)
    await provision(db, _file(database_settings, filed=True, reply_queue="Filed2"))
    # An admin links the file's response to one more queue by hand.
    await _sql(
        db,
        f"INSERT INTO queue_auto_response (queue_id, auto_response_id, {AUDIT_COLUMNS}) "
        f"SELECT q.id, r.id, {AUDIT} FROM queue q, auto_response r "
        "WHERE q.name = 'Hand' AND r.name = 'filed-reply'",
    )
    await provision(db, _file(database_settings, filed=True))  # the reply moved to Filed
    links = await _links(db)

    await provision(db, _file(database_settings, filed=False))  # every section empty
    valid = await _valid(db)
    for table, key in (
        ("queue", "Hand"), ("system_address", "hand@example.com"), ("users", "hand"),
        ("mail_account", "hand-box"), ("auto_response", "hand-reply"),
        ("queue", "Postmaster"), ("users", "root@localhost"),  # shipped rows
    ):  # fmt: skip
        assert valid[table, key] == 1, (table, key)
    for table, key in (
        ("queue", "Filed"), ("queue", "Filed2"), ("system_address", "filed@example.com"),
        ("users", "filed"), ("mail_account", "filed-box"), ("auto_response", "filed-reply"),
    ):  # fmt: skip
        assert valid[table, key] == 2, (table, key)
    # The file's link to Filed2 was deleted when the reply moved; the links made by hand stay.
    assert links == {
        ("hand-reply", "Hand"), ("filed-reply", "Hand"), ("filed-reply", "Filed"),
    }  # fmt: skip
    assert ("hand-reply", "Hand") in await _links(db)

    # Named again, the file's rows come back.
    await provision(db, _file(database_settings, filed=True))
    valid = await _valid(db)
    assert valid["users", "filed"] == valid["mail_account", "filed-box"] == 1


async def test_a_row_the_file_names_is_taken_over_and_retired_when_dropped(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await _sql(db, *HAND_MADE)
    named = make_config(
        database_settings,
        mail_accounts=[{"name": "hand-box", "type": "imaps", "host": "imap.example.com",
                        "user": "hand", "password": "secret"}],
    )  # fmt: skip
    await provision(db, named)
    await provision(db, make_config(database_settings))
    assert (await _valid(db))["mail_account", "hand-box"] == 2


async def test_a_reused_id_is_not_mistaken_for_a_provisioned_row(
    db: Database, database_settings: dict[str, Any]
) -> None:
    """SQLite hands the highest id out again once its row is deleted: a row made by hand under
    the id of a deleted provisioned row is still the admin's."""
    await provision(db, _file(database_settings, filed=True))
    async with db.connect() as conn:
        old_id = (await conn.execute(text("SELECT id FROM mail_account"))).scalar_one()
    await _sql(
        db,
        "DELETE FROM mail_account",
        "INSERT INTO mail_account (id, login, pw, host, account_type, queue_id, trusted, "
        f"authentication_type, comments, valid_id, {AUDIT_COLUMNS}) "
        f"VALUES ({old_id}, 'hand', '', 'imap.example.com', 'IMAPS', 0, 0, 'password', "
        f"'hand-box', 1, {AUDIT})",
    )
    await provision(db, _file(database_settings, filed=False))
    assert (await _valid(db))["mail_account", "hand-box"] == 1


async def test_upgrade_from_0007_keeps_hand_made_rows(database_settings: dict[str, Any]) -> None:
    """Before 0008 only some kinds were marked (comments = "pytrs.toml"): marked rows are the
    file's after the upgrade; unmarked ones are the file's only once it names them."""
    db = create_database(make_config(database_settings).database)
    try:
        await migrate.upgrade(db, "0007")
        # As 0007's provisioning left them: a marked queue and address the file had named.
        await _sql(
            db,
            *HAND_MADE,
            f"INSERT INTO queue (name, group_id, follow_up_id, follow_up_lock, comments, valid_id, "
            f"{AUDIT_COLUMNS}) VALUES ('Old', 1, 1, 0, 'pytrs.toml', 1, {AUDIT})",
            f"INSERT INTO users (login, pw, first_name, last_name, valid_id, {AUDIT_COLUMNS}) "
            f"VALUES ('old-agent', '', 'old-agent', '', 1, {AUDIT})",
        )
        await migrate.upgrade(db)
        assert await migrate.diff_models(db) == []
        with_agent = make_config(
            database_settings, agents=[{"login": "old-agent", "email": "old@agents.example"}]
        )
        await provision(db, with_agent)  # the first start after the upgrade
        await provision(db, make_config(database_settings))  # the agent dropped from the file
        valid = await _valid(db)
        assert valid["queue", "Old"] == 2 and valid["users", "old-agent"] == 2
        assert valid["queue", "Hand"] == valid["mail_account", "hand-box"] == 1
        assert valid["users", "hand"] == valid["auto_response", "hand-reply"] == 1
    finally:
        await db.close()
