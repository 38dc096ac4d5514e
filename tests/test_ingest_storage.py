"""What the inbox stores of hostile envelopes, and what the listeners answer (real sockets).

A value the database refuses must fail only its own message, never the others sharing its
group commit; values that can be made storable are stored; recipients that can never be stored
are refused at RCPT; every "250" names the inbox rows it committed.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from pytrs.gateway import smtp
from pytrs.schema.tables import article_data_mime_plain, inbox

from .conftest import engine_name, make_config, wait_until
from .helpers import all_processed, make_mail, unique_id
from .test_cli import pytrs, write_config

LONG_RCPT = "support+" + "x" * 300 + "@example.com"
POISON = "poison@attacker.example"


def _conversation(
    port: int, sender: bytes, rcpts: list[str], raw: bytes, lmtp: bool = False
) -> dict[str, Any]:
    """One SMTP or LMTP transaction over a bare socket (smtplib cannot send a NUL or 8-bit
    bytes in MAIL FROM or RCPT TO); returns the RCPT codes and the DATA replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def reply() -> tuple[int, bytes]:
            lines = []
            while True:
                line = reader.readline()
                lines.append(line[4:].rstrip())
                if line[3:4] != b"-":
                    return int(line[:3]), b"\n".join(lines)

        assert reply()[0] == 220
        sock.sendall(b"LHLO test.example\r\n" if lmtp else b"EHLO test.example\r\n")
        assert reply()[0] == 250
        sock.sendall(b"MAIL FROM:<" + sender + b">\r\n")
        mail = reply()
        rcpt_codes = []
        for rcpt in rcpts:
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode("utf-8", "surrogateescape"))
            rcpt_codes.append(reply()[0])
        data: list[tuple[int, bytes]] = [(0, b"")]
        if 250 in rcpt_codes:
            sock.sendall(b"DATA\r\n")
            assert reply()[0] == 354
            sock.sendall(raw + (b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n"))
            # LMTP answers once per accepted recipient (RFC 2033).
            data = [reply() for _ in range(rcpt_codes.count(250) if lmtp else 1)]
        sock.sendall(b"QUIT\r\n")
        return {"mail": mail[0], "rcpt": rcpt_codes, "data": data[0], "lmtp": data}


async def _converse(
    port: int, sender: bytes, raw: bytes, rcpts: list[str] | None = None, lmtp: bool = False
) -> Any:
    rcpts = rcpts or ["support@example.com"]
    return await asyncio.to_thread(_conversation, port, sender, rcpts, raw, lmtp)


def _hostile_mail() -> bytes:
    # A NUL and a byte that is not UTF-8 in the Message-ID, as an attacker can send them.
    return make_mail(subject="hostile").replace(b"Message-ID: <", b"Message-ID: <\x00evil\xff", 1)


async def _rows(db: Any) -> dict[int, Any]:
    async with db.connect() as conn:
        found = await conn.execute(select(inbox).order_by(inbox.c.id))
        return {r.id: r for r in found}


async def test_hostile_message_id_and_sender_are_stored_with_the_others(
    start_daemon: Any, database_settings: dict[str, Any], db: Any
) -> None:
    # A long commit delay puts the concurrent sessions into one group commit.
    config = make_config(database_settings, smtp={"commit_delay_ms": 300})
    daemon = await start_daemon(config)
    port = daemon.port()
    hostile = _hostile_mail()
    results = await asyncio.gather(
        _converse(port, b"evil\x00\xff" + b"x" * 300 + b"@attacker.example", hostile),
        *(_converse(port, b"alice@customer.example", make_mail()) for _ in range(4)),
    )
    for result in results:
        assert result["data"][0] == 250, result
    rows = await _rows(db)
    assert len(rows) == 5
    ids = sorted(int(r["data"][1].rsplit(b" ", 1)[1]) for r in results)
    assert ids == sorted(rows)
    await wait_until(lambda: all_processed(db))
    bad = (await _rows(db))[int(results[0]["data"][1].rsplit(b" ", 1)[1])]
    assert bad.state == "done", bad.last_error  # it became an article
    async with db.connect() as conn:
        stored = await conn.scalar(
            select(article_data_mime_plain.c.body).where(
                article_data_mime_plain.c.article_id == bad.article_id
            )
        )
    assert stored == hostile  # the bytes as received
    assert "\x00" not in bad.envelope_from and len(bad.envelope_from) == 250
    assert bad.envelope_from.startswith("evil\ufffd")
    assert bad.message_id.startswith("<evil\ufffd")


async def _poison_inbox(db: Any) -> None:
    """A row the database itself refuses, whatever pytrs cleans: the sender POISON."""
    async with db.transaction() as conn:
        if engine_name() in ("postgresql", "mysql"):  # MariaDB enforces CHECK since 10.2
            await conn.execute(
                text(f"ALTER TABLE inbox_message ADD CONSTRAINT no_poison "
                     f"CHECK (envelope_from <> '{POISON}')")
            )  # fmt: skip
        else:
            await conn.execute(
                text(f"CREATE TRIGGER no_poison BEFORE INSERT ON inbox_message "
                     f"WHEN NEW.envelope_from = '{POISON}' "
                     "BEGIN SELECT RAISE(ABORT, 'poison'); END")
            )  # fmt: skip


async def test_a_row_the_database_refuses_fails_only_its_own_message(
    start_daemon: Any, database_settings: dict[str, Any], db: Any
) -> None:
    await _poison_inbox(db)
    config = make_config(database_settings, smtp={"commit_delay_ms": 300})
    daemon = await start_daemon(config)
    port = daemon.port()
    results = await asyncio.gather(
        _converse(port, POISON.encode(), make_mail(subject="poison")),
        *(_converse(port, b"alice@customer.example", make_mail()) for _ in range(4)),
    )
    assert results[0]["data"][0] == 451
    assert [r["data"][0] for r in results[1:]] == [250] * 4
    rows = await _rows(db)
    assert len(rows) == 4
    assert {int(r["data"][1].rsplit(b" ", 1)[1]) for r in results[1:]} == set(rows)


async def test_recipient_that_cannot_be_stored_is_refused_at_rcpt(
    daemon: Any, db: Any, tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    sender = b"alice@customer.example"
    for rcpt in (LONG_RCPT, "support+\udcff@example.com", "support+\x00@example.com"):
        for kind in ("smtp", "lmtp"):
            result = await _converse(
                daemon.port(kind), sender, make_mail(), [rcpt, "support@example.com"],
                lmtp=kind == "lmtp",
            )  # fmt: skip
            assert result["rcpt"] == [553, 250], (kind, rcpt)
            assert result["data"][0] == 250  # the other recipient is stored
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    refused = pytrs(config, "deliver", "--recipient", LONG_RCPT, stdin=make_mail())
    assert refused.returncode == 67, refused.stderr
    assert b"longer than 250 characters" in refused.stderr
    assert {r.recipient for r in (await _rows(db)).values()} == {"support@example.com"}


async def test_250_names_the_inbox_rows(daemon: Any, db: Any) -> None:
    port = daemon.port()
    raw = make_mail(message_id=unique_id())
    one = await _converse(port, b"alice@customer.example", raw)
    again = await _converse(port, b"alice@customer.example", raw)  # a re-delivery
    [row] = (await _rows(db)).values()
    assert one["data"] == (250, f"2.0.0 Ok: queued as {row.id}".encode())
    assert again["data"] == one["data"]  # the row that holds the mail
    rcpts = [f"support+{n}@example.com" for n in range(12)]
    two = await _converse(port, b"alice@customer.example", make_mail(), rcpts[:2])
    many = await _converse(port, b"alice@customer.example", make_mail(), rcpts)
    ids = sorted(await _rows(db))
    assert two["data"][1] == f"2.0.0 Ok: queued as {ids[1]},{ids[2]}".encode()
    assert many["data"][1] == f"2.0.0 Ok: queued as {ids[3]} and 11 more".encode()
    lmtp = await _converse(daemon.port("lmtp"), b"a@customer.example", make_mail(), rcpts[:2], True)
    ids = sorted(await _rows(db))
    assert lmtp["lmtp"] == [(250, f"2.0.0 Ok: queued as {i}".encode()) for i in ids[-2:]]


def test_queued_as_stays_within_an_smtp_reply_line() -> None:
    assert smtp.queued_as([7]) == "7"
    assert smtp.queued_as(list(range(1, 11))) == "1,2,3,4,5,6,7,8,9,10"
    assert smtp.queued_as(list(range(1_000_000, 1_000_100))) == "1000000 and 99 more"


async def test_deliver_logs_the_inbox_id_and_prints_nothing(
    tmp_path: Path, database_settings: dict[str, Any], db: Any
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    raw = make_mail()
    result = pytrs(config, "deliver", "--recipient", "support@example.com", stdin=raw)
    assert result.returncode == 0, result.stderr
    [inbox_id] = await _rows(db)
    assert result.stdout == b""
    assert f"queued as {inbox_id} ".encode() in result.stderr
