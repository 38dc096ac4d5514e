"""Provisioning beside Znuny (`[database] mode = "znuny"`): `[[queues]]`, `[[system_addresses]]`,
`[[agents]]` and `[[auto_responses]]` land in Znuny's tables as Znuny needs them — a queue
names a system address, salutation and signature; an agent's address is its UserEmail
preference; a response's language is kept aside — and a second start changes nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.config import Config, ConfigError
from pytrs.provisioning import provision
from pytrs.schema import queue_repo, response_repo
from pytrs.vocabulary.auto_responses import ResponseError, ResponseSpec

from ..conftest import make_config
from .conftest import Beside

pytestmark = pytest.mark.znuny


def _config(beside: Beside, body: str = "Thanks, {{ customer.email }}.") -> Config:
    return make_config(
        beside.settings,
        queues=[{"name": "Support", "follow_up": "possible"}],
        system_addresses=[
            {"address": "help@example.com", "name": "Help", "queue": "Support"},
            {"address": "support@example.com", "name": "Support", "queue": "Support"},
        ],
        agents=[{"login": "ann", "email": "Ann@Example.com", "queues": ["Support"]}],
        auto_responses=[
            {"name": "support-reply", "queue": "Support", "type": "auto reply",
             "language": "de", "subject": "Re: {{ article.subject }}", "body": body}
        ],
    )  # fmt: skip


async def _rows(beside: Beside, query: str) -> list[tuple[Any, ...]]:
    async with beside.db.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(query))]


async def test_provisioning_fills_what_znuny_requires_and_repeats_cleanly(beside: Beside) -> None:
    config = _config(beside)
    for _ in range(2):  # the second start finds everything in place
        await provision(beside.db, config)
    [(address_id,)] = await _rows(
        beside, "SELECT id FROM system_address WHERE value0 = 'help@example.com'"
    )
    # The queue sends from its first address; salutation and signature are Znuny's seeded ones.
    assert await _rows(
        beside,
        "SELECT system_address_id, salutation_id, signature_id FROM queue WHERE name = 'Support'",
    ) == [(address_id, 1, 1)]
    assert await _rows(
        beside, "SELECT count(*) FROM system_address WHERE value0 LIKE '%@example.com'"
    ) == [(2,)]
    assert await _rows(
        beside,
        "SELECT p.preferences_value FROM user_preferences p JOIN users u ON u.id = p.user_id "
        "WHERE u.login = 'ann' AND p.preferences_key = 'UserEmail'",
    ) == [("ann@example.com",)]
    assert await _rows(
        beside,
        "SELECT g.permission_key FROM group_user g JOIN users u ON u.id = g.user_id "
        "WHERE u.login = 'ann'",
    ) == [("rw",)]
    assert await _rows(
        beside,
        "SELECT count(*) FROM queue_auto_response l JOIN auto_response r "
        "ON r.id = l.auto_response_id WHERE r.name = 'support-reply'",
    ) == [(1,)]
    async with beside.db.connect() as conn:
        usable = await response_repo.usable_responses(conn, type_name="auto reply")
        exported = {s.name: s for s in await response_repo.export_responses(conn)}
    assert [(r.name, r.language) for _, r in usable] == [("support-reply", "de")]
    assert exported["support-reply"].language == "de"
    # Znuny's own seeded responses have no language kept by pytrs: English, as pytrs's default.
    assert {s.language for name, s in exported.items() if name != "support-reply"} == {"en"}


async def test_a_response_text_longer_than_znuny_holds_is_refused(beside: Beside) -> None:
    with pytest.raises(ConfigError) as refused:
        await provision(beside.db, _config(beside, body="x" * 6001))
    assert "auto_responses[0].body" in str(refused.value)
    assert "6000" in str(refused.value)
    assert await _rows(
        beside, "SELECT count(*) FROM auto_response WHERE name = 'support-reply'"
    ) == [(0,)]


async def test_responses_import_keeps_languages_aside_and_refuses_long_texts(
    beside: Beside,
) -> None:
    spec = ResponseSpec(
        name="raw-reply", queues=("Raw",), type="auto reply", subject="Re: {{ article.subject }}",
        body="Merci.", language="fr", sender="znuny@localhost",
    )  # fmt: skip
    async with beside.db.transaction() as conn:
        report = await response_repo.store_responses(conn, [spec])
    assert report.created == ("raw-reply",)
    async with beside.db.transaction() as conn:  # the same again: nothing to write
        again = await response_repo.store_responses(conn, [spec])
    assert again.unchanged == ("raw-reply",)
    assert await _rows(
        beside,
        "SELECT l.language FROM auto_response_language l JOIN auto_response r "
        "ON r.id = l.auto_response_id WHERE r.name = 'raw-reply'",
    ) == [("fr",)]
    too_long = dataclasses.replace(spec, subject="s" * 6001)
    with pytest.raises(ResponseError) as refused:
        async with beside.db.transaction() as conn:
            await response_repo.store_responses(conn, [too_long])
    assert [(p.response, p.field) for p in refused.value.problems] == [("raw-reply", "subject")]


async def test_a_queue_made_on_the_admin_page_names_what_znuny_requires(beside: Beside) -> None:
    values = queue_repo.QueueValues(name="Web", group_id=1, follow_up="possible")
    queue_id = await queue_repo.save_queue(beside.db, values, row_id=None, by=1)
    # Changed without an address: it keeps the one it has.
    await queue_repo.save_queue(
        beside.db, dataclasses.replace(values, comments="edited"), row_id=queue_id, by=1
    )
    assert await _rows(
        beside,
        f"SELECT system_address_id, salutation_id, signature_id, comments FROM queue "
        f"WHERE id = {queue_id}",
    ) == [(1, 1, 1, "edited")]
