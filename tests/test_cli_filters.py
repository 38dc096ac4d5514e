"""`pytrs filters import|export|test` against a real database: all-or-nothing imports, round trip,
and a dry run that explains every rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytrs.schema.tables import postmaster_filter

from .helpers import count, make_mail
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
