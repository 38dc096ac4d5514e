"""`pytrs responses import|export` against a real database: round trip, all-or-nothing imports
that name every problem, and responses provisioned from pytrs.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.config import load_config
from pytrs.provisioning import provision
from pytrs.schema.database import Database
from pytrs.schema.tables import auto_response, queue_auto_response

from .helpers import count
from .test_cli import pytrs, write_config

RESPONSES = r"""
[[responses]]
name = "support-auto-reply-en"
queues = ["Support"]
type = "auto reply"
subject = "[{{ ticket.hook }}{{ ticket.tn }}] Re: {{ article.subject }}"
body = '''
Dear {{ customer.full_name }},

we opened ticket {{ ticket.tn }} for your mail:
{{ quoted }}
'''

[[responses]]
name = "support-auto-reply-de"
queues = ["Support"]
type = "auto reply"
language = "de"
subject = "Re: {{ article.subject }}"
body_file = "templates/reply.de.html.j2"
comments = "German, HTML"
"""

BROKEN = r"""
[[responses]]
name = "broken-syntax"
queues = ["Support"]
type = "auto follow up"
subject = "ok"
body = "line 1\n{% for x in %}"

[[responses]]
name = "unknown-queue"
queues = ["Nowhere"]
type = "auto reply"
language = "fr"
subject = "{{ article.subject }}"
body = "hi"

[[responses]]
name = "bad-type"
queues = ["Support"]
type = "auto answer"
subject = "s"
body = "b"
colour = "red"
"""


async def test_import_export_round_trip(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "reply.de.html.j2").write_text(
        "<p>Hallo {{ customer.full_name }}</p>\n"
    )
    (tmp_path / "responses.toml").write_text(RESPONSES)
    await provision(db, load_config(config))  # what the daemon does at start: queues, addresses

    imported = pytrs(config, "responses", "import", str(tmp_path / "responses.toml"))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.decode().strip() == (
        "2 response(s) imported: 2 created, 0 updated, 0 unchanged"
    )
    assert await count(db, auto_response) == 2
    assert await count(db, queue_auto_response) == 2
    async with db.connect() as conn:
        german = (
            await conn.execute(select(auto_response).where(auto_response.c.language == "de"))
        ).one()
    assert german.content_type == "text/html" and german.text0.startswith("<p>Hallo")

    exported = pytrs(config, "responses", "export")
    assert exported.returncode == 0, exported.stderr
    data = tomllib.loads(exported.stdout.decode())
    by_name = {r["name"]: r for r in data["responses"]}
    assert by_name["support-auto-reply-en"]["body"].startswith("Dear {{ customer.full_name }},\n")
    assert by_name["support-auto-reply-de"]["sender"] == "support@example.com"
    assert by_name["support-auto-reply-de"]["comments"] == "German, HTML"
    (tmp_path / "again.toml").write_bytes(exported.stdout)
    again = pytrs(config, "responses", "import", str(tmp_path / "again.toml"))
    assert "0 created, 0 updated, 2 unchanged" in again.stdout.decode()
    out = tmp_path / "out.toml"
    assert pytrs(config, "responses", "export", "--output", str(out)).returncode == 0
    assert out.read_bytes() == exported.stdout  # a stable round trip

    edited = exported.stdout.decode().replace(
        'valid = true\ncomments = "German', 'valid = false\ncomments = "German'
    )
    (tmp_path / "retire.toml").write_text(edited)
    retired = pytrs(config, "responses", "import", str(tmp_path / "retire.toml"))
    assert "1 updated" in retired.stdout.decode()
    async with db.connect() as conn:
        assert (
            await conn.scalar(
                select(auto_response.c.valid_id).where(auto_response.c.language == "de")
            )
            == 2
        )


async def test_an_invalid_import_names_every_problem_and_changes_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    await provision(db, load_config(config))
    (tmp_path / "broken.toml").write_text(BROKEN)
    refused = pytrs(config, "responses", "import", str(tmp_path / "broken.toml"))
    assert refused.returncode == 1
    errors = refused.stderr.decode()
    assert "not imported, nothing changed" in errors
    assert "response broken-syntax: body: template broken-syntax:body, line 2" in errors
    assert "response bad-type: type: must be one of" in errors
    assert "response bad-type: colour: unknown key" in errors
    assert "response unknown-queue: queues: unknown queue 'Nowhere'" in errors
    assert await count(db, auto_response) == 0
    # A file that cannot be read is a mistake on the command line (2), not a refused import.
    missing = pytrs(config, "responses", "import", str(tmp_path / "nothing-here.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr.decode()


async def test_responses_from_the_configuration_are_exported_but_not_importable(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(
        tmp_path / "pytrs.toml", database_settings,
        '[[auto_responses]]\nqueue = "Support"\ntype = "auto reply"\n'
        'subject = "Re: {{ article.subject }}"\nbody_file = "reply.txt.j2"\n',
    )  # fmt: skip
    (tmp_path / "reply.txt.j2").write_text("Hello {{ customer.first_name }}\n")
    await provision(db, load_config(config))
    exported = pytrs(config, "responses", "export").stdout.decode()
    assert "# Provisioned from [[auto_responses]] in pytrs.toml: change it there." in exported
    assert 'comments = "pytrs.toml"' in exported
    (tmp_path / "changed.toml").write_text(exported.replace("Hello", "Hi"))
    refused = pytrs(config, "responses", "import", str(tmp_path / "changed.toml"))
    assert refused.returncode == 1
    assert (
        "provisioned from pytrs.toml ([[auto_responses]]); change it there"
        in refused.stderr.decode()
    )
