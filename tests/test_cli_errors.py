"""How the real `pytrs` command fails: one line and a documented exit code, never a traceback
(unless --debug); no database created by mistake; `deliver` defers mail on every failure."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from pytrs.schema.database import Database

from .conftest import TEST_DATABASE_URL, engine_name
from .helpers import make_mail
from .test_cli import write_config
from .test_cli_outbox import make_row

ROOT = Path(__file__).resolve().parents[1]
HUGE = "99999999999999999999"  # past BIGINT: must never reach the driver


def cli(
    *args: str, cwd: Path | None = None, stdin: bytes = b"", stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    """The console script as a subprocess, without any PYTRS_* variable of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytrs", *args], input=stdin, stdout=stdout,
        stderr=subprocess.PIPE, cwd=cwd, env=env, timeout=60, check=False,
    )  # fmt: skip


def one_line(result: subprocess.CompletedProcess[bytes], code: int, *needles: str) -> str:
    """The stderr of a failed command: the expected code, the needles, no traceback."""
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def never_upgraded(tmp_path: Path, settings: dict[str, Any]) -> Path:
    if engine_name() == "sqlite":  # an existing, empty SQLite file
        sqlite3.connect(make_url(settings["url"]).database).close()
    return write_config(tmp_path / "pytrs.toml", settings)


def test_read_commands_on_a_database_never_upgraded(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    config = never_upgraded(tmp_path, database_settings)
    for command in (["inbox", "list"], ["filters", "export"], ["outbox", "show", "1"]):
        result = cli(*command, "--config", str(config))
        one_line(result, 3, "database schema is not at head", "pytrs db upgrade")


def test_db_check_on_a_missing_or_unreachable_database(tmp_path: Path) -> None:
    """What systemd runs as ExecStartPre: a clear line and a non-zero exit, no traceback."""
    if engine_name() == "postgresql":
        missing = make_url(TEST_DATABASE_URL).set(database="pytrs_no_such_database")
        url = missing.render_as_string(hide_password=False)
        needle = 'database "pytrs_no_such_database" does not exist'
    else:
        url, needle = f"sqlite+aiosqlite:///{tmp_path}/nowhere/pytrs.db", "database not found at"
    config = write_config(tmp_path / "missing.toml", {"url": url})
    one_line(cli("db", "check", "--config", str(config)), 3, needle)
    down = write_config(tmp_path / "down.toml", {"url": "postgresql+asyncpg://u@127.0.0.1:9/x"})
    one_line(cli("db", "check", "--config", str(down)), 3, "cannot open the database")
    assert not (tmp_path / "nowhere").exists()


def test_ids_and_limits_out_of_range_are_usage_errors(tmp_path: Path) -> None:
    # Refused while parsing: the configuration names no database that exists.
    config = write_config(tmp_path / "c.toml", {"url": f"sqlite+aiosqlite:///{tmp_path}/no.db"})
    for command in (
        ["inbox", "show", HUGE], ["inbox", "retry", HUGE], ["outbox", "show", HUGE],
        ["outbox", "retry", "1", HUGE], ["inbox", "show", "0"], ["outbox", "show", "-3"],
        ["inbox", "list", "--limit", "-1"], ["outbox", "list", "--limit", HUGE],
        ["inbox", "list", "--limit", "ten"],
    ):  # fmt: skip
        one_line(cli("--config", str(config), *command), 2, "must be a whole number from 1 to")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", {"url": f"sqlite+aiosqlite:///{tmp_path}/no.db"})
    result = cli("inbox", "list", "--config", str(config), "--debug")
    assert result.returncode == 3
    assert b"Traceback" in result.stderr and b"DatabaseNotFound" in result.stderr


def closed_reader(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader is gone before the first write (`… | head`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return cli(*args, stdout=write)
    finally:
        os.close(write)


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(body="line\n" * 400))
    for output in ([], ["--jsonl"], ["--json"]):
        result = closed_reader("parse", *[str(mail)] * 50, *output)
        assert (result.returncode, result.stderr) == (141, b""), result.stderr


async def test_outbox_show_into_a_closed_pipe(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    row_id = await make_row(db, "a@customer.example")
    for raw in ([], ["--raw"]):
        result = closed_reader("outbox", "show", str(row_id), "--config", str(config), *raw)
        assert (result.returncode, result.stderr) == (141, b""), result.stderr


async def test_run_names_the_address_in_use(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = write_config(tmp_path / "pytrs.toml", database_settings, listen=address)
        result = cli("run", "--config", str(config))
    err = one_line(result, 1, f"cannot listen for SMTP on {address}: address already in use")
    assert "ExceptionGroup" not in err


def test_commands_that_write_want_a_configuration_file(tmp_path: Path) -> None:
    """The pipe trap: run from another directory, the built-in defaults created ./var/pytrs.db
    and `deliver` stored mail there (or exited 75 for ever). Now nothing is created."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("deliver", "--recipient", "support@example.com", cwd=elsewhere, stdin=make_mail())
    one_line(result, 75, "no configuration file", "--config FILE", "MTA keeps the message")
    for command in (["run"], ["db", "upgrade"]):
        one_line(cli(*command, cwd=elsewhere), 2, "no configuration file", "--defaults")
    # Read-only commands may use the defaults, but never create the database they look for.
    for command in (["db", "check"], ["inbox", "list"], ["outbox", "list"], ["accounts"]):
        one_line(cli(*command, cwd=elsewhere), 3, "database not found at")
    # Even --defaults does not let `deliver` create a database: that is `db upgrade`'s job.
    result = cli("--defaults", "deliver", cwd=elsewhere, stdin=make_mail())
    one_line(result, 75, "database not found at")
    assert list(elsewhere.iterdir()) == []
    # Asked for explicitly, the quick start still works from the defaults.
    assert cli("db", "upgrade", "--defaults", cwd=elsewhere).returncode == 0
    assert (elsewhere / "var" / "pytrs.db").is_file()


def test_read_commands_never_create_a_mistyped_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/typo/pytrs.db"
    config = str(write_config(tmp_path / "c.toml", {"url": url}))
    for command in (
        ["inbox", "list"], ["inbox", "show", "1"], ["inbox", "retry", "--all"],
        ["outbox", "list"], ["outbox", "suppressed"], ["accounts"], ["filters", "export"],
        ["responses", "export"], ["db", "check"],
    ):  # fmt: skip
        one_line(cli(*command, "--config", config), 3, f"database not found at {tmp_path}/typo")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--config", "/nonexistent/pytrs.toml"], "configuration file not found"),
        (["--queue"], "expected one argument"),
    ],
)
async def test_deliver_defers_on_any_mistake(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, args: list[str], needle: str
) -> None:
    """A mistyped pipe line defers mail (75): argparse's exit 2 made Postfix bounce it."""
    config = str(write_config(tmp_path / "pytrs.toml", database_settings))
    result = cli("deliver", "--config", config, *args, stdin=make_mail())
    one_line(result, 75, needle, "MTA keeps the message")


async def test_deliver_takes_its_options_after_the_subcommand(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = str(write_config(tmp_path / "pytrs.toml", database_settings))
    stored = cli("deliver", "--config", config, "--recipient", "support@example.com",
                 stdin=make_mail())  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert cli("deliver", "--config", config, stdin=b"").returncode == 65
