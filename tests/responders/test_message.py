"""Composing outbound mail: Message-ID, threading, ticket subject, RFC 3834, loop marker."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest

from pytrs.config import ConfigError, parse_config
from pytrs.responders.marker import (
    loop_secret_from_config,
    make_loop_marker,
    read_loop_marker,
)
from pytrs.responders.message import (
    AUTO_GENERATED,
    MAX_REFERENCES,
    Attachment,
    ComposeError,
    Composer,
    Parent,
    thread_headers,
)

from ..outbound.conftest import LOOP_SECRET, draft

SECRET = LOOP_SECRET.encode()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def composer(**ticket: object) -> Composer:
    config = parse_config({"ticket": ticket, "outbound": {"loop_secret": LOOP_SECRET}})
    return Composer.from_config(config)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def test_an_auto_reply_carries_threading_subject_and_rfc3834_headers() -> None:
    mail = composer().compose(draft(), now=NOW)
    msg = parsed(mail.raw)
    assert msg["Message-ID"] == mail.message_id
    assert mail.message_id.startswith("<20261125120000.") and mail.message_id.endswith(
        ".pytrs@example.com>"
    )
    assert msg["In-Reply-To"] == "<first@customer.example>"
    assert msg["References"] == "<root@customer.example> <first@customer.example>"
    assert msg["Subject"] == "Re: [Ticket#2026112510000017] Printer on fire"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Precedence"] == "bulk"
    assert msg["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
    assert mail.recipients == ("alice@customer.example",)
    assert mail.envelope_from == "support@example.com"
    assert b"\r\n" in mail.raw and b"\n" not in mail.raw.replace(b"\r\n", b"")


def test_mail_an_agent_wrote_is_not_marked_automatic_but_carries_the_loop_marker() -> None:
    msg = parsed(composer().compose(draft(automatic=None)).raw)
    assert msg["Auto-Submitted"] is None and msg["Precedence"] is None
    assert read_loop_marker(msg["X-PyTRS-Loop"], SECRET) is not None


def test_the_loop_marker_names_the_mail_and_its_ticket() -> None:
    mail = composer().compose(draft(automatic=AUTO_GENERATED), now=NOW)
    mark = read_loop_marker(parsed(mail.raw)["X-PyTRS-Loop"], SECRET)
    assert mark is not None
    assert (mark.message_id, mark.tn, mark.sent_at) == (mail.message_id, "2026112510000017", NOW)


@pytest.mark.parametrize(
    ("fmt", "kind", "subject"),
    [
        ("Left", "reply", "Re: [Ticket#2026112510000017] Printer on fire"),
        ("Right", "reply", "Re: Printer on fire [Ticket#2026112510000017]"),
        ("None", "reply", "Re: Printer on fire"),
        ("Left", "new", "[Ticket#2026112510000017] Printer on fire"),
        ("Left", "forward", "Fwd: [Ticket#2026112510000017] Printer on fire"),
    ],
)
def test_subject_follows_the_ticket_configuration(fmt: str, kind: str, subject: str) -> None:
    mail = composer(subject_format=fmt).compose(
        draft(subject="Re: [Ticket#2026112510000017] Printer on fire", subject_kind=kind)
    )
    assert mail.subject == subject == parsed(mail.raw)["Subject"]


def test_without_a_ticket_the_subject_is_left_alone() -> None:
    assert composer().compose(draft(tn="", subject="Hello")).subject == "Hello"


def test_message_id_domain_from_configuration() -> None:
    config = parse_config(
        {"outbound": {"loop_secret": LOOP_SECRET, "message_id_domain": "Mail.Example.NET"}}
    )
    mail = Composer.from_config(config).compose(draft())
    assert mail.message_id.endswith(".pytrs@mail.example.net>")


def test_references_fall_back_to_in_reply_to_and_long_threads_are_trimmed() -> None:
    parent = Parent("<p@x>", references="", in_reply_to="<gp@x>")
    assert thread_headers(parent) == ("<p@x>", "<gp@x> <p@x>")
    chain = " ".join(f"<{i}@x>" for i in range(50))
    _in_reply_to, references = thread_headers(Parent("<p@x>", chain))
    ids = references.split()
    assert len(ids) == MAX_REFERENCES and ids[0] == "<0@x>" and ids[-1] == "<p@x>"
    assert thread_headers(Parent("not an id")) == ("", "")
    assert thread_headers(None) == ("", "")


def test_bcc_is_an_envelope_recipient_only_and_addresses_are_deduplicated() -> None:
    mail = composer().compose(
        draft(
            to=["Alice <alice@customer.example>"],
            cc=["ALICE@customer.example", "bob@customer.example"],
            bcc=["audit@example.com"],
        )
    )
    assert mail.recipients == (
        "alice@customer.example",
        "bob@customer.example",
        "audit@example.com",
    )
    assert b"audit@example.com" not in mail.raw


def test_line_breaks_in_header_values_cannot_inject_headers() -> None:
    mail = composer().compose(draft(subject="Hi\r\nBcc: victim@example.org", tn=""))
    msg = parsed(mail.raw)
    assert msg["Bcc"] is None and msg["Subject"] == "Hi Bcc: victim@example.org"


def test_non_ascii_text_html_and_attachments() -> None:
    mail = composer().compose(
        draft(
            sender="Jürgen Support <support@example.com>",
            text="Grüße aus Köln\n",
            html="<p>Grüße</p>",
            attachments=[Attachment("log.txt", "text/plain", b"line\n")],
        )
    )
    assert mail.raw.isascii()  # 7-bit: no relay needs 8BITMIME
    msg = parsed(mail.raw)
    assert msg["From"].addresses[0].display_name == "Jürgen Support"
    assert msg.get_body(("plain",)).get_content().splitlines() == ["Grüße aus Köln"]
    assert "Grüße" in msg.get_body(("html",)).get_content()
    assert [p.get_filename() for p in msg.iter_attachments()] == ["log.txt"]
    assert mail.content_type == "multipart/mixed"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"to": []}, "to"),
        ({"to": ["not an address"]}, "to"),
        ({"sender": "a@b.example, c@d.example"}, "sender"),
        ({"automatic": "auto-replyed"}, "automatic"),
    ],
)
def test_unusable_drafts_raise_compose_error(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ComposeError) as info:
        composer().compose(draft(**overrides))
    assert info.value.field == field


# --- the loop marker ---------------------------------------------------------------------


def test_a_tampered_or_foreign_marker_is_not_ours() -> None:
    value = make_loop_marker(SECRET, "<m@example.com>", "2026112510000017", NOW)
    assert read_loop_marker(value, SECRET) is not None
    assert read_loop_marker(value.replace("tn=2026", "tn=2027"), SECRET) is None
    assert read_loop_marker(value.replace("<m@", "<n@"), SECRET) is None
    assert read_loop_marker(value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), SECRET) is None
    assert read_loop_marker(value, b"another secret of 32 bytes....") is None
    for garbage in ("", "v=1", "yes", value + "; x=1", "v=2" + value[3:]):
        assert read_loop_marker(garbage, SECRET) is None


def test_marker_survives_refolding_and_key_rotation_and_ages_out() -> None:
    value = make_loop_marker(SECRET, "<m@example.com>", "", NOW)
    folded = value.replace("; id=", ";\r\n id=")
    old_key = b"the previous key, still accepted"
    assert read_loop_marker(folded, [old_key, SECRET]) is not None
    later = NOW + timedelta(days=31)
    assert read_loop_marker(value, SECRET, max_age=timedelta(days=30), now=later) is None
    assert read_loop_marker(value, SECRET, max_age=timedelta(days=32), now=later) is not None


def test_loop_secret_comes_from_the_configuration_or_a_clear_error(tmp_path: Path) -> None:
    def secret(**outbound: str) -> bytes:
        return loop_secret_from_config(parse_config({"outbound": outbound}).outbound)

    key_file = tmp_path / "loop.key"
    key_file.write_text("k" * 32 + "\n")
    assert secret(loop_secret_file=str(key_file)) == b"k" * 32
    assert secret(loop_secret="s" * 16) == b"s" * 16
    with pytest.raises(ConfigError, match=r"outbound\.loop_secret_file: required"):
        secret()
    with pytest.raises(ConfigError, match=r"outbound\.loop_secret_file: cannot read"):
        secret(loop_secret_file=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"outbound\.loop_secret: must be at least 16 bytes"):
        secret(loop_secret="short")
    with pytest.raises(ValueError):
        make_loop_marker(b"short", "<m@example.com>")
