"""Installing as a service, as the README says: the unit verified and scored, a fresh install run.

The unit is `systemd/pytrs.service` and the commands are the README's section "Installing as a
service", both read by `tests/install.py`. systemd is not PID 1 on the test machine, so
`systemd-analyze verify` and `security --offline=true` check the unit file, and the fresh
install emulates the start systemd would make (user, state directory, credentials, umask,
working directory, environment, notify socket); the sandboxing itself (namespaces, seccomp) is
not applied by the emulation.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TEST_DATABASE_URL
from .helpers import make_mail
from .install import (
    ROOT,
    UNIT,
    Emulation,
    Install,
    code_blocks,
    readme_section,
    shell_commands,
    unit_settings,
    write_launcher,
)
from .postfix import unprivileged_python

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (it comes with systemd)"
)
MAX_EXPOSURE = 2.0


def analysable_copy(folder: Path, *, drop_in: bool = False) -> Path:
    """The unit with its ExecStart binaries at a launcher of this checkout (`verify` checks they
    exist and are executable), optionally with the port-25 drop-in beside it."""
    launcher = folder / "opt/pytrs/.venv/bin/pytrs"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m pytrs "$@"\n')
    launcher.chmod(0o755)
    unit = folder / "pytrs.service"
    unit.write_text(UNIT.read_text().replace("/opt/pytrs", str(folder / "opt/pytrs")))
    if drop_in:
        (folder / "pytrs.service.d").mkdir()
        shutil.copy(UNIT.parent / "port-25.conf", folder / "pytrs.service.d/port-25.conf")
    return unit


def exposure(unit: Path) -> float:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=120, check=False, cwd=unit.parent,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for pytrs\.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found[1])


@needs_analyze
@pytest.mark.parametrize("drop_in", [False, True], ids=["unit", "with-port-25-drop-in"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, drop_in: bool) -> None:
    assert ANALYZE is not None
    unit = analysable_copy(tmp_path, drop_in=drop_in)
    done = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_analyze
@pytest.mark.parametrize("drop_in", [False, True], ids=["unit", "with-port-25-drop-in"])
def test_security_exposure_is_at_most_2(tmp_path: Path, drop_in: bool) -> None:
    assert exposure(analysable_copy(tmp_path, drop_in=drop_in)) <= MAX_EXPOSURE


def test_the_unit_has_what_a_first_install_needs() -> None:
    unit = unit_settings(UNIT.read_text())
    assert unit["Type"] == ["notify"]
    assert unit["User"] == unit["Group"] == ["pytrs"]
    # Migrations by the unit, as its user, before the daemon: a fresh database comes up.
    assert unit["ExecStartPre"] == ["/opt/pytrs/.venv/bin/pytrs db upgrade"]
    assert unit["ExecStart"] == ["/opt/pytrs/.venv/bin/pytrs run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert 30 <= int(unit["WatchdogSec"][0]) <= 60
    assert unit["Restart"] == ["on-failure"] and int(unit["RestartSec"][0]) >= 5
    assert int(unit["StartLimitBurst"][0]) * 60 <= int(unit["StartLimitIntervalSec"][0])
    assert unit["UMask"] == ["0077"]
    assert unit["LoadCredential"] == ["pytrs:/etc/pytrs/credentials"]
    assert unit["CapabilityBoundingSet"] == [""] and unit["AmbientCapabilities"] == [""]
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == ["/var/lib/pytrs"] == [f"/var/lib/{unit['StateDirectory'][0]}"]
    assert unit["WorkingDirectory"] == ["/var/lib/pytrs"]
    assert unit["Environment"] == ["PYTRS_CONFIG=/etc/pytrs/pytrs.toml"]


def test_the_readme_installs_the_unit_of_this_checkout() -> None:
    commands = [c for b in code_blocks(readme_section(), "sh") for c in shell_commands(b)]
    assert "install -m 0644 systemd/pytrs.service /etc/systemd/system/pytrs.service" in commands
    assert "systemctl enable --now pytrs" in commands


# --- migrations run by several units at once ---------------------------------------------------


def write_config(path: Path, database: dict[str, Any], *extra: str) -> Path:
    lines = ["[database]", f'url = "{database["url"]}"']
    if database.get("schema"):
        lines.append(f'schema = "{database["schema"]}"')
    lines += ["[smtp]", "listen = []", "[web]", 'listen = ""', *extra]
    path.write_text("\n".join(lines) + "\n")
    return path


def pytrs_command(config: Path, *words: str) -> list[str]:
    return [sys.executable, "-m", "pytrs", "--config", str(config), *words]


def test_several_db_upgrades_at_once_all_succeed(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    # Daemons on one PostgreSQL started together each run ExecStartPre=pytrs db upgrade.
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(pytrs_command(config, "db", "upgrade"), env=env, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [run.communicate(timeout=180)[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, errors
    check = subprocess.run(
        pytrs_command(config, "db", "check"), env=env, capture_output=True, timeout=60, check=False
    )
    assert check.returncode == 0, check


# --- the SQLite database is its owner's alone ----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_db_upgrade_creates_the_sqlite_file_and_folders_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "state" / "pytrs" / "pytrs.db"
    config = write_config(tmp_path / "pytrs.toml", {"url": f"sqlite+aiosqlite:///{database}"})
    done = subprocess.run(
        pytrs_command(config, "db", "upgrade"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        umask=0o022,  # an admin's usual umask, which used to leave the database world-readable
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done
    assert (mode(tmp_path / "state"), mode(database.parent), mode(database)) == (0o700,) * 2 + (
        0o600,
    )
    # SQLite gives its write-ahead log and shared-memory files the database file's mode.
    probe = (
        "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE probe (x)'); c.commit();"
        "print(oct(os.stat(sys.argv[1] + '-wal').st_mode & 0o777),"
        " oct(os.stat(sys.argv[1] + '-shm').st_mode & 0o777))"
    )
    wal = subprocess.run(
        [sys.executable, "-c", probe, str(database)],
        umask=0o022, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert wal.stdout.split() == ["0o600", "0o600"]


# --- a fresh install, following the README -------------------------------------------------------

SKIPPED = (
    # The virtualenv is this checkout (a launcher at /opt/pytrs/.venv/bin/pytrs), and systemd
    # and Postfix are not running here: tests/test_postfix.py runs the Postfix lines.
    re.compile(r"^apt-get install "),
    re.compile(r"^python3 -m venv "),
    re.compile(r"^/opt/pytrs/\.venv/bin/pip "),
    re.compile(r"^systemctl (daemon-reload|reload postfix)$"),
    re.compile(r"^postconf "),
)
POSTGRESQL_ONLY = re.compile(r"^runuser -u postgres -- ")
START = "systemctl enable --now pytrs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def install() -> Iterator[Install]:
    """A throw-away system user and a folder standing in for /, removed afterwards."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, useradd and setpriv (a system user is created and removed)")
    root = Path(tempfile.mkdtemp(prefix="pytrs-install-"))
    root.chmod(0o755)  # the service's user walks through it, as through /
    user = f"pytrs-t{secrets.token_hex(4)}"
    where = Install(root, user, {"127.0.0.1:2424": free_port(), "127.0.0.1:8080": free_port()})
    where.path("/etc/systemd/system").mkdir(parents=True)
    try:
        yield where
    finally:
        subprocess.run(["userdel", user], capture_output=True, check=False)
        subprocess.run(["groupdel", user], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def postgresql_url(install: Install) -> str:
    """The README's PostgreSQL `url = …` line, for the test's user and database."""
    [line] = re.findall(r'`(url = "postgresql\+asyncpg://[^"`]*")`', readme_section())
    assert "//pytrs@/pytrs?" in line, line
    return line.replace("//pytrs@/pytrs?", f"//{install.user}@/{install.user}?")


def test_a_fresh_install_as_the_readme_says_comes_up_on_the_first_try(install: Install) -> None:
    python, pythonpath = unprivileged_python("nobody")
    write_launcher(install, python, pythonpath)
    on_postgresql = TEST_DATABASE_URL.startswith("postgresql")
    emulation: Emulation | None = None
    seen: list[str] = []
    try:
        for block in code_blocks(readme_section(), "sh"):
            for command in shell_commands(block):
                seen.append(command)
                if any(pattern.search(command) for pattern in SKIPPED):
                    continue
                if POSTGRESQL_ONLY.search(command) and not on_postgresql:
                    continue
                if command == START:
                    emulation = as_systemd_would(install, on_postgresql)
                    emulation.start()
                    accepts_mail(install)
                    continue
                run_as_root(install, command)
        assert emulation is not None, f"the README never says `{START}`"
        assert any("users add" in command for command in seen), "no first admin in the README"
        code, output = emulation.stop()
        assert code == 0, output
        assert_owner_only(emulation.state_directory, emulation.user.pw_uid)
        if not on_postgresql:
            assert (emulation.state_directory / "pytrs.db").is_file()
    finally:
        if emulation is not None:
            emulation.kill()
        if on_postgresql:
            for tool in ("dropdb", "dropuser"):
                subprocess.run(
                    ["runuser", "-u", "postgres", "--", tool, "--if-exists", install.user],
                    capture_output=True, timeout=60, check=False,
                )  # fmt: skip


def as_systemd_would(install: Install, on_postgresql: bool) -> Emulation:
    unit = install.path("/etc/systemd/system/pytrs.service")
    assert unit.read_text() == UNIT.read_text()  # the README installed this checkout's unit
    if on_postgresql:
        config = install.path("/etc/pytrs/pytrs.toml")
        sqlite_line = next(line for line in config.read_text().splitlines() if "sqlite" in line)
        config.write_text(config.read_text().replace(sqlite_line, postgresql_url(install)))
    return Emulation(install, unit.read_text())


def run_as_root(install: Install, command: str) -> None:
    rewritten = install.rewrite(command)
    stdin = None
    if "users add" in command:
        # The README lets the command ask for the password twice on the terminal.
        rewritten += " --password-stdin"
        stdin = "a long enough password\n"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", rewritten],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{rewritten}\n{done.stdout}{done.stderr}"


def accepts_mail(install: Install) -> None:
    port = install.ports["127.0.0.1:2424"]
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail(
            "alice@customer.example", ["support@example.com"], make_mail(subject="installed")
        )
    assert refused == {}


def assert_owner_only(folder: Path, uid: int) -> None:
    found = [folder, *folder.rglob("*")]
    loose = [
        (str(path), oct(mode(path)), path.stat().st_uid)
        for path in found
        if path.stat().st_uid != uid or mode(path) & 0o077
    ]
    assert loose == [], loose
