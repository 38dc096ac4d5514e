"""`pytrs filters import|export|test` against a real database: all-or-nothing imports, round trip,
and a dry run that explains every rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert

from pytrs.config import load_config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.tables import article, inbox, postmaster_filter
from pytrs.schema.tables import ticket as ticket_table
from pytrs.vocabulary.inbox import InboxItem

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


# Each set value names nothing the database knows, so at mail time it would do nothing.
UNKNOWN_VALUES = r"""
[[filters]]
name = "010-priority"
match = [ { header = "Subject", value = "urgent" } ]
set = [ { header = "X-PyTRS-Priority", value = "high" } ]

[[filters]]
name = "020-everything"
match = [ { header = "From", value = "@vip\\.example\\.org" } ]
set = [
  { header = "X-OTRS-Queue", value = "Nowhere" },
  { header = "X-PyTRS-FollowUp-State", value = "opened" },
  { header = "X-PyTRS-Owner", value = "nobody" },
  { header = "X-PyTRS-FollowUp-Responsible", value = "99" },
  { header = "X-PyTRS-Lock", value = "locked" },
  { header = "X-PyTRS-SenderType", value = "robot" },
  { header = "X-PyTRS-FollowUp-IsVisibleForCustomer", value = "maybe" },
  { header = "X-PyTRS-Type", value = "Incident" },
  { header = "X-PyTRS-FollowUp-Priority", value = "urgent" },
  { header = "X-PyTRS-Ignore", value = "1" },
  { header = "X-PyTRS-DynamicField-Nope", value = "anything" },
  { header = "X-PyTRS-Title", value = "any text will do" },
]
"""

# The same headers with names the database knows, and values taken from the mail.
KNOWN_VALUES = r"""
[[filters]]
name = "010-known"
match = [ { header = "From", value = "(\\w+)@vip\\.example\\.org" } ]
set = [
  { header = "X-OTRS-Queue", value = "Misc" },
  { header = "X-PyTRS-FollowUp-State", value = " open " },
  { header = "X-PyTRS-Owner", value = "root@localhost" },
  { header = "X-PyTRS-FollowUp-Responsible", value = "1" },
  { header = "X-PyTRS-Lock", value = "lock" },
  { header = "X-PyTRS-SenderType", value = "Agent" },
  { header = "X-PyTRS-FollowUp-IsVisibleForCustomer", value = "No" },
  { header = "X-PyTRS-FollowUp-State-Keep", value = "1" },
  { header = "X-PyTRS-Ignore", value = "" },
  { header = "X-PyTRS-Priority", value = "[***]" },
]
"""


async def test_import_refuses_values_the_database_does_not_know(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    (tmp_path / "unknown.toml").write_text(UNKNOWN_VALUES)
    refused = pytrs(config, "filters", "import", str(tmp_path / "unknown.toml"))
    assert refused.returncode == 1
    errors = refused.stderr.decode()
    priority = "rule 010-priority: set[0].value: 'high' is no valid priority; one of: 1 very low"
    assert priority in errors
    for index in range(10):
        assert f"rule 020-everything: set[{index}].value: " in errors, errors
    assert "rule 020-everything: set[10].header: there is no ticket dynamic field 'Nope'" in errors
    assert "set[11]" not in errors  # a title takes any text
    assert "Traceback" not in errors
    assert await count(db, postmaster_filter) == 0  # all or nothing

    (tmp_path / "known.toml").write_text(KNOWN_VALUES)
    imported = pytrs(config, "filters", "import", str(tmp_path / "known.toml"))
    assert imported.returncode == 0, imported.stderr
    warning = "filters: warning: rule 010-known: set[9].value: '[***]' takes text from the mail"
    assert imported.stderr.decode().startswith(warning)
    assert await count(db, postmaster_filter) == 11


async def test_dry_run_refuses_stored_values_that_would_do_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    """Rules stored before values were checked (or whose queue has gone since)."""
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    (tmp_path / "known.toml").write_text(KNOWN_VALUES)
    assert pytrs(config, "filters", "import", str(tmp_path / "known.toml")).returncode == 0
    mail = tmp_path / "vip.eml"
    mail.write_bytes(make_mail(sender="Boss <boss@vip.example.org>", subject="urgent"))
    tested = pytrs(config, "filters", "test", str(mail))
    assert tested.returncode == 0, tested.stderr
    # Stored rows come back in header order, so the index differs from the file's.
    assert b"rule 010-known: set[7].value: '[***]' takes text from the mail" in tested.stderr
    assert b"X-PyTRS-Priority: boss" in tested.stdout  # what the mail made of it

    async with db.transaction() as conn:
        await conn.execute(
            insert(postmaster_filter),
            [{"f_name": "030-old", "f_stop": 0, "f_type": "Set", "f_key": "X-PyTRS-Priority",
              "f_value": "high", "f_not": 0}],
        )  # fmt: skip
    tested = pytrs(config, "filters", "test", str(mail))
    assert tested.returncode == 1
    assert b"rule 030-old: set[0].value: 'high' is no valid priority" in tested.stderr
    assert tested.stdout == b""
