"""The command line: `pytrs deliver` exit codes, `pytrs db`, `pytrs config check`, `pytrs inbox`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytrs.cli import _parser
from pytrs.schema.tables import inbox

from .conftest import engine_name, wait_until
from .helpers import count, make_mail


def write_config(
    path: Path, database: dict[str, Any], extra: str = "", *, listen: str = "127.0.0.1:0"
) -> Path:
    lines = ["[database]", f'url = "{database["url"]}"']
    if database.get("schema"):
        lines.append(f'schema = "{database["schema"]}"')
    lines += [
        "[smtp]", f'listen = ["{listen}"]', "[web]", 'listen = ""',
        "[[queues]]", 'name = "Support"',
        "[[system_addresses]]", 'address = "support@example.com"', 'queue = "Support"',
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def pytrs(
    config: Path,
    *args: str,
    stdin: bytes = b"",
    timeout: float = 60,
    environ: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env.update(environ or {})
    return subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config), *args],
        input=stdin, capture_output=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


async def test_deliver_exit_codes(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    ok = pytrs(config, "deliver", "--recipient", "support@example.com", stdin=make_mail())
    assert ok.returncode == 0, ok.stderr
    assert await count(db, inbox) == 1
    again = pytrs(config, "deliver", "--recipient", "support@example.com", stdin=make_mail())
    assert again.returncode == 0
    assert pytrs(config, "deliver", stdin=b"").returncode == 65
    assert pytrs(config, "deliver", stdin=b"\x00\x01 this is not mail\n").returncode == 65
    assert await count(db, inbox) == 2


def test_deliver_tempfails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # A PostgreSQL URL on a port nothing listens on, and an SQLite file that cannot exist.
    for url in ("postgresql+asyncpg://postgres@127.0.0.1:9/nothing",
                "sqlite+aiosqlite:////proc/pytrs-cannot-exist/pytrs.db"):  # fmt: skip
        config = write_config(tmp_path / "down.toml", {"url": url})
        result = pytrs(config, "deliver", stdin=make_mail())
        assert result.returncode == 75, result.stderr
        assert b"MTA should retry" in result.stderr


async def test_db_check_and_upgrade(tmp_path: Path, database_settings: dict[str, Any]) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    before = pytrs(config, "db", "check")
    if engine_name() == "sqlite":  # no file yet: `db check` must not create one
        assert before.returncode == 3 and b"database not found" in before.stderr
    else:  # an empty schema
        assert before.returncode == 1 and b"nothing" in before.stdout
        assert b"pytrs db upgrade" in before.stderr
    assert pytrs(config, "db", "upgrade").returncode == 0
    after = pytrs(config, "db", "check")
    assert after.returncode == 0, after.stdout
    assert pytrs(config, "db", "upgrade").returncode == 0  # idempotent


def test_config_check_names_bad_keys(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.toml", {"url": "sqlite+aiosqlite:///x.db"})
    assert pytrs(good, "config", "check").returncode == 0
    typos = '[smtp2]\nlisten = []\n[ticket]\nnumber_generater = "Date"\n'
    bad = write_config(tmp_path / "bad.toml", {"url": "sqlite+aiosqlite:///x.db"}, extra=typos)
    result = pytrs(bad, "config", "check")
    assert result.returncode == 2
    assert b"smtp2" in result.stderr and b"ticket.number_generater" in result.stderr


def test_config_check_compiles_templates_and_reads_keys(tmp_path: Path) -> None:
    """What only shows when the daemon starts is checked too: templates and DKIM keys."""
    entries = (
        '[[auto_responses]]\nqueue = "Support"\ntype = "auto reply"\n'
        'subject = "Re: {{ article.subject }"\nbody = "hello"\n'
        '[[dkim_keys]]\ndomain = "example.com"\nselector = "s1"\n'
        f'private_key_file = "{tmp_path / "missing.key"}"\n'
        '[agent_mail]\nnew_ticket_body = "{{ ticket.nope() }}"\n'
    )
    bad = write_config(tmp_path / "bad.toml", {"url": "sqlite+aiosqlite:///x.db"}, extra=entries)
    result = pytrs(bad, "config", "check")
    assert result.returncode == 1
    assert b"auto_responses[0]" in result.stderr and b"dkim_keys[0]" in result.stderr
    assert b"agent_mail" in result.stderr


def test_config_check_warns_about_a_warning_share_without_a_budget(tmp_path: Path) -> None:
    extra = '[[slas]]\nname = "gold"\nnotify_before_percent = 80\n'
    config = write_config(tmp_path / "pytrs.toml", {"url": "sqlite+aiosqlite:///x.db"}, extra)
    result = pytrs(config, "config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines() == [
        "pytrs: config: warning: slas[0].notify_before_percent: 'gold' has no first_response, "
        "update or solution budget to warn about"
    ]


# (what the file adds, environment, the key the one error names, exit code): what `pytrs run`
# refuses, each of which `pytrs config check` must refuse the same way. "{dir}" is tmp_path.
REFUSED = [
    ('[outbound]\nloop_secret = "short"\n', {}, "outbound.loop_secret", 1),
    ('[outbound]\nloop_secret_file = "{dir}/short.key"\n', {}, "outbound.loop_secret_file", 1),
    ('[outbound]\nloop_secret_file = "{dir}/none.key"\n', {}, "outbound.loop_secret_file", 1),
    ("", {"PYTRS_OUTBOUND_LOOP_SECRET": "short"}, "outbound.loop_secret", 1),
    (
        '[authentication]\nreply_token_secret_file = "{dir}/short.key"\n',
        {}, "authentication.reply_token_secret_file", 1,
    ),
    ('[agent_mail]\nnew_ticket_body = "{{{{ x"\n', {}, "agent_mail", 1),
    (
        '[[dkim_keys]]\ndomain = "example.com"\nselector = "s"\n'
        'private_key_file = "{dir}/none.key"\n',
        {}, "dkim_keys[0].private_key_file", 1,
    ),
    ("[outbound]\nbatch_size = 100000000000000000000000\n", {}, "outbound.batch_size", 2),
    ("[postmaster]\nlease_seconds = 1e300\n", {}, "postmaster.lease_seconds", 2),
    ("[postmaster]\nworkers = true\n", {}, "postmaster.workers", 2),
    ('[[mail_accounts]]\ntype = "imap"\nhost = "h"\nuser = "u"\nport = 70000\n', {},
     "mail_accounts[0].port", 2),
    ("", {"PYTRS_DATABASE_URL": "postgres://pytrs@db/pytrs"}, "database.url", 2),
    ("", {"PYTRS_SMTP_LISTN": "127.0.0.1:25"}, "PYTRS_SMTP_LISTN", 2),
    ("", {"PYTRS_POSTMASTER_BATCH_SIZE": "true"}, "PYTRS_POSTMASTER_BATCH_SIZE", 2),
    ('[scheduler]\ntimezone = "Mars/Olympus"\n', {}, "scheduler.timezone", 2),
    ('[scheduler]\nescalated_body = "{{{{ escalation.nope() }}}}"\n', {},
     "scheduler.escalated_body", 1),
    ('[[slas]]\nname = "gold"\ncalendar = "office"\n', {}, "slas[0].calendar", 2),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "environ", "key", "code"), REFUSED)
def test_config_check_refuses_what_run_refuses(
    tmp_path: Path, extra: str, environ: dict[str, str], key: str, code: int
) -> None:
    """One line naming the key, no traceback, and the same from `config check` and `run`."""
    (tmp_path / "short.key").write_text("0123456789\n")
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    config = write_config(tmp_path / "pytrs.toml", {"url": url}, extra=extra.format(dir=tmp_path))
    checked = pytrs(config, "config", "check", environ=environ)
    lines = checked.stderr.decode().splitlines()
    assert checked.returncode == code, checked.stderr
    assert len(lines) == 1 and lines[0].startswith(f"pytrs: config: {key}"), lines
    started = pytrs(config, "run", environ=environ)
    assert (started.returncode, started.stderr) == (code, checked.stderr)
    assert not (tmp_path / "x.db").exists()  # refused before opening the database


async def test_inbox_list_show_json(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    assert pytrs(config, "deliver", stdin=make_mail(subject="listed")).returncode == 0
    listing = pytrs(config, "inbox", "list", "--json")
    [row] = json.loads(listing.stdout)
    assert row["state"] == "pending" and row["source"] == "pipe"
    shown = pytrs(config, "inbox", "show", str(row["id"]))
    assert b"state: pending" in shown.stdout
    raw = pytrs(config, "inbox", "show", str(row["id"]), "--raw")
    assert b"Subject: listed" in raw.stdout
    assert pytrs(config, "inbox", "show", "999999").returncode == 1


def test_run_refuses_an_unmigrated_or_unreachable_database(tmp_path: Path) -> None:
    (tmp_path / "x.db").touch()  # an SQLite file that was never upgraded
    fresh = write_config(tmp_path / "fresh.toml", {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
    result = pytrs(fresh, "run")
    assert result.returncode == 3 and b"pytrs db upgrade" in result.stderr
    down = write_config(tmp_path / "down.toml", {"url": "postgresql+asyncpg://u@127.0.0.1:9/x"})
    result = pytrs(down, "run")
    assert result.returncode == 3 and b"cannot open the database" in result.stderr


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Any]:
    """Every runnable subcommand path with its parser, e.g. (("inbox", "list"), parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [
        leaf for name, sub in subs[0].choices.items() for leaf in leaf_commands(sub, (*path, name))
    ]


def test_every_subcommand_takes_the_global_options() -> None:
    leaves = leaf_commands(_parser())
    assert len(leaves) > 15
    for path, parser in leaves:
        options = {option for action in parser._actions for option in action.option_strings}
        assert {"--config", "--defaults", "--debug"} <= options, path


async def test_config_after_the_subcommand(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = str(write_config(tmp_path / "pytrs.toml", database_settings))
    for command in (
        ["inbox", "list"], ["outbox", "list"], ["db", "check"], ["config", "check"],
        ["accounts"], ["filters", "export"], ["responses", "export"],
    ):  # fmt: skip
        result = pytrs_bare(*command, "--config", config)
        assert result.returncode == 0, (command, result.stderr)
    # Given both before and after the subcommand, the later one wins, as options do.
    result = pytrs_bare("--config", "/nonexistent.toml", "db", "check", "--config", config)
    assert result.returncode == 0, result.stderr


def pytrs_bare(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    return subprocess.run(
        [sys.executable, "-m", "pytrs", *args], capture_output=True, timeout=60, env=env,
        check=False,
    )  # fmt: skip


def test_version() -> None:
    result = pytrs_bare("--version")
    assert result.returncode == 0 and result.stdout.startswith(b"pytrs ")


async def test_inbox_list_columns_stay_aligned(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    long_name = "Bartholomew " * 12
    mails = [
        make_mail(subject="short", sender="Al <al@customer.example>"),
        make_mail(subject="=?utf-8?q?Dr=C3=BCcker?= " + "very long subject " * 10,
                  sender=f"{long_name}<bart@customer.example>"),
    ]  # fmt: skip
    for mail in mails:
        assert pytrs(config, "deliver", stdin=mail).returncode == 0
    listing = pytrs(config, "inbox", "list").stdout.decode()
    header, *lines = listing.splitlines()
    assert header.split() == ["ID", "STATE", "SRC", "TRIES", "TICKET", "FROM", "SUBJECT"]
    # Every column starts where its title does, whatever the length of the values before it.
    starts = [header.index(title) for title in ("STATE", "TICKET", "FROM", "SUBJECT")]
    for line in lines:
        assert all(line[start - 2 : start] == "  " and line[start] != " " for start in starts), line
    newest, oldest = lines
    assert "Drücker very long subject" in newest and newest.endswith("…")
    assert "Bartholomew" in newest and "bart@customer.example" not in newest  # cut, not wrapped
    assert "Al <al@customer.example>" in oldest and oldest.endswith("short")


async def test_inbox_of_processed_mail(
    tmp_path: Path, database_settings: dict[str, Any], daemon: Any, db: Any
) -> None:
    """Once processed: the ticket number, From and Subject from the article, the raw copy from
    article_data_mime_plain, and a retry that says why it does nothing."""
    config = write_config(tmp_path / "pytrs.toml", database_settings)

    def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        # In a thread: the daemon runs in this test's event loop and must keep going.
        return pytrs(config, *args, stdin=stdin)

    mail = make_mail(subject="Processed printer", sender="Bob <bob@customer.example>")
    stored = await asyncio.to_thread(
        cli, "deliver", "--recipient", "support@example.com", stdin=mail
    )
    assert stored.returncode == 0, stored.stderr

    async def processed() -> Any:
        rows = json.loads((await asyncio.to_thread(cli, "inbox", "list", "--json")).stdout)
        return rows if rows and rows[0]["state"] == "done" else None

    [row] = await wait_until(processed, within=60, interval=0.5)
    assert row["tn"] and row["from"] == "Bob <bob@customer.example>"
    assert row["subject"] == "Processed printer"
    line = (await asyncio.to_thread(cli, "inbox", "list")).stdout.decode().splitlines()[1]
    assert row["tn"] in line and "Bob <bob@customer.example>" in line
    raw = await asyncio.to_thread(cli, "inbox", "show", str(row["id"]), "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == mail
    retry = await asyncio.to_thread(cli, "inbox", "retry", str(row["id"]))
    assert retry.returncode == 1
    assert f"inbox {row['id']}: is done, not quarantined".encode() in retry.stderr
    missing = await asyncio.to_thread(cli, "inbox", "retry", "424242")
    assert missing.returncode == 1 and b"inbox 424242: no such row" in missing.stderr


async def test_json_with_nothing_to_show_is_an_empty_list(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    for command in (["inbox", "list"], ["outbox", "list"], ["outbox", "suppressed"], ["accounts"]):
        result = pytrs(config, *command, "--json")
        assert (result.returncode, json.loads(result.stdout)) == (0, []), command
        assert pytrs(config, *command, "--jsonl").stdout == b"", command
