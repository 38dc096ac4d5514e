"""A first-time admin's mistakes, answered by the real `pytrs` command: one line saying what
is wrong, the documented exit code, no traceback (README, Commands)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from .conftest import TEST_DATABASE_URL, engine_name
from .test_cli_errors import ROOT, cli, one_line


def unused_config(tmp_path: Path) -> Path:
    """A configuration whose database is never reached: the command fails before it."""
    path = tmp_path / "pytrs.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/never.db"\n')
    return path


@pytest.mark.parametrize("command", ["filters", "responses"])
def test_import_files_that_will_not_do(tmp_path: Path, command: str) -> None:
    config = str(unused_config(tmp_path))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xf0\x28\x8c\x28 = 1\n")
    one_line(cli(command, "import", str(binary), "--config", config), 1, "not UTF-8 text")
    broken = tmp_path / "broken.toml"
    broken.write_text("not toml [[[\n")
    one_line(cli(command, "import", str(broken), "--config", config), 1, "TOML syntax error")
    missing = str(tmp_path / "missing.toml")
    err = one_line(cli(command, "import", missing, "--config", config), 2, "cannot read")
    assert err.strip().endswith("No such file or directory"), err
    one_line(cli(command, "import", str(tmp_path), "--config", config), 2, "Is a directory")
    assert not (tmp_path / "never.db").exists()


def test_files_read_at_each_connection_are_checked_at_start(tmp_path: Path) -> None:
    """A mistyped password or CA file used to pass `config check` and start a daemon that
    retried a FileNotFoundError forever; now both refuse it, naming the key."""
    config = unused_config(tmp_path)
    config.write_text(
        config.read_text()
        + f'[outbound]\npassword_file = "{tmp_path}/pw"\nca_file = "{tmp_path}"\n'
        + '[[queues]]\nname = "Support"\n'
        + '[[mail_accounts]]\ntype = "imap"\nhost = "localhost"\nuser = "u"\nqueue = "Support"\n'
        + f'password_file = "{tmp_path}/imap.pw"\n'
    )
    needles = (
        f"config: outbound.password_file: cannot read {tmp_path}/pw: No such file",
        f"config: outbound.ca_file: cannot read {tmp_path}: Is a directory",
        f"config: mail_accounts[0].password_file: cannot read {tmp_path}/imap.pw",
    )
    one_line(cli("config", "check", "--config", str(config)), 1, *needles)
    one_line(cli("run", "--config", str(config)), 1, *needles)
    assert not (tmp_path / "never.db").exists()


@pytest.mark.skipif(engine_name() != "postgresql", reason="a PostgreSQL schema")
def test_a_missing_postgresql_schema_is_named(tmp_path: Path) -> None:
    """Reads said "not at head: run pytrs db upgrade", and db upgrade then failed with an
    internal error (70) on its first CREATE TABLE."""
    config = tmp_path / "pytrs.toml"
    config.write_text(f'[database]\nurl = "{TEST_DATABASE_URL}"\nschema = "pytrs_no_such_schema"\n')
    needle = "no schema of search_path 'pytrs_no_such_schema' exists"
    for command in (["db", "upgrade"], ["db", "check"], ["inbox", "list"], ["run"]):
        one_line(cli(*command, "--config", str(config)), 3, needle, "[database] schema")


def test_an_empty_configuration_file_is_not_a_configuration(tmp_path: Path) -> None:
    """`deliver --config empty.toml` stored mail in ./var/pytrs.db, which is what
    --defaults is there to prevent."""
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    mail = b"From: a@example.org\r\nTo: support@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    one_line(cli("deliver", "--config", str(empty), cwd=tmp_path, stdin=mail), 75, "sets nothing")
    for command in (["run"], ["db", "upgrade"]):
        one_line(cli(*command, "--config", str(empty), cwd=tmp_path), 2, "sets nothing")
    checked = cli("config", "check", "--config", str(empty), cwd=tmp_path)
    assert checked.returncode == 0 and b"warning" in checked.stderr, checked.stderr
    assert not (tmp_path / "var").exists()


def test_deliver_with_stdin_closed(tmp_path: Path) -> None:
    """An internal error (AttributeError on None) before; the exit code was right already."""
    config = unused_config(tmp_path)
    result = subprocess_closed_stdin("deliver", "--config", str(config))
    one_line(result, 75, "deliver: no standard input")


def subprocess_closed_stdin(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`pytrs ARGS <&-`: the child starts with file descriptor 0 closed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env["PYTHONPATH"] = str(ROOT)
    script = 'exec 0<&-; exec "$@"'
    command = ["sh", "-c", script, "sh", sys.executable, "-m", "pytrs", *args]
    return subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)


def start_daemon_process(
    tmp_path: Path, extra: str = "", *, new_session: bool = False, args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """`pytrs run` on an upgraded SQLite database under `tmp_path`, its stderr piped."""
    config = tmp_path / "pytrs.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/pytrs.db"\n'
        '[smtp]\nlisten = ["127.0.0.1:0"]\n[web]\nlisten = ""\n' + extra
    )
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "pytrs", "run", "--config", str(config), *args],
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=new_session,
    )


def test_ctrl_c_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    """The README's table said 130 for Ctrl-C; `run` drains and exits 0, as on SIGTERM."""
    daemon = start_daemon_process(tmp_path)
    assert daemon.stderr is not None
    for line in daemon.stderr:  # wait until it has started
        if b"pytrs started" in line and b"[worker " not in line:  # not its worker child's
            break
    daemon.send_signal(signal.SIGINT)
    with daemon.stderr:
        assert daemon.wait(timeout=60) == 0
        assert b"Traceback" not in daemon.stderr.read()


