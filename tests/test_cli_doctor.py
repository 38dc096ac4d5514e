"""`pytrs doctor`, run as the admin runs it (a subprocess), against real servers.

The recording relay with STARTTLS and AUTH, a DNS zone serving the DKIM records, the session's
Dovecot (IMAP with STARTTLS, POP3 over TLS), the test database on either engine, and a daemon
of this very process holding some of the listening addresses. The subprocess is awaited, never
waited for, so that those servers keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import pwd
import secrets
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pytrs.config import DkimKeyConfig
from pytrs.diagnostics import runner
from pytrs.diagnostics.dkim_dns import _mismatch
from pytrs.diagnostics.findings import FAIL, Finding
from pytrs.outbound.dkim import load_key
from pytrs.schema import migrate
from pytrs.schema.database import create_database

from .conftest import engine_name, make_config
from .dovecot import DovecotServer
from .servers.dns_zone import DnsZone
from .servers.relay import RecordingRelay, self_signed, write_ed25519_key, write_rsa_key
from .test_oauth2 import Provider, oauth_dovecot, provider, xoauth2_account  # noqa: F401

RELAY_LOGIN = ("pytrs", "relay-secret-1")


@dataclass
class Doctor:
    returncode: int
    lines: list[str]
    stderr: str
    times: list[float]  # when each line arrived (event loop time)

    def line(self, status: str, *words: str) -> str:
        """The one line with `status` holding every word of `words`."""
        found = [
            line
            for line in self.lines
            if line.startswith(f"{status} ") and all(w in line for w in words)
        ]
        assert len(found) == 1, f"no single {status} line with {words}:\n" + "\n".join(self.lines)
        return found[0]


async def doctor(config: Path, *args: str, prefix: tuple[str, ...] = ()) -> Doctor:
    """`pytrs doctor --config CONFIG ARGS` (after `prefix`), its lines read as they come."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "pytrs",
        "doctor",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    loop = asyncio.get_running_loop()
    lines, times = [], []
    async with asyncio.timeout(90):
        errors = asyncio.create_task(process.stderr.read())
        while line := await process.stdout.readline():
            lines.append(line.decode().rstrip("\n"))
            times.append(loop.time())
        returncode = await process.wait()
        stderr = (await errors).decode()
    assert "Traceback" not in stderr, stderr
    return Doctor(returncode, lines, stderr, times)


def secret(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text + "\n")
    path.chmod(mode)
    return str(path)


def owner_only(path: Path) -> str:
    path.chmod(0o600)
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml(value: Any) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists are alike in both


