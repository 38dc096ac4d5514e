"""Auto-responses in the database: provisioning from [[auto_responses]], per-language lookup,
the per-batch table, imports, and stored templates that no longer compile."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pytrs.config import Config, ConfigError
from pytrs.provisioning import provision
from pytrs.responders.response_toml import parse_toml, specs_to_toml
from pytrs.responders.responses import ResponseError, ResponseSpec, preferred_languages
from pytrs.responders.stored_responses import (
    current_responses,
    find_response,
    import_responses,
    load_responses,
)
from pytrs.responders.templates import TemplateRenderError, sample_variables
from pytrs.schema.database import Database
from pytrs.schema.response_repo import export_responses
from pytrs.schema.tables import auto_response, queue, queue_auto_response, system_address

from ..conftest import make_config

SUBJECT = "[{{ ticket.hook }}{{ ticket.tn }}] Re: {{ article.subject }}"


def responses_config(tmp_path: Path, database: dict[str, Any], *entries: dict[str, Any]) -> Config:
    """A configuration as if read from tmp_path/pytrs.toml, with these [[auto_responses]]."""
    config = make_config(database, auto_responses=list(entries))
    return replace(config, source=str(tmp_path / "pytrs.toml"))


def entry(queue_name: str = "Support", kind: str = "auto reply", **kw: Any) -> dict[str, Any]:
    values = {
        "queue": queue_name,
        "type": kind,
        "subject": SUBJECT,
        "body": "Hello {{ customer.first_name }}\n",
    }
    return {**values, **kw}


async def rows(db: Database) -> dict[str, Any]:
    async with db.connect() as conn:
        return {r.name: r for r in await conn.execute(select(auto_response))}


async def ids(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        queues = {r.name: r.id for r in await conn.execute(select(queue.c.id, queue.c.name))}
    return queues


async def find(db: Database, queue_name: str, kind: str, *languages: str) -> Any:
    queue_id = (await ids(db))[queue_name]
    async with db.connect() as conn:
        return await find_response(conn, queue_id, kind, languages)


# --- provisioning -----------------------------------------------------------------------------


async def test_provisioning_creates_updates_and_retires(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "reply.en.txt.j2").write_text(
        "Dear {{ customer.full_name }}\n{{ quoted }}\n"
    )
    html_file = tmp_path / "templates" / "follow.en.html.j2"  # an absolute path
    html_file.write_text("<p>{{ article.subject }}</p>\n")
    config = responses_config(
        tmp_path, database_settings,
        entry(body="", body_file="templates/reply.en.txt.j2"),
        entry(language="de", body="Hallo {{ customer.first_name }}\n"),
        entry("Sales", "auto follow up", body="", body_file=str(html_file)),
    )  # fmt: skip
    await provision(db, config)
    stored = await rows(db)
    assert set(stored) == {
        "support-auto-reply-en",
        "support-auto-reply-de",
        "sales-auto-follow-up-en",
    }
    reply = stored["support-auto-reply-en"]
    assert (reply.text1, reply.text0) == (SUBJECT, "Dear {{ customer.full_name }}\n{{ quoted }}\n")
    assert (reply.comments, reply.valid_id, reply.content_type, reply.type_id) == (
        "pytrs.toml",
        1,
        "text/plain",
        1,
    )
    assert stored["sales-auto-follow-up-en"].content_type == "text/html"
    async with db.connect() as conn:
        sender = await conn.scalar(
            select(system_address.c.value0).where(system_address.c.id == reply.system_address_id)
        )
        links = (
            await conn.execute(
                select(queue_auto_response.c.queue_id, queue_auto_response.c.auto_response_id)
            )
        ).all()
    assert sender == "support@example.com"  # the queue's first system address
    queue_ids = await ids(db)
    assert sorted(links) == sorted([
        (queue_ids["Support"], stored["support-auto-reply-en"].id),
        (queue_ids["Support"], stored["support-auto-reply-de"].id),
        (queue_ids["Sales"], stored["sales-auto-follow-up-en"].id),
    ])  # fmt: skip

    # A second start with the same file writes nothing.
    await provision(db, config)
    assert {n: r.change_time for n, r in (await rows(db)).items()} == {
        n: r.change_time for n, r in stored.items()
    }

    # Changed and removed entries; an explicit name and sender.
    changed = responses_config(
        tmp_path, database_settings,
        entry(body="", body_file="templates/reply.en.txt.j2", subject="Re: {{ article.subject }}"),
        entry("Sales", "auto follow up", name="sales-follow-up", sender="billing@example.com",
              body="x\n"),
    )  # fmt: skip
    await provision(db, changed)
    after = await rows(db)
    assert after["support-auto-reply-en"].id == reply.id
    assert after["support-auto-reply-en"].text1 == "Re: {{ article.subject }}"
    assert after["support-auto-reply-de"].valid_id == 2  # retired, kept for history
    assert after["sales-auto-follow-up-en"].valid_id == 2
    assert after["sales-follow-up"].valid_id == 1
    assert await find(db, "Support", "auto reply", "de") == await find(
        db, "Support", "auto reply", "en"
    )
    follow = await find(db, "Sales", "auto follow up", "en")
    assert (
        follow.name == "sales-follow-up"
        and follow.sender == "Example Billing <billing@example.com>"
    )


async def test_rows_made_by_other_means_are_left_alone(
    tmp_path: Path,
    database_settings: dict[str, Any],
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await provision(db, responses_config(tmp_path, database_settings))
    await import_one(db, "hand-made", ("Support",))
    # A configured response for the same queue, type and language: both stay, the older one
    # is used (Znuny's "first valid one"), and the start-up log says so.
    with caplog.at_level(logging.WARNING, "pytrs.schema.response_repo"):
        await provision(db, responses_config(tmp_path, database_settings, entry()))
    assert {n: r.valid_id for n, r in (await rows(db)).items()} == {
        "hand-made": 1, "support-auto-reply-en": 1,
    }  # fmt: skip
    assert "Support already has 'hand-made' for auto reply in en" in caplog.text
    assert (await find(db, "Support", "auto reply", "en")).name == "hand-made"


PROVISIONING_ERRORS = [
    ({"body": "", "body_file": "missing.txt.j2"}, "auto_responses[0].body_file", "not found"),
    ({"body": "", "body_file": ""}, "auto_responses[0].body_file", "required"),
    ({"body_file": "x.txt.j2"}, "auto_responses[0].body", "either body or body_file"),
    ({"body": "ok\n{% if %}"}, "auto_responses[0].body", "support-auto-reply-en:body, line 2"),
    ({"subject": "{{ tiket.tn }}"}, "auto_responses[0].subject", "unknown variable 'tiket'"),
    ({"body": "{{ ''.__class__ }}"}, "auto_responses[0].body", "sandbox"),
    ({"sender": "nobody@example.com"}, "auto_responses[0].sender", "not a valid system address"),
    ({"queue": "Misc"}, "auto_responses[0].sender", "no system address"),
]


async def test_provisioning_errors_name_the_key(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    for settings, key, words in PROVISIONING_ERRORS:
        config = responses_config(tmp_path, database_settings, entry(**settings))
        with pytest.raises(ConfigError) as info:
            await provision(db, config)
        assert any(e.startswith(key) and words in e for e in info.value.errors), info.value.errors
        assert await rows(db) == {}  # provisioning is one transaction


async def test_two_entries_with_one_name(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = responses_config(
        tmp_path, database_settings, entry(name="same"), entry(language="de", name="same")
    )
    with pytest.raises(ConfigError, match=r"auto_responses\[1\]\.name: 'same' is taken"):
        await provision(db, config)


# --- lookup -------------------------------------------------------------------------------------


@pytest.fixture
async def languages(tmp_path: Path, database_settings: dict[str, Any], db: Database) -> Database:
    config = responses_config(
        tmp_path, database_settings,
        entry(language="en", body="EN\n"), entry(language="de", body="DE\n"),
        entry(language="pt-br", body="PT-BR\n"), entry("Sales", language="fr", body="FR\n"),
    )  # fmt: skip
    await provision(db, config)
    return db


LANGUAGE_CHOICES = [
    (("de", "en"), "de"),
    (("DE_at", "en"), "de"),  # region falls back to the language
    (("fr", "de", "en"), "de"),  # the first language there is a response in
    (("pt", "en"), "pt-br"),  # a language finds its regional variant
    (("pt-BR",), "pt-br"),
    (("fr",), "en"),  # none matches: any language, the first made
    ((), "en"),
]


async def test_language_choice(languages: Database) -> None:
    async with languages.connect() as conn:
        table = await load_responses(conn)
    support = (await ids(languages))["Support"]
    for wanted, found in LANGUAGE_CHOICES:
        response = await find(languages, "Support", "auto reply", *wanted)
        assert response.language == found, wanted
        assert table.pick(support, "auto reply", wanted) == response


async def test_no_response_of_that_type_or_queue(languages: Database) -> None:
    assert await find(languages, "Support", "auto follow up", "en") is None
    assert await find(languages, "Billing", "auto reply", "en") is None
    assert (await find(languages, "Sales", "auto reply", "en")).language == "fr"


def test_preferred_languages() -> None:
    assert preferred_languages("de-AT", "fr, en;q=0.5") == ("de-at", "fr", "en")
    assert preferred_languages("", "not a tag!") == ("en",)
    assert preferred_languages("EN") == ("en",)


async def test_the_batch_table_is_reused_until_something_changes(languages: Database) -> None:
    async with languages.connect() as conn:
        table = await current_responses(conn, None)
        assert len(table) == 2  # (Support, auto reply) and (Sales, auto reply)
        assert await current_responses(conn, table) is table
    async with languages.transaction() as conn:
        await conn.execute(
            update(auto_response)
            .where(auto_response.c.name == "support-auto-reply-de")
            .values(valid_id=2, change_time=datetime(2100, 1, 1))
        )
    async with languages.connect() as conn:
        fresh = await current_responses(conn, table)
    assert fresh is not table
    assert fresh.pick((await ids(languages))["Support"], "auto reply", ["de"]).language == "en"


async def test_stored_response_renders_with_its_sender(languages: Database) -> None:
    response = await find(languages, "Support", "auto reply", "de")
    assert response.sender == "Example Support <support@example.com>"
    rendered = response.render(sample_variables())
    assert rendered.subject == "[Ticket#2026010110000017] Re: Printer on fire"
    assert rendered.text == "DE\n"


async def test_responses_without_a_valid_sender_are_not_used(languages: Database) -> None:
    async with languages.transaction() as conn:
        await conn.execute(
            update(system_address)
            .where(system_address.c.value0 == "support@example.com")
            .values(valid_id=2)
        )
    assert await find(languages, "Support", "auto reply", "en") is None


async def test_a_template_broken_outside_pytrs_fails_at_render_time(
    languages: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with languages.transaction() as conn:
        await conn.execute(
            update(auto_response)
            .where(auto_response.c.name == "support-auto-reply-de")
            .values(text0="{% if %}")
        )
    with caplog.at_level(logging.ERROR, "pytrs.responders.stored_responses"):
        response = await find(languages, "Support", "auto reply", "de")
    assert "support-auto-reply-de does not compile" in caplog.text
    with pytest.raises(TemplateRenderError, match="does not compile"):
        response.render(sample_variables())


# --- import -------------------------------------------------------------------------------------


def spec(name: str, queues: tuple[str, ...] = ("Sales",), **kw: Any) -> ResponseSpec:
    values: dict[str, Any] = {
        "type": "auto reply",
        "subject": SUBJECT,
        "body": "Hi\n",
        "language": "en",
    }
    return ResponseSpec(name=name, queues=queues, **{**values, **kw})


async def import_one(db: Database, name: str, queues: tuple[str, ...], **kw: Any) -> Any:
    async with db.transaction() as conn:
        return await import_responses(conn, [spec(name, queues, **kw)])


async def test_import_creates_updates_and_keeps_the_rest(languages: Database) -> None:
    report = await import_one(
        languages, "sales-auto-follow-up", ("Sales", "Billing"), type="auto follow up"
    )
    assert (report.created, report.updated, report.unchanged) == (("sales-auto-follow-up",), (), ())
    made = await find(languages, "Billing", "auto follow up", "en")
    assert made.name == "sales-auto-follow-up" and made.sender_address == "sales@example.com"
    report = await import_one(
        languages, "sales-auto-follow-up", ("Billing",), type="auto follow up", body="New\n"
    )
    assert report.updated == ("sales-auto-follow-up",)
    assert await find(languages, "Sales", "auto follow up", "en") is None  # unlinked
    report = await import_one(
        languages, "sales-auto-follow-up", ("Billing",), type="auto follow up", body="New\n"
    )
    assert report.unchanged == ("sales-auto-follow-up",)
    assert len(await rows(languages)) == 5


async def test_an_invalid_import_lists_every_problem_and_changes_nothing(
    languages: Database,
) -> None:
    before = await export_responses_of(languages)
    bad = [
        spec("good", ("Billing",)),
        spec("bad-queue", ("Nowhere",)),
        spec("bad-sender", ("Billing",), sender="stranger@example.org", language="de"),
        spec("bad-type", ("Billing",), type="auto remove", language="fr"),
        spec("bad-template", ("Billing",), body="{{ ticket.tn", language="it"),
        spec("support-auto-reply-de", ("Support",), language="de", body="changed\n"),
        spec("clash", ("Sales",), language="fr"),
        spec("mine", ("Billing",), comments="pytrs.toml", language="nl"),
    ]
    with pytest.raises(ResponseError) as info:
        async with languages.transaction() as conn:
            await import_responses(conn, bad)
    found = {(p.response, p.field) for p in info.value.problems}
    assert found == {
        ("bad-queue", "queues"), ("bad-sender", "sender"), ("bad-type", "type"),
        ("bad-template", "body"), ("support-auto-reply-de", "name"), ("clash", "queues"),
        ("mine", "comments"),
    }  # fmt: skip
    assert "provisioned from pytrs.toml" in str(info.value)
    assert "'sales-auto-reply-fr'" in str(info.value)
    assert await export_responses_of(languages) == before


async def test_an_exported_provisioned_response_imports_unchanged(languages: Database) -> None:
    specs = await export_responses_of(languages)
    async with languages.transaction() as conn:
        report = await import_responses(conn, specs)
    assert len(report.unchanged) == len(specs) == 4


async def export_responses_of(db: Database) -> list[ResponseSpec]:
    async with db.connect() as conn:
        return await export_responses(conn)


def test_toml_round_trip_keeps_every_character() -> None:
    bodies = [
        "Dear {{ customer.full_name }},\n\nthanks.\n", "has ''' inside", "ends with a quote'",
        "tab\there", "crlf\r\nline", "control \x01 char", "Grüße, {{ quoted }}", "",
    ]  # fmt: skip
    specs = [
        spec(f"r{i}", ("Sales", "Support"), body=body, subject=f'"{i}" \\ {{{{ ticket.tn }}}}')
        for i, body in enumerate(bodies)
    ]
    text = specs_to_toml(specs)
    parsed, problems = parse_toml(tomllib.loads(text))
    assert problems == [] and parsed == specs
    assert "body = '''\nDear {{ customer.full_name }},\n\nthanks.\n'''" in text  # readable
