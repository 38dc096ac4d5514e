"""Diagnostic: who may read the database and the secrets the configuration names.

Place in the flow: one of the checks of `pytrs doctor` (files only, no network). The SQLite
database (with its -wal and -shm companions) and its directory hold every mail and ticket: no
one but the service's user should read them, nor replace them. Secrets (relay and mailbox
passwords, loop and reply-token keys, DKIM and TLS private keys, OAuth2 client secrets, the
SMTP AUTH users) must be readable by the service and by no one else. A database owned by
another user than the one running doctor usually means the service runs as that user, and a
command run as root could leave files it cannot write.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pytrs.config import Config
from pytrs.diagnostics.findings import Finding, describe, fail, ok, warn
from pytrs.schema.database import database_file

CHECK = "permissions"


def check_permissions(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    database = database_file(config.database.url)
    if database is not None:
        findings += _database_files(database, config.source)
    secrets = list(_secrets(config))
    for key, path in secrets:
        findings += _secret(key, path)
    if not findings:
        findings.append(ok(CHECK, _all_fine(database, len(secrets))))
    return findings


def _all_fine(database: Path | None, secrets: int) -> str:
    checked = []
    if database is not None and database.exists():
        checked.append(f"database {database} and its directory")
    if secrets:
        checked.append(f"{secrets} secret file{'s' if secrets > 1 else ''}")
    if not checked:
        return "no database file and no secret file to check"
    return f"{' and '.join(checked)}: for the owner only"


def _database_files(database: Path, source: str) -> list[Finding]:
    if not database.exists():
        return []  # the database check reports it, with what to do
    findings: list[Finding] = []
    directory = database.parent
    for path in (database, *(Path(f"{database}{end}") for end in ("-wal", "-shm"))):
        if path.exists():
            findings += _data_file(path)
    findings += _owner(database, source)
    findings += _directory(directory)
    return findings


def _data_file(path: Path) -> list[Finding]:
    mode = path.stat().st_mode
    fix = f"run: chmod 600 {path}"
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return [fail(CHECK, f"{path} can be read by anyone ({_mode(mode)})", fix)]
    if mode & stat.S_IWGRP:
        return [fail(CHECK, f"{path} can be written by its group ({_mode(mode)})", fix)]
    if mode & stat.S_IRGRP:
        return [warn(CHECK, f"{path} can be read by its group ({_mode(mode)})", fix)]
    return []


def _directory(directory: Path) -> list[Finding]:
    mode = directory.stat().st_mode
    fix = f"run: chmod 700 {directory} (systemd: StateDirectoryMode=0700)"
    if mode & (stat.S_IWOTH | stat.S_IWGRP) and not mode & stat.S_ISVTX:
        # Whoever may write the directory may replace the database with a file of their own.
        return [
            fail(
                CHECK,
                f"{directory}, the database's directory, can be written by others ({_mode(mode)})",
                fix,
            )
        ]
    if mode & (stat.S_IROTH | stat.S_IRGRP):
        return [
            warn(
                CHECK,
                f"{directory}, the database's directory, can be listed by others ({_mode(mode)})",
                fix,
            )
        ]
    return []


def _owner(path: Path, source: str) -> list[Finding]:
    owner, me = path.stat().st_uid, os.geteuid()
    if owner == me:
        return []
    name = _user(owner)
    return [
        warn(
            CHECK,
            f"{path} belongs to {name}, and doctor runs as {_user(me)}: the service runs as "
            f"{name}?",
            f"run doctor and every other pytrs command as that user (sudo -u {name} pytrs "
            f"doctor{f' --config {source}' if source else ''}): a command run as another user "
            "may leave files the service cannot write",
        )
    ]


def _secret(key: str, path: str) -> list[Finding]:
    try:
        with open(path, "rb"):
            pass
        mode = os.stat(path).st_mode
    except OSError as exc:
        return [
            fail(
                CHECK,
                f"{key}: cannot read {path}: {describe(exc)}",
                "make it readable by the service's user (and by no one else)",
            )
        ]
    fix = f"run: chmod 600 {path} (or 640 with a group of the service's user only)"
    if mode & stat.S_IROTH:
        return [fail(CHECK, f"{key}: {path} can be read by anyone ({_mode(mode)})", fix)]
    if mode & (stat.S_IWOTH | stat.S_IWGRP):
        return [fail(CHECK, f"{key}: {path} can be changed by others ({_mode(mode)})", fix)]
    if mode & stat.S_IRGRP:
        group = _group(os.stat(path).st_gid)
        return [warn(CHECK, f"{key}: {path} can be read by group {group} ({_mode(mode)})", fix)]
    return []


def _secrets(config: Config) -> Iterator[tuple[str, str]]:
    """(key, path) of every secret file the configuration names."""
    out, auth, smtp = config.outbound, config.authentication, config.smtp
    named = [
        ("outbound.password_file", out.password_file),
        ("outbound.loop_secret_file", out.loop_secret_file),
        ("authentication.reply_token_secret_file", auth.reply_token_secret_file),
        ("smtp.tls_key_file", smtp.tls_key_file),
        ("smtp.auth_users_file", smtp.auth_users_file),
    ]
    for index, key in enumerate(config.dkim_keys):
        named.append((f"dkim_keys[{index}].private_key_file", key.private_key_file))
    for index, account in enumerate(config.mail_accounts):
        named.append((f"mail_accounts[{index}].password_file", account.password_file))
        named.append(
            (f"mail_accounts[{index}].oauth2_client_secret_file", account.oauth2_client_secret_file)
        )
        # It seeds the database once and may be removed afterwards: checked while it is there.
        token = account.oauth2_refresh_token_file
        if token and os.path.exists(token):
            named.append((f"mail_accounts[{index}].oauth2_refresh_token_file", token))
    if config.source and _inline_secrets(config):
        named.append(("the configuration file (it holds a password)", config.source))
    return ((key, path) for key, path in named if path)


def _inline_secrets(config: Config) -> bool:
    """Whether the file itself (not the environment) holds a password or the loop secret."""
    try:
        with open(config.source, "rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return False  # it loaded a moment ago; whatever changed, the other checks will tell
    outbound = raw.get("outbound", {})
    accounts = raw.get("mail_accounts", [])
    return bool(
        isinstance(outbound, dict) and (outbound.get("password") or outbound.get("loop_secret"))
    ) or any(isinstance(a, dict) and a.get("password") for a in accounts)


def _mode(mode: int) -> str:
    return f"mode {stat.S_IMODE(mode):04o}"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"