def write_config(path: Path, tables: dict[str, Any]) -> Path:
    """A TOML file of `{"section": {...}}` tables and `{"array": [{...}, …]}` entries."""
    lines = []
    for name, value in tables.items():
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            lines.append(f"[[{name}]]" if isinstance(value, list) else f"[{name}]")
            lines += [f"{key} = {toml(item)}" for key, item in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Setup:
    """What a healthy installation has, on this test's servers; a test breaks parts of it."""

    tmp: Path
    database: dict[str, Any]
    relay: RecordingRelay
    relay_ca: Path
    zone: DnsZone
    dovecot: DovecotServer
    user: str
    password: str
    keys: list[DkimKeyConfig]

    def tables(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "smtp": {
                "listen": [f"127.0.0.1:{free_port()}"],
                "lmtp_listen": [f"127.0.0.1:{free_port()}"],
            },
            "web": {"listen": f"127.0.0.1:{free_port()}"},
            "outbound": {
                "relay": self.relay.address,
                "tls": "starttls",
                "ca_file": str(self.relay_ca),
                "username": RELAY_LOGIN[0],
                "password_file": secret(self.tmp / "relay.pass", RELAY_LOGIN[1]),
                "loop_secret_file": secret(
                    self.tmp / "loop.key", "a-loop-secret-of-32-bytes-length"
                ),
            },
            "authentication": {"dns_resolver": self.zone.address},
            "queues": [{"name": "Support"}],
            "system_addresses": [{"address": "support@example.com", "queue": "Support"}],
            "dkim_keys": [
                {"domain": k.domain, "selector": k.selector, "private_key_file": k.private_key_file}
                for k in self.keys
            ],
            "mail_accounts": [
                self.account("imap+starttls", self.dovecot.imap_port, mode="move"),
                self.account("pop3s", self.dovecot.pop3s_port, mode="delete"),
            ],
        }

    def account(self, kind: str, port: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "host": self.dovecot.host,
            "port": port,
            "user": self.user,
            "password_file": secret(self.tmp / f"{kind}.pass", self.password),
            "ca_file": str(self.dovecot.ca_file),
            "name": kind,
            **extra,
        }

    async def migrate_to(self, revision: str = "head") -> None:
        db = create_database(make_config(self.database).database)
        try:
            await migrate.upgrade(db, revision)
        finally:
            await db.close()
        if engine_name() == "sqlite":  # as the install makes it: for the service's user only
            for path in self.database_file().parent.glob("pytrs.db*"):
                path.chmod(0o600)

    def database_file(self) -> Path:
        return Path(self.database["url"].split("///", 1)[1])

    def publish(self, key: DkimKeyConfig, record: str | None) -> None:
        name = f"{key.selector}._domainkey.{key.domain}"
        if record is None:
            self.zone.records.pop(name, None)
        else:
            self.zone.records[name] = [record]


@pytest.fixture
async def setup(
    tmp_path: Path,
    database_settings: dict[str, Any],
    dovecot: DovecotServer,
    mailbox: tuple[str, str],
) -> AsyncIterator[Setup]:
    """The relay, the DNS zone with both keys' records, a mailbox with two messages; the
    test migrates the database as far as it needs."""
    relay_tls, relay_ca = self_signed(tmp_path)
    relay = await RecordingRelay().start(starttls=relay_tls, auth=RELAY_LOGIN)
    zone = await DnsZone().start()
    keys = [
        DkimKeyConfig("example.com", "rsa1", owner_only(write_rsa_key(tmp_path / "rsa1.pem"))),
        DkimKeyConfig("example.com", "ed1", owner_only(write_ed25519_key(tmp_path / "ed1.pem"))),
    ]
    found = Setup(tmp_path, database_settings, relay, relay_ca, zone, dovecot, *mailbox, keys)
    for key in keys:
        found.publish(key, load_key(key).dns_record())
    for number in range(2):
        raw = f"From: a@customer.example\r\nSubject: {number}\r\n\r\nhello\r\n".encode()
        dovecot.append(*mailbox, raw)
    try:
        yield found
    finally:
        await relay.stop()
        await zone.stop()


async def test_a_healthy_installation_is_all_ok(
    setup: Setup, start_daemon: Callable[..., Any]
) -> None:
    await setup.migrate_to()
    # A pytrs already running on three of the addresses: its banners and /healthz say so.
    running = await start_daemon(
        make_config(setup.database, web={"listen": "127.0.0.1:0"}, mail_accounts=[])
    )
    tables = setup.tables()
    tables["smtp"]["listen"].append(f"127.0.0.1:{running.port('smtp')}")
    tables["smtp"]["lmtp_listen"].append(f"127.0.0.1:{running.port('lmtp')}")
    tables["web"]["listen"] = f"127.0.0.1:{running.port('web')}"
    result = await doctor(write_config(setup.tmp / "pytrs.toml", tables))

    assert result.returncode == 0, "\n".join(result.lines)
    assert all(line.startswith("OK ") for line in result.lines), "\n".join(result.lines)
    result.line("OK", "configuration", "loads and passes the start-up checks")
    result.line("OK", "database", f"schema at head ({migrate.head_revision()})")
    result.line("OK", "permissions", "6 secret files: for the owner only")
    result.line("OK", "dkim", "rsa1._domainkey.example.com publishes the key", "rsa 2048 bits")
    result.line("OK", "dkim", "ed1._domainkey.example.com publishes the key", "ed25519")
    result.line("OK", "relay", "STARTTLS (certificate verified), AUTH as pytrs; nothing sent")
    result.line("OK", "mailbox", "imap+starttls", "logged in, 2 messages waiting")
    result.line("OK", "mailbox", "pop3s", "logged in, 2 messages waiting")
    result.line("OK", "listener", "smtp.listen[0]", "bindable")
    result.line("OK", "listener", "smtp.listen[1]", "pytrs is running there")
    result.line("OK", "listener", "smtp.lmtp_listen[0]", "bindable")
    result.line("OK", "listener", "smtp.lmtp_listen[1]", "pytrs is running there")
    result.line("OK", "listener", "web.listen", "pytrs is running there")
    # Nothing was sent, fetched or moved.
    assert setup.relay.received == [] and setup.relay.connections == 1
    assert setup.dovecot.count(setup.user, setup.password) == 2


async def test_each_problem_is_a_line_saying_what_to_do(setup: Setup) -> None:
    # A database two migrations behind (on SQLite also a file anyone may read, of another
    # user), a secret anyone may read and a key its group may, one DKIM record of another key
    # and one not published, a relay password it refuses, a mailbox password Dovecot refuses,
    # a port another SMTP server holds, and one address given to two listeners.
    await setup.migrate_to("0013")
    if engine_name() == "sqlite":  # readable by anyone, and another user's
        setup.database_file().chmod(0o644)
        os.chown(setup.database_file(), pwd.getpwnam("nobody").pw_uid, -1)
    os.chmod(setup.keys[1].private_key_file, 0o640)
    tables = setup.tables()
    tables["outbound"]["loop_secret_file"] = secret(
        setup.tmp / "loop-open.key", "a-loop-secret-of-32-bytes-length", 0o644
    )
    tables["outbound"]["password_file"] = secret(setup.tmp / "wrong.pass", "not-the-password")
    other = load_key(DkimKeyConfig("example.com", "x", str(write_rsa_key(setup.tmp / "other.pem"))))
    setup.publish(setup.keys[0], other.dns_record())
    setup.publish(setup.keys[1], None)
    tables["mail_accounts"][0]["password_file"] = secret(setup.tmp / "bad.pass", "wrong")
    del tables["mail_accounts"][1]
    postfix = await asyncio.start_server(_other_smtp_server, "127.0.0.1", 0)
    port = postfix.sockets[0].getsockname()[1]
    tables["smtp"]["listen"] = [f"127.0.0.1:{port}"]
    tables["web"]["listen"] = tables["smtp"]["lmtp_listen"][0]
    try:
        result = await doctor(write_config(setup.tmp / "pytrs.toml", tables))
    finally:
        postfix.close()

    assert result.returncode == 1, "\n".join(result.lines)
    result.line("FAIL", "database", "is at 0013, head is", "— run: pytrs db upgrade")
    result.line(
        "FAIL",
        "permissions",
        "outbound.loop_secret_file",
        "can be read by anyone (mode 0644)",
        "— run: chmod 600",
    )
    mismatch = result.line("FAIL", "dkim", "rsa1._domainkey", "publishes another key")
    assert (
        f'publish: rsa1._domainkey.example.com. TXT "{load_key(setup.keys[0]).dns_record()}"'
        in mismatch
    )
    missing = result.line("FAIL", "dkim", "ed1._domainkey.example.com: no key record", "NXDOMAIN")
    assert 'TXT "v=DKIM1; k=ed25519; p=' in missing
    result.line("FAIL", "relay", "AUTH refused: 535", "check [outbound] username and password_file")
    result.line("FAIL", "mailbox", "imap+starttls", "LOGIN failed", "check mail_accounts[0].user")
    result.line(
        "FAIL",
        "listener",
        f"smtp.listen[0] 127.0.0.1:{port}",
        "in use by another program",
        "220 mx.example.com ESMTP Postfix",
        "give smtp.listen[0] another address",
    )
    result.line(
        "WARN",
        "permissions",
        "dkim_keys[1].private_key_file",
        "can be read by group",
        "(mode 0640)",
    )
    result.line("FAIL", "listener: web.listen", "also given as smtp.lmtp_listen[0]")
    if engine_name() == "sqlite":
        result.line(
            "WARN",
            f"{setup.database_file()} belongs to nobody, and doctor runs as root: the service "
            "runs as nobody?",
            "sudo -u nobody pytrs doctor",
        )
        result.line(
            "FAIL",
            "permissions",
            str(setup.database_file()),
            "can be read by anyone",
            f"run: chmod 600 {setup.database_file()}",
        )


async def test_dead_hosts_cost_one_timeout_not_one_each(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    """A DNS server and an IMAP server that never answer, a relay that is down: each its FAIL
    line, all within about one --timeout, since the checks run side by side."""
    zone = await DnsZone(silent=True).start()
    silent = await asyncio.start_server(_silent_server, "127.0.0.1", 0)
    imap_port = silent.sockets[0].getsockname()[1]
    dkim_key = str(write_rsa_key(tmp_path / "rsa1.pem"))
    tables: dict[str, Any] = {
        "database": database_settings,
        "smtp": {"listen": ["127.0.0.1:0"]},
        "web": {"listen": ""},
        "outbound": {"relay": f"127.0.0.1:{free_port()}"},
        "authentication": {"dns_resolver": zone.address},
        "dkim_keys": [{"domain": "example.com", "selector": "rsa1", "private_key_file": dkim_key}],
        "mail_accounts": [
            {"type": "imap", "host": "127.0.0.1", "port": imap_port, "user": "u", "password": "p"}
        ],
    }
    try:
        result = await doctor(write_config(tmp_path / "pytrs.toml", tables), "--timeout", "3")
    finally:
        silent.close()
        await zone.stop()

    assert result.returncode == 1
    result.line("FAIL", "relay", "cannot connect: Connection refused", "check [outbound] relay")
    result.line(
        "FAIL",
        "dkim",
        "rsa1._domainkey.example.com: key lookup",
        "timed out",
        f"check that the DNS server ({zone.address}) answers",
    )
    result.line("FAIL", "mailbox", f"127.0.0.1:{imap_port}", "no answer within 3 s")
    result.line("OK", "listener", "port 0")
    # The configuration's line comes at once; the others once the slowest check gave up.
    waited = result.times[-1] - result.times[0]
    # One after the other they would take 6 s or more.
    assert 2.5 < waited < 5.5, f"{waited:.1f} s for two silent servers and --timeout 3"


async def test_a_configuration_that_does_not_load_skips_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "pytrs.toml"
    config.write_text('[smtp2]\nlisten = []\n[outbound]\nrelay = "nowhere"\n')
    result = await doctor(config, "--json")

    assert result.returncode == 1
    findings = json.loads("\n".join(result.lines))
    assert {f["status"] for f in findings} == {"FAIL", "SKIP"}
    failed = [f for f in findings if f["status"] == "FAIL"]
    assert all(f["check"] == "configuration" for f in failed)
    assert any("smtp2" in f["found"] for f in failed)
    assert any("outbound.relay" in f["found"] for f in failed)
    assert all(f"fix {config}" in f["advice"] for f in failed)
    skipped = [f["check"] for f in findings if f["status"] == "SKIP"]
    assert skipped == [name for name, _check in runner.CHECKS]


async def test_a_check_that_breaks_is_its_own_fail_line() -> None:
    """An error a check did not foresee ends that check, not the command: one FAIL line."""

    async def broken(_config: Any, _seconds: float) -> list[Finding]:
        raise KeyError("surprise")

    async def slow(_config: Any, _seconds: float) -> list[Finding]:
        await asyncio.sleep(3600)
        return []

    [crash] = await runner._guarded("relay", broken, make_config({}), 1.0, False)
    assert (crash.status, crash.check) == (FAIL, "relay")
    assert "unexpected error: KeyError: 'surprise'" in crash.found and "--debug" in crash.advice
    started = time.monotonic()
    [late] = await runner._guarded("dkim", slow, make_config({}), 0.1, False, grace=0.1)
    assert late.status == FAIL and "no answer within 0.2 s" in late.found
    assert time.monotonic() - started < 1


@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping a capability needs root")
async def test_a_port_below_1024_without_the_capability(tmp_path: Path) -> None:
    """As the service's user would run it: without CAP_NET_BIND_SERVICE (root here, with the
    capability dropped from its bounding set)."""
    tables = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'pytrs.db'}"},
        "smtp": {"listen": ["127.0.0.1:1"]},
        "outbound": {"relay": f"127.0.0.1:{free_port()}"},
    }
    drop = ("setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service")
    result = await doctor(write_config(tmp_path / "pytrs.toml", tables), prefix=drop)

    assert result.returncode == 1
    result.line(
        "FAIL",
        "listener: smtp.listen[0] 127.0.0.1:1: permission denied",
        "need CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    )


async def test_xoauth2_mailboxes(
    oauth_dovecot: DovecotServer,  # noqa: F811
    provider: str,  # noqa: F811
    database_settings: dict[str, Any],
    db: Any,
    tmp_path: Path,
) -> None:
    """As the fetcher logs in: the refresh token exchanged at the provider (and the rotated
    one saved in the database), then AUTHENTICATE XOAUTH2 (IMAP) or AUTH XOAUTH2 (POP3); a
    revoked token is a FAIL."""
    user = f"o{secrets.token_hex(4)}"
    oauth_dovecot.add_user(user, "unused-password")
    names = ("good", "revoked", "pop")
    accounts = [_xoauth2(oauth_dovecot, provider, user, tmp_path / n) for n in names]
    _revoke(accounts[1])
    accounts[2].update(type="pop3", port=oauth_dovecot.pop3_port)
    tables = {
        "database": database_settings,
        "outbound": {"relay": f"127.0.0.1:{free_port()}"},
        "mail_accounts": accounts,
    }
    result = await doctor(write_config(tmp_path / "pytrs.toml", tables))

    result.line("OK", "mailbox: good (imap", "logged in, 0 messages in INBOX")
    result.line(
        "FAIL",
        "mailbox: revoked (imap",
        "token endpoint refused the refresh token (400)",
        "invalid_grant",
        "check mail_accounts[1].oauth2_token_url",
    )
    result.line("OK", "mailbox: pop (pop3", "logged in, 0 messages on the server")


def _xoauth2(server: DovecotServer, token_url: str, user: str, directory: Path) -> dict[str, Any]:
    """A `[[mail_accounts]]` entry logging in with XOAUTH2, named after `directory`."""
    directory.mkdir()
    account = xoauth2_account(server, token_url, user, directory)
    fields = dataclasses.asdict(account)
    entry = {k: v for k, v in fields.items() if k in _ACCOUNT_KEYS}
    return {**entry, "name": directory.name}


def _revoke(entry: dict[str, Any]) -> None:
    """The provider forgets the entry's refresh token (as when an admin revokes it)."""
    Provider.refresh_tokens.pop(Path(entry["oauth2_refresh_token_file"]).read_text().strip())


_ACCOUNT_KEYS = {
    "type",
    "host",
    "port",
    "user",
    "mode",
    "auth",
    "oauth2_token_url",
    "oauth2_client_id",
    "oauth2_refresh_token_file",
}


def test_what_counts_as_publishing_the_key(tmp_path: Path) -> None:
    """The record's p= may be the SubjectPublicKeyInfo (RFC 6376) or a bare PKCS#1 key, split
    by spaces; an empty p= revokes the key, and k= must name the key's algorithm."""
    key = load_key(DkimKeyConfig("example.com", "s", str(write_rsa_key(tmp_path / "k.pem"))))
    public = key.private_key.public_key()
    pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    spki = key.dns_record().partition("p=")[2]
    assert _mismatch(f"v=DKIM1; k=rsa; p={spki[:40]} {spki[40:]}".encode(), key) == ""
    assert _mismatch(f"v=DKIM1; p={base64.b64encode(pkcs1).decode()}".encode(), key) == ""
    assert _mismatch(b"v=DKIM1; k=rsa; p=", key) == "the record revokes the key (empty p=)"
    assert "ed25519 key" in _mismatch(f"v=DKIM1; k=ed25519; p={spki}".encode(), key)
    assert "not base64" in _mismatch(b"v=DKIM1; p=%%%", key)


async def _silent_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # never greets; the client gives up
    writer.close()


async def _other_smtp_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx.example.com ESMTP Postfix\r\n")
    await writer.drain()
    writer.close()
