"""STARTTLS, require_tls and AUTH on the real SMTP/LMTP listeners of a running daemon.

Clients are `smtplib` in a thread, against the daemon's listeners on free ports; certificates
are made for each test (`certs.py`). What is checked is what a client sees (the EHLO
keywords, the reply codes) and what reaches the database (inbox rows, their `trusted` flag and
peer, the queue a control header chose).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import ConfigError
from pytrs.schema.tables import inbox

from ..conftest import make_config, wait_until
from ..helpers import all_processed, make_mail, tickets
from .certs import Pair, make_pair, users_file

PASSWORD = "correct horse battery"


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return make_pair(tmp_path, "first")


def tls_config(settings: dict[str, Any], pair: Pair, **smtp: Any) -> Any:
    return make_config(
        settings,
        smtp={"tls_cert_file": str(pair.cert), "tls_key_file": str(pair.key), **smtp},
    )


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return asyncio.to_thread(fn, *args)


def _features(client: smtplib.SMTP, lmtp: bool) -> str:
    code, text = client.docmd("LHLO" if lmtp else "EHLO", "client.example")
    assert code == 250
    return text.decode()


def _starttls(client: smtplib.SMTP, pair: Pair) -> int:
    """STARTTLS checking the certificate; returns the serial number the server showed."""
    code, _ = client.docmd("STARTTLS")
    assert code == 220
    client.sock = pair.client_context().wrap_socket(client.sock, server_hostname="127.0.0.1")
    client.file = None
    peer = client.sock.getpeercert()
    assert peer is not None
    return int(peer["serialNumber"], 16)


def _send_over_tls(port: int, pair: Pair, lmtp: bool) -> tuple[str, str, int]:
    """EHLO (LHLO), STARTTLS, EHLO, one mail; returns the features before and after TLS and
    the last reply code."""
    cls = smtplib.LMTP if lmtp else smtplib.SMTP
    with cls("127.0.0.1", port, timeout=30) as client:
        before = _features(client, lmtp)
        _starttls(client, pair)
        after = _features(client, lmtp)
        assert client.docmd("MAIL", "FROM:<alice@customer.example>")[0] == 250
        assert client.docmd("RCPT", "TO:<support@example.com>")[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(make_mail(subject="over TLS") + b".\r\n")
        code, _ = client.getreply()
    return before, after, code


async def test_starttls_on_smtp_and_lmtp_stores_the_mail(
    database_settings: dict[str, Any], pair: Pair, start_daemon: Any, db: Any
) -> None:
    daemon = await start_daemon(tls_config(database_settings, pair))
    for kind in ("smtp", "lmtp"):
        before, after, code = await in_thread(
            _send_over_tls, daemon.port(kind), pair, kind == "lmtp"
        )
        assert "STARTTLS" in before and "STARTTLS" not in after
        # No users file: AUTH is offered neither before nor after TLS.
        assert "AUTH" not in before and "AUTH" not in after
        assert code == 250
    await wait_until(lambda: all_processed(db))
    assert [t["title"] for t in await tickets(db)] == ["over TLS", "over TLS"]


def _plain_mail_answer(port: int, lmtp: bool) -> tuple[int, str]:
    cls = smtplib.LMTP if lmtp else smtplib.SMTP
    with cls("127.0.0.1", port, timeout=30) as client:
        _features(client, lmtp)  # LHLO is not refused before STARTTLS
        code, text = client.docmd("MAIL", "FROM:<alice@customer.example>")
        return code, text.decode()


async def test_require_tls_refuses_mail_before_starttls(
    database_settings: dict[str, Any], pair: Pair, start_daemon: Any, db: Any
) -> None:
    daemon = await start_daemon(tls_config(database_settings, pair, require_tls=True))
    for kind in ("smtp", "lmtp"):
        code, text = await in_thread(_plain_mail_answer, daemon.port(kind), kind == "lmtp")
        assert (code, text) == (530, "5.7.0 Must issue a STARTTLS command first")
        _before, _after, code = await in_thread(
            _send_over_tls, daemon.port(kind), pair, kind == "lmtp"
        )
        assert code == 250
    await wait_until(lambda: all_processed(db))
    assert len(await tickets(db)) == 2


async def test_a_unix_socket_listener_offers_no_starttls_and_takes_plain_mail(
    database_settings: dict[str, Any], pair: Pair, start_daemon: Any, tmp_path: Path
) -> None:
    path = tmp_path / "lmtp.sock"
    config = tls_config(database_settings, pair, require_tls=True, lmtp_listen=[str(path)])
    await start_daemon(config)

    def talk() -> tuple[str, int]:
        with smtplib.LMTP(str(path), timeout=30) as client:
            features = _features(client, lmtp=True)
            return features, client.docmd("MAIL", "FROM:<alice@customer.example>")[0]

    features, code = await in_thread(talk)
    assert "STARTTLS" not in features and code == 250


def _auth(port: int, pair: Pair, mechanism: str, user: str, password: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        _starttls_and_hello(client, pair)
        return _auth_command(client, mechanism, user, password)


def _starttls_and_hello(client: smtplib.SMTP, pair: Pair) -> str:
    client.ehlo("client.example")
    _starttls(client, pair)
    return _features(client, lmtp=False)


def _auth_command(
    client: smtplib.SMTP, mechanism: str, user: str, password: str
) -> tuple[int, str]:
    if mechanism == "PLAIN":
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, text = client.docmd("AUTH", f"PLAIN {blob}")
    else:
        code, _ = client.docmd("AUTH", "LOGIN")
        assert code == 334
        code, _ = client.docmd(base64.b64encode(user.encode()).decode())
        assert code == 334
        code, text = client.docmd(base64.b64encode(password.encode()).decode())
    return code, text.decode()


async def test_auth_only_after_starttls_with_plain_and_login(
    database_settings: dict[str, Any],
    pair: Pair,
    start_daemon: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = users_file(tmp_path / "users", {"alice": PASSWORD, "bob": "another password"})
    daemon = await start_daemon(tls_config(database_settings, pair, auth_users_file=str(users)))
    port = daemon.port()

    def before_tls() -> tuple[str, int, str]:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            features = _features(client, lmtp=False)
            blob = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
            code, text = client.docmd("AUTH", f"PLAIN {blob}")
            return features, code, text.decode()

    features, code, text = await in_thread(before_tls)
    assert "AUTH" not in features  # not even advertised
    assert code == 538 and text.startswith("5.7.11")

    def after_tls() -> str:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            return _starttls_and_hello(client, pair)

    assert "AUTH LOGIN PLAIN" in await in_thread(after_tls)
    assert await in_thread(_auth, port, pair, "PLAIN", "alice", PASSWORD) == (
        235, "2.7.0 Authentication successful",
    )  # fmt: skip
    assert (await in_thread(_auth, port, pair, "LOGIN", "bob", "another password"))[0] == 235
    # aiosmtpd's own AUTH logs a deprecation warning on each success unless we keep it quiet.
    assert "deprecated" not in caplog.text
    for user, password in (("alice", "wrong password"), ("nobody", PASSWORD)):
        for mechanism in ("PLAIN", "LOGIN"):
            assert await in_thread(_auth, port, pair, mechanism, user, password) == (
                535, "5.7.8 Authentication credentials invalid",
            )  # fmt: skip


async def test_the_third_failed_auth_closes_the_session(
    database_settings: dict[str, Any], pair: Pair, start_daemon: Any, tmp_path: Path
) -> None:
    users = users_file(tmp_path / "users", {"alice": PASSWORD})
    daemon = await start_daemon(tls_config(database_settings, pair, auth_users_file=str(users)))

    def guess() -> list[int]:
        with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
            _starttls_and_hello(client, pair)
            codes = [_auth_command(client, "PLAIN", "alice", f"guess {i}")[0] for i in range(3)]
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.docmd("NOOP")
            return codes

    assert await in_thread(guess) == [535, 535, 421]


def _send_control_mail(port: int, pair: Pair, subject: str, user: str | None) -> int:
    raw = make_mail(subject=subject, extra={"X-PyTRS-Queue": "Sales"})
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        _starttls_and_hello(client, pair)
        if user is not None:
            assert _auth_command(client, "LOGIN", user, PASSWORD)[0] == 235
        client.sendmail("alice@customer.example", ["support@example.com"], raw)
    return 250


async def test_authenticated_mail_is_trusted_with_control_headers(
    database_settings: dict[str, Any], pair: Pair, start_daemon: Any, tmp_path: Path, db: Any
) -> None:
    users = users_file(tmp_path / "users", {"alice": PASSWORD})
    # The listener itself is not a trusted source: only the AUTH makes the difference.
    config = tls_config(database_settings, pair, auth_users_file=str(users))
    assert "smtp" not in config.postmaster.trusted_sources
    daemon = await start_daemon(config)
    await in_thread(_send_control_mail, daemon.port(), pair, "authenticated", "alice")
    await in_thread(_send_control_mail, daemon.port(), pair, "anonymous", None)
    await wait_until(lambda: all_processed(db))
    queues = {t["title"]: t["queue"] for t in await tickets(db)}
    assert queues == {"authenticated": "Sales", "anonymous": "Support"}
    async with db.connect() as conn:
        rows = await conn.execute(select(inbox.c.trusted, inbox.c.peer).order_by(inbox.c.id))
        (trusted, peer), (untrusted, anonymous_peer) = rows.all()
    assert trusted == 1 and peer.startswith("127.0.0.1:") and peer.endswith(" auth=alice")
    assert untrusted == 0 and "auth=" not in anonymous_peer


def _session_serial(port: int, pair: Pair) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        return _starttls(client, pair)


async def test_reload_gives_new_sessions_the_new_certificate_and_users(
    database_settings: dict[str, Any],
    pair: Pair,
    start_daemon: Any,
    tmp_path: Path,
    db: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = users_file(tmp_path / "users", {"alice": PASSWORD})
    config = tls_config(database_settings, pair, auth_users_file=str(users))
    daemon = await start_daemon(config)
    port = daemon.port()
    # A session that started TLS with the first certificate, left open across the reload.
    old = await in_thread(lambda: smtplib.SMTP("127.0.0.1", port, timeout=30))
    try:
        await in_thread(old.ehlo, "client.example")
        assert await in_thread(_starttls, old, pair) == pair.serial
        second = make_pair(tmp_path, "second")
        newer_users = users_file(tmp_path / "users2", {"bob": PASSWORD})
        new_config = tls_config(database_settings, second, auth_users_file=str(newer_users))
        # Through the daemon's reload, which SIGHUP runs (the file read by the loader).
        daemon.daemon.loader = lambda: new_config
        assert await daemon.daemon.reload()
        assert await in_thread(_session_serial, port, second) == second.serial
        assert (await in_thread(_auth, port, second, "PLAIN", "bob", PASSWORD))[0] == 235
        assert (await in_thread(_auth, port, second, "PLAIN", "alice", PASSWORD))[0] == 535
        # A reload that fails names the key and keeps what runs.
        broken = tls_config(
            database_settings, Pair(second.cert, pair.key, second.serial),
            auth_users_file=str(newer_users),
        )  # fmt: skip
        with pytest.raises(ConfigError) as failed:
            daemon.daemon.listener_tls.reload(broken)
        assert failed.value.errors[0].startswith("smtp.tls_key_file: ")
        daemon.daemon.loader = lambda: broken
        caplog.clear()
        assert not await daemon.daemon.reload()
        assert "reload refused: smtp.tls_key_file: " in caplog.text
        assert await in_thread(_session_serial, port, second) == second.serial
        # The session from before the reload goes on with its own TLS session.
        await in_thread(old.ehlo, "client.example")
        await in_thread(
            old.sendmail, "alice@customer.example", ["support@example.com"],
            make_mail(subject="across the reload"),
        )  # fmt: skip
        assert old.sock.getpeercert() is not None
        assert int(old.sock.getpeercert()["serialNumber"], 16) == pair.serial
    finally:
        await in_thread(old.close)
    await wait_until(lambda: all_processed(db))
    assert [t["title"] for t in await tickets(db)] == ["across the reload"]


async def test_a_failed_handshake_closes_that_session_alone(
    database_settings: dict[str, Any],
    pair: Pair,
    start_daemon: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pytrs.gateway.smtp")
    daemon = await start_daemon(tls_config(database_settings, pair))
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port())
    try:
        await reader.readline()  # the greeting
        writer.write(b"EHLO client.example\r\nSTARTTLS\r\n")
        while not (await reader.readline()).startswith(b"220 "):
            pass
        # Not a TLS ClientHello: the handshake fails and the server hangs up.
        writer.write(b"this is not TLS\r\n" * 100)
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
    # Logged as the client's failure, not as an error of ours with a traceback.
    assert "STARTTLS handshake failed" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    _before, _after, code = await in_thread(_send_over_tls, daemon.port(), pair, False)
    assert code == 250
