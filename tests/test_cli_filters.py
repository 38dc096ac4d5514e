"""`pytrs filters import|export|test` against a real database: all-or-nothing imports, round trip,
and a dry run that explains every rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytrs.config import load_config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.schema import inbox_repo
from pytrs.schema.inbox_repo import InboxItem
from pytrs.schema.provision import provision
from pytrs.schema.tables import article, inbox, postmaster_filter
from pytrs.schema.tables import ticket as ticket_table

from .helpers import count, make_mail, tickets
from .test_cli import pytrs, write_config

RULES = r"""
[[filters]]
name = "010-vip"
stop = false
match = [ { header = "From", value = "EMAILADDRESS:.*@vip\\.example\\.org" } ]
set = [ { header = "X-OTRS-Priority", value = "5 very high" } ]

[[filters]]
name = "020-order"
match = [ { header = "Subject", value = "order (?P<number>\\d+)" } ]
set = [ { header = "X-PyTRS-Title", value = 'Order [**\number**]' } ]
"""

BROKEN = r"""
[[filters]]
name = "010-backref"
match = [ { header = "Subject", value = "(a)\\1" } ]
set = [ { header = "X-PyTRS-Queue", value = "Misc" } ]

[[filters]]
name = "020-bad-set"
match = [ { header = "Subject", value = "x" } ]
set = [ { header = "X-Not-Control", value = "y" } ]
"""


async def test_import_export_and_test(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    (tmp_path / "rules.toml").write_text(RULES)
    imported = pytrs(config, "filters", "import", str(tmp_path / "rules.toml"))
    assert imported.returncode == 0, imported.stderr
    assert await count(db, postmaster_filter) == 4  # one row per match and set row

    exported = pytrs(config, "filters", "export")
    assert b'name = "010-vip"' in exported.stdout and b"X-PyTRS-Priority" in exported.stdout
    (tmp_path / "again.toml").write_bytes(exported.stdout)
    assert pytrs(config, "filters", "import", str(tmp_path / "again.toml")).returncode == 0
    assert pytrs(config, "filters", "export").stdout == exported.stdout  # round trip

    mail = tmp_path / "vip.eml"
    mail.write_bytes(make_mail(sender="Boss <boss@vip.example.org>", subject="order 4711"))
    tested = pytrs(config, "filters", "test", str(mail))
    assert tested.returncode == 0, tested.stderr
    out = tested.stdout.decode()
    assert "010-vip" in out and "020-order" in out
    assert "X-PyTRS-Priority: 5 very high" in out
    assert "X-PyTRS-Title: Order 4711" in out
    assert await count(db, postmaster_filter) == 4  # test changes nothing


async def test_invalid_import_changes_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    (tmp_path / "rules.toml").write_text(RULES)
    assert pytrs(config, "filters", "import", str(tmp_path / "rules.toml")).returncode == 0
    (tmp_path / "broken.toml").write_text(BROKEN)
    refused = pytrs(config, "filters", "import", str(tmp_path / "broken.toml"))
    assert refused.returncode == 1
    errors = refused.stderr.decode()
    assert "010-backref" in errors and "020-bad-set" in errors  # every problem, by rule name
    assert await count(db, postmaster_filter) == 4  # the old rules are untouched


async def test_dry_run_prints_the_routing_decision_and_changes_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config_path = write_config(tmp_path / "pytrs.toml", database_settings)
    config = load_config(config_path)
    await provision(db, config)
    first = make_mail(sender="Alice <alice@customer.example>", subject="printer on fire")
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", first, recipient="support@example.com")])
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).drain()
    [ticket] = await tickets(db)
    before = (await count(db, ticket_table), await count(db, article), await count(db, inbox))

    reply = tmp_path / "reply.eml"
    subject = f"Re: [Ticket#{ticket['tn']}] printer on fire"
    reply.write_bytes(make_mail(sender="Alice <alice@customer.example>", subject=subject))
    out = pytrs(config_path, "filters", "test", str(reply)).stdout.decode()
    assert f"routing: follow-up to ticket {ticket['tn']} (queue Support)" in out
    assert "found via: subject" in out

    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(make_mail(sender="Mallory <m@evil.example>",
                                   subject=f"Re: [Ticket#{ticket['tn']}] hi"))  # fmt: skip
    out = pytrs(config_path, "filters", "test", str(stranger), "--recipient",
                "support@example.com").stdout.decode()  # fmt: skip
    assert "routing: new ticket in queue Support" in out
    assert "neither customer nor correspondent" in out

    forged = tmp_path / "forged.eml"
    forged.write_bytes(make_mail(subject="hello", extra={"X-OTRS-Ignore": "yes"}))
    assert (
        "routing: new ticket" in pytrs(config_path, "filters", "test", str(forged)).stdout.decode()
    )
    trusted = pytrs(config_path, "filters", "test", str(forged), "--trusted").stdout.decode()
    assert "routing: ignore" in trusted and "X-PyTRS-Ignore: yes" in trusted
    after = (await count(db, ticket_table), await count(db, article), await count(db, inbox))
    assert after == before
