"""Header fields: RFC 2047 and 8-bit decoding, ids, dates, addresses, Message-ID MD5."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.parsers import ParsedMail, parse_mail
from pytrs.parsers.headers import _plain
from pytrs.vocabulary.message_ids import message_id_md5

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
DISPATCH_HEADERS = ("Resent-To", "Envelope-To", "To", "Cc", "Delivered-To", "X-Original-To")


def load(name: str) -> ParsedMail:
    return parse_mail((DATA / name).read_bytes())


def mail_with(*header_lines: bytes, body: bytes = b"body\n") -> ParsedMail:
    return parse_mail(b"\n".join(header_lines) + b"\n\n" + body)


def test_missing_message_id_is_derived_deterministically() -> None:
    raw = (DATA / "parse-no-message-id-bad-date.eml").read_bytes()
    first, second = parse_mail(raw), parse_mail(raw)
    expected = f"<{hashlib.sha256(raw).hexdigest()[:32]}@pytrs.invalid>"
    assert first.message_id == second.message_id == expected
    assert "Message-ID missing, derived from the raw bytes" in first.warnings
    assert parse_mail(raw + b"other\n").message_id != first.message_id


def test_bad_date_is_none_with_warning() -> None:
    mail = load("parse-no-message-id-bad-date.eml")
    assert mail.date is None
    assert "Date unparsable" in mail.warnings
    assert mail.header("Date") == "yesterday, around noon"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Tue, 03 Mar 2026 10:00:00 -0500", datetime(2026, 3, 3, 15, 0, tzinfo=UTC)),
        (b"3 Mar 2026 10:00:00 -0000", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        (b"Tue, 03 Mar 2026 10:00:00 CET", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        (b"Tue, 31 Feb 2026 10:00:00 +0000", None),
        (b"Tue, 03 Mar 99999 10:00:00 +9999", None),
        (b"", None),
    ],
)
def test_date_is_aware_utc_or_none(value: bytes, expected: datetime | None) -> None:
    mail = mail_with(b"Date: " + value)
    assert mail.date == expected
    if mail.date is not None:
        offset = mail.date.utcoffset()
        assert offset is not None and offset.total_seconds() == 0


def test_missing_date_warns() -> None:
    assert "Date missing" in mail_with(b"Subject: x").warnings


def test_8bit_headers_utf8_and_cp1252() -> None:
    mail = load("parse-8bit-header.eml")
    assert mail.from_ == "Jürgen Weiß <juergen@example.org>"
    assert mail.from_address == "juergen@example.org"
    assert mail.subject == "Café “offen”"
    assert mail.header("X-Mixed") == "Grüße und Grüße"
    assert "8-bit header Subject read as cp1252" in mail.warnings
    assert not any("From" in warning for warning in mail.warnings)  # Valid utf-8 is no repair.


def test_unknown_charset_in_encoded_word() -> None:
    mail = load("parse-unknown-charset.eml")
    assert mail.subject == "café"
    assert any("unknown charset 'x-klingon'" in warning for warning in mail.warnings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"=?utf-8?q?Zo=C3=AB?= =?utf-8?q?_M=C3=BCller?=", "Zoë Müller"),
        (b"=?UTF-8?B?w6TDtsO8?=", "äöü"),
        (b"plain =?iso-8859-1?q?caf=E9?= text", "plain café text"),
        (b"=?utf-8?q?split_=C3?= =?utf-8?b?pA==?=", "split ä"),  # A char split over Q and B.
        (b"=?utf-8*de?q?sprach=C3=A9?=", "spraché"),  # RFC 2231 language suffix.
        (b"=?utf-8?b?w6Q?=", "ä"),  # Missing padding.
        (b"=?utf-8?b?####?= kept", "=?utf-8?b?####?= kept"),
        (b"=?utf-8?q?broken=ZZhex?=", "broken=ZZhex"),
        (b"=?utf-8?q?bad=FFbyte?=", "badÿbyte"),
        (b"=?nope?x?not a word?=", "=?nope?x?not a word?="),
        (b"=?utf-8?q?line=0Abreak?=", "linebreak"),
        (b'"=?utf-8?q?Quoted_J=C3=B6rg?=" <j@example.org>', '"Quoted Jörg" <j@example.org>'),
    ],
)
def test_encoded_words(raw: bytes, expected: str) -> None:
    assert mail_with(b"Subject: " + raw).subject == expected


def test_folded_subject_is_unfolded() -> None:
    mail = mail_with(b"Subject: first\n second\n\tthird")
    assert mail.subject == "first second\tthird"
    assert mail.header("subject") == mail.subject


def test_absurd_header_is_capped() -> None:
    mail = mail_with(b"Subject: " + b"x" * 300_000, b"X-Short: y")
    assert len(mail.subject) == 64 * 1024
    assert mail.header("X-Short") == "y"
    assert any("cut" in warning for warning in mail.warnings)


def test_headers_keep_order_names_and_repeats() -> None:
    mail = mail_with(b"Received: one", b"X-Thing: a", b"received: two", b"x-thing: b")
    assert mail.headers == (
        ("Received", "one"),
        ("X-Thing", "a"),
        ("received", "two"),
        ("x-thing", "b"),
    )
    assert mail.header("RECEIVED") == "one"
    assert mail.header_all("x-THING") == ("a", "b")
    assert mail.header("Missing") == ""
    assert mail.header_all("Missing") == ()


def test_references_then_in_reply_to_deduplicated_in_order() -> None:
    mail = load("parse-references.eml")
    assert mail.in_reply_to == "<b@example.org>"
    assert mail.references == (
        "<root@example.org>",
        "<a@example.org>",
        "<b@example.org>",
        "<later@example.org>",
        "<x@example.org>",
    )


def test_no_threading_headers() -> None:
    mail = mail_with(b"Subject: x")
    assert (mail.in_reply_to, mail.references) == ("", ())


def test_addresses_in_the_order_of_the_given_headers() -> None:
    mail = load("parse-recipients.eml")
    assert mail.addresses(*DISPATCH_HEADERS) == (
        "resent@example.com",
        "envelope@example.com",
        "support@example.com",
        "x@y.example",
        "second-to@example.com",
        "hans@example.com",
        "original@example.com",
    )
    assert mail.addresses("X-Original-To", "To") == (
        "original@example.com",
        "support@example.com",
        "x@y.example",
        "second-to@example.com",
    )
    assert mail.addresses("Bcc") == ()


def test_repeated_to_headers_are_joined_and_sender_is_the_last_from_mailbox() -> None:
    mail = load("parse-recipients.eml")
    assert mail.to.endswith(", second-to@example.com")
    assert mail.cc == "Müller, Hans <hans@example.com>, support@example.com"
    assert mail.from_address == "bob@example.org"


@pytest.mark.parametrize(
    ("from_value", "expected"),
    [
        (b"plain@example.org", "plain@example.org"),
        (b"<Angle@Example.org>", "angle@example.org"),
        (b"MAILER-DAEMON@example.org (Mail Delivery System)", "mailer-daemon@example.org"),
        (b'"at@sign.example in name" <real@example.org>', "real@example.org"),
        (b"undisclosed-recipients:;", ""),
        (b"no address here", ""),
        (b"Broken <half@example.org", "half@example.org"),
        (b"<<<@@@>>>", ""),
    ],
)
def test_from_address(from_value: bytes, expected: str) -> None:
    assert mail_with(b"From: " + from_value).from_address == expected


@pytest.mark.parametrize(
    ("from_value", "mailboxes"),
    [
        # RFC 2047 words stand in names, never in an addr-spec: what they decode to is a name.
        (b"=?utf-8?q?victim=40external.example=2C_x?= <att@evil.example>",
         [("victim@external.example, x", "att@evil.example")]),
        (b"=?utf-8?b?dmljdGltQGV4dGVybmFsLmV4YW1wbGU=?= <att@evil.example>",
         [("victim@external.example", "att@evil.example")]),
        (b"att@evil.example (=?utf-8?q?victim=40external.example?=)",
         [("victim@external.example", "att@evil.example")]),
        (b"=?utf-8?q?victim@external.example?= <att@evil.example>", [("", "att@evil.example")]),
        (b'"=?utf-8?q?J=C3=BCrgen?=" <j@example.org>, Bob <bob@example.org>',
         [("J\u00fcrgen", "j@example.org"), ("Bob", "bob@example.org")]),
    ],
)  # fmt: skip
def test_addresses_come_from_the_raw_field_not_from_decoded_names(
    from_value: bytes, mailboxes: list[tuple[str, str]]
) -> None:
    mail = mail_with(b"From: " + from_value + b"\r\nReply-To: " + from_value)
    assert [tuple(m) for m in mail.mailboxes("From")] == mailboxes
    assert mail.addresses("Reply-To") == tuple(address for _, address in mailboxes)
    assert mail.from_address == mailboxes[-1][1]


def test_only_address_fields_have_addresses() -> None:
    with pytest.raises(KeyError):
        mail_with(b"From: a@example.org").addresses("Subject")


def test_message_id_md5() -> None:
    message_id = "<4614B72A.9020509@znuny.org>"
    assert message_id_md5(message_id) == hashlib.md5(message_id.encode()).hexdigest()
    assert (
        message_id_md5("<zoë@example.org>") == hashlib.md5("<zoë@example.org>".encode()).hexdigest()
    )
    assert len(message_id_md5("\ud800")) == 32  # Never raises, even on a lone surrogate.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"<a@b>", "<a@b>"),
        (b"  <a@b> (comment)", "<a@b>"),
        (b"<a@b> <c@d>", "<a@b>"),
        (b"bare-id@host", "<bare-id@host>"),
        (b"<broken\n id@host>", "<brokenid@host>"),
    ],
)
def test_message_id_forms(value: bytes, expected: str) -> None:
    mail = mail_with(b"Message-ID: " + value)
    assert mail.message_id == expected
    assert mail.header("Message-ID") == value.decode().replace("\n", "").strip()


@settings(max_examples=2000, derandomize=True)
@given(st.text(alphabet=st.sampled_from("a =?\r\n\x00é\t"), max_size=12))
def test_plain_values_are_told_apart_like_the_pattern_did(raw: str) -> None:
    # `_plain` replaced this pattern (with isascii) in decode_header_value's fast path.
    needs_work = re.compile("[\r\n\x00]|=\\?").search(raw) is not None
    assert _plain(raw) == (raw.isascii() and not needs_work)