def test_filters_test_warns_of_no_mail_it_would_not_send(tmp_path: Path) -> None:
    """Without [outbound] loop_secret (the example configuration) every `filters test`
    logged "worker-1: sends no mail … loop_secret_file: required" though it sends nothing."""
    config = tmp_path / "pytrs.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/pytrs.db"\n'
        '[[queues]]\nname = "Support"\n'
        '[[system_addresses]]\naddress = "support@example.com"\nqueue = "Support"\n'
    )
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    mail = tmp_path / "m.eml"
    mail.write_bytes(b"From: a@example.org\r\nTo: support@example.com\r\nSubject: hi\r\n\r\nx\r\n")
    tested = cli("filters", "test", str(mail), "--config", str(config))
    assert tested.returncode == 0, tested.stderr
    assert b"routing: new ticket" in tested.stdout
    assert tested.stderr == b"", tested.stderr


def test_filters_import_names_every_problem_at_once(tmp_path: Path) -> None:
    """One malformed rule hid the bad regexes of all the others: the admin fixed the file
    one round at a time."""
    rules = tmp_path / "filters.toml"
    rules.write_text(
        '[[filters]]\nname = "a"\nmatch = [ { header = "Subject", value = "([" } ]\n'
        'set = [ { header = "X-PyTRS-Queue", value = "Sales" } ]\n'
        '[[filters]]\nname = "b"\nmatch = "Subject"\n'
    )
    result = cli("filters", "import", str(rules), "--config", str(unused_config(tmp_path)))
    one_line(result, 1, "rule b: match: must be an array", "rule a: match[0].value: not a valid")
    assert not (tmp_path / "never.db").exists()


def test_reading_a_closed_stdin(tmp_path: Path) -> None:
    """`parse -` and `filters test -` with stdin closed were internal errors (70)."""
    config = str(unused_config(tmp_path))
    parsed = subprocess_closed_stdin("parse", "-", "--config", config)
    assert parsed.returncode == 1 and b"error: standard input is closed" in parsed.stdout
    tested = subprocess_closed_stdin("filters", "test", "-", "--config", config)
    one_line(tested, 2, "-: standard input is closed")


def test_a_bad_pattern_in_the_configuration_is_one_line(tmp_path: Path) -> None:
    """RE2 logged "WARNING: All log messages before absl::InitializeLog() …" and its own
    error line to stderr, and the reason came out as b'…'."""
    config = unused_config(tmp_path)
    config.write_text(
        config.read_text()
        + '[loop_protection]\nno_auto_response_pattern = "(["\n'
        + '[[external_ticket_numbers]]\nname = "x"\nnumber_pattern = "I-(\\\\d+)"\n'
        + 'dynamic_field = "Incident"\nfrom_address_pattern = "(["\n'
    )
    err = one_line(cli("config", "check", "--config", str(config)), 2, "from_address_pattern")
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("pytrs: config: ") for line in lines), err
    assert "missing ]: [" in lines[1] and "b'" not in err, err


def test_run_with_roles_that_start_nothing(tmp_path: Path) -> None:
    """`run --role web` with the web view switched off started a daemon that logged "pytrs
    started: nothing" and idled."""
    config = unused_config(tmp_path)
    config.write_text(config.read_text() + '[web]\nlisten = ""\n')
    one_line(cli("run", "--role", "web", "--config", str(config)), 2, "web needs [web] listen")


