"""`pytrs config check` (and `pytrs run`) on the [smtp] TLS and AUTH keys: one line naming the
key for each mistake, the exit code the README documents (2: the file does not load; 1: it
loads, but a file it names cannot be used), and never a password hash in the output.

Also `pytrs smtp hash-password`, whose line the users file takes as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..test_cli import pytrs
from .certs import make_pair, users_file

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


def write(path: Path, database: dict[str, Any], **smtp: Any) -> Path:
    lines = ["[database]", f'url = "{database["url"]}"']
    if database.get("schema"):
        lines.append(f'schema = "{database["schema"]}"')
    lines += ["[smtp]", 'listen = ["127.0.0.1:0"]']
    for key, value in smtp.items():
        lines.append(
            f"{key} = {str(value).lower()}" if isinstance(value, bool) else f'{key} = "{value}"'
        )
    lines += ["[web]", 'listen = ""', "[[queues]]", 'name = "Support"']
    lines += ["[[system_addresses]]", 'address = "support@example.com"', 'queue = "Support"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _files(tmp: Path) -> dict[str, Any]:
    pair, other = make_pair(tmp, "one"), make_pair(tmp, "two")
    good_users = users_file(tmp / "users", {"alice": "a long password"})
    bad_line = tmp / "bad-users"
    bad_line.write_text(f"# users\nalice:{HASH}\nbob {HASH}\n")
    not_argon2id = tmp / "bcrypt-users"
    not_argon2id.write_text(
        "\n# bcrypt, from another system\nalice:$2b$12$abcdefghijklmnopqrstuv\n"
    )
    junk = tmp / "junk.pem"
    junk.write_text("not a certificate\n")
    return {"pair": pair, "other": other, "users": good_users, "bad_line": bad_line,
            "not_argon2id": not_argon2id, "junk": junk}  # fmt: skip


CASES: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], int, str]] = {
    "cert without key": (
        lambda f: {"tls_cert_file": f["pair"].cert},
        2,
        "smtp.tls_key_file: missing: smtp.tls_cert_file is set; STARTTLS needs both",
    ),
    "key without cert": (
        lambda f: {"tls_key_file": f["pair"].key},
        2,
        "smtp.tls_cert_file: missing: smtp.tls_key_file is set; STARTTLS needs both",
    ),
    "require_tls without TLS": (
        lambda f: {"require_tls": True},
        2,
        "smtp.require_tls: needs smtp.tls_cert_file and smtp.tls_key_file",
    ),
    "users file without TLS": (
        lambda f: {"auth_users_file": f["users"]},
        2,
        "smtp.auth_users_file: AUTH is offered only after STARTTLS: set smtp.tls_cert_file "
        "and smtp.tls_key_file",
    ),
    "unreadable cert": (
        lambda f: {"tls_cert_file": "/nonexistent/cert.pem", "tls_key_file": f["pair"].key},
        1,
        "smtp.tls_cert_file: cannot read /nonexistent/cert.pem: No such file or directory",
    ),
    "not a certificate": (
        lambda f: {"tls_cert_file": f["junk"], "tls_key_file": f["pair"].key},
        1,
        "smtp.tls_cert_file: {junk} holds no PEM certificate",
    ),
    "not a key": (
        lambda f: {"tls_cert_file": f["pair"].cert, "tls_key_file": f["junk"]},
        1,
        "smtp.tls_key_file: {junk} holds no PEM private key",
    ),
    "key of another certificate": (
        lambda f: {"tls_cert_file": f["pair"].cert, "tls_key_file": f["other"].key},
        1,
        "smtp.tls_key_file: {other_key} is not the key of the certificate in {cert}",
    ),
    "unreadable users file": (
        lambda f: _tls(f) | {"auth_users_file": "/nonexistent/users"},
        1,
        "smtp.auth_users_file: cannot read /nonexistent/users: No such file or directory",
    ),
    "bad users line": (
        lambda f: _tls(f) | {"auth_users_file": f["bad_line"]},
        1,
        "smtp.auth_users_file: {bad_line} line 3: expected name:hash",
    ),
    "not an argon2id hash": (
        lambda f: _tls(f) | {"auth_users_file": f["not_argon2id"]},
        1,
        "smtp.auth_users_file: {not_argon2id} line 3: not an argon2id hash; make one with "
        "`pytrs smtp hash-password`",
    ),
}


def _tls(files: dict[str, Any]) -> dict[str, Any]:
    return {"tls_cert_file": files["pair"].cert, "tls_key_file": files["pair"].key}


@pytest.mark.parametrize("case", list(CASES))
def test_config_check_refuses_with_one_line_naming_the_key(
    case: str, tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    files = _files(tmp_path)
    smtp, code, line = CASES[case]
    config = write(tmp_path / "pytrs.toml", database_settings, **smtp(files))
    names = {k: v for k, v in files.items() if isinstance(v, Path)}
    names |= {"other_key": files["other"].key, "cert": files["pair"].cert}
    expected = line.format(**names)
    for command in (["config", "check"], ["run"]):
        result = pytrs(config, *command, timeout=60)
        err = result.stderr.decode()
        assert result.returncode == code, err
        assert err.splitlines() == [f"pytrs: config: {expected}"], err
        assert "$argon2" not in err and "Traceback" not in err


def test_config_check_accepts_tls_and_users(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    files = _files(tmp_path)
    config = write(
        tmp_path / "pytrs.toml", database_settings, **_tls(files), require_tls=True,
        auth_users_file=files["users"],
    )  # fmt: skip
    result = pytrs(config, "config", "check")
    assert result.returncode == 0, result.stderr.decode()


def test_hash_password_prints_a_line_the_users_file_takes(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    pair = make_pair(tmp_path, "one")
    config = write(tmp_path / "pytrs.toml", database_settings)
    made = pytrs(config, "smtp", "hash-password", "--user", "alice", stdin=b"a long password\n")
    assert made.returncode == 0, made.stderr.decode()
    line = made.stdout.decode().strip()
    assert line.startswith("alice:$argon2id$") and "a long password" not in line
    (tmp_path / "users").write_text(f"# made by pytrs smtp hash-password\n{line}\n")
    config = write(
        tmp_path / "pytrs.toml", database_settings, tls_cert_file=pair.cert,
        tls_key_file=pair.key, auth_users_file=tmp_path / "users",
    )  # fmt: skip
    assert pytrs(config, "config", "check").returncode == 0
    # The hash verifies the password it was made from, as the listener checks it.
    from pytrs.gateway.smtp_auth import read_users
    from pytrs.users.passwords import verify

    assert verify(read_users(str(tmp_path / "users"))["alice"], "a long password")
    short = pytrs(config, "smtp", "hash-password", stdin=b"short\n")
    assert short.returncode == 2
    assert short.stderr.decode().splitlines() == [
        "pytrs: smtp hash-password: the password is too short: at least 8 characters"
    ]
    bad_name = pytrs(config, "smtp", "hash-password", "--user", "a:b", stdin=b"a long password\n")
    assert bad_name.returncode == 2 and "--user" in bad_name.stderr.decode()
    bare = pytrs(config, "smtp", "hash-password", stdin=b"a long password\n")
    assert bare.stdout.decode().startswith("$argon2id$")