def test_run_the_scheduler_alone(tmp_path: Path) -> None:
    """`run --role scheduler` was refused while the role started nothing; it runs the
    escalation scheduler alone now (several daemons may each run one)."""
    daemon = start_daemon_process(tmp_path, args=("--role", "scheduler"))
    assert daemon.stderr is not None
    for line in daemon.stderr:  # wait until it has started
        if b"pytrs started" in line and b"[worker " not in line:
            assert b"scheduler every" in line and b"smtp" not in line, line
            break
    else:
        raise AssertionError("the daemon never said it had started")
    daemon.send_signal(signal.SIGINT)
    with daemon.stderr:
        assert daemon.wait(timeout=60) == 0
        assert b"Traceback" not in daemon.stderr.read()


def test_a_database_url_naming_a_directory(tmp_path: Path) -> None:
    """SQLite cannot open a directory, and aiosqlite printed a thread traceback ("Event loop
    is closed") under the one line."""
    config = tmp_path / "pytrs.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}"\n')
    for command in (["inbox", "list"], ["db", "upgrade"]):
        one_line(cli(*command, "--config", str(config)), 3, "a directory, not an SQLite file")


def test_deliver_logs_a_mail_without_message_id(tmp_path: Path) -> None:
    config = tmp_path / "pytrs.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/pytrs.db"\n')
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    mail = b"From: a@example.org\r\nTo: support@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    stored = cli("deliver", "--config", str(config), stdin=mail)
    assert stored.returncode == 0, stored.stderr
    assert b"queued as 1 (no Message-ID)" in stored.stderr, stored.stderr


def test_output_that_cannot_be_written(tmp_path: Path) -> None:
    """`pytrs parse m.eml > /dev/full` was an internal error (70), as if pytrs had a bug."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    mail = tmp_path / "m.eml"
    mail.write_bytes(b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n")
    with open("/dev/full", "wb") as full:
        result = cli(
            "parse", str(mail), "--config", str(unused_config(tmp_path)), stdout=full.fileno()
        )
    err = one_line(result, 2, "cannot write the output: No space left on device")
    assert len(err.splitlines()) == 1, err


def test_ctrl_c_with_worker_processes_drains_them(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the worker child took its parent's SIGTERM
    for a second signal and logged "second signal: exiting now" instead of draining."""
    daemon = start_daemon_process(tmp_path, "[postmaster]\nprocesses = 1\n", new_session=True)
    assert daemon.stderr is not None
    with daemon.stderr:
        started = set()  # the daemon's line and its child's, in either order
        for line in daemon.stderr:  # the child's start is logged to the same stderr
            if b"pytrs started" in line:
                started.add(b"[worker " in line)
                if len(started) == 2:
                    break
        os.killpg(daemon.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert daemon.wait(timeout=60) == 0
        rest = daemon.stderr.read()
    assert b"second signal" not in rest and rest.count(b"pytrs stopped") == 2, rest


def test_responses_import_says_where_a_body_file_was_looked_for(tmp_path: Path) -> None:
    """It said "cannot read reply.j2: not found", relative to what left to guess."""
    responses = tmp_path / "responses.toml"
    responses.write_text(
        '[[responses]]\nname = "r"\ntype = "auto reply"\nqueues = ["Support"]\n'
        'subject = "Re"\nbody_file = "reply.j2"\n'
    )
    config = tmp_path / "pytrs.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/pytrs.db"\n')
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    result = cli("responses", "import", str(responses), "--config", str(config))
    one_line(result, 1, f"body_file: cannot read reply.j2: not found ({tmp_path}/reply.j2")


@pytest.mark.skipif(engine_name() != "postgresql", reason="a PostgreSQL database")
def test_a_missing_postgresql_database_says_what_makes_it(tmp_path: Path) -> None:
    """The README promised `db upgrade` creates the database; on PostgreSQL it cannot, and
    "does not exist" alone did not say what does."""
    missing = make_url(TEST_DATABASE_URL).set(database="pytrs_admin_no_such_db")
    url = missing.render_as_string(hide_password=False)
    config = tmp_path / "pytrs.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    result = cli("db", "upgrade", "--config", str(config))
    one_line(result, 3, "does not exist: create it (createdb pytrs_admin_no_such_db)")
