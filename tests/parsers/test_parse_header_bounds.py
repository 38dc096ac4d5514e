"""The header block bounds (`max_header_count`, `max_header_block_bytes`): the raw block is cut
before the `email` package parses it, the body is still read, the mail is kept whole."""

from __future__ import annotations

import base64
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.parsers import parse_mail
from pytrs.parsers.headblock import _BLANK_LINE
from pytrs.vocabulary.parse_limits import ParseLimits

HEAD = (
    b"From: Alice <alice@customer.example>\r\nTo: support@example.com\r\n"
    b"Subject: many headers\r\nMessage-ID: <many@customer.example>\r\n"
    b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
)
MIME = (
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n'
    b"--BB\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
    b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
    b'filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + base64.encodebytes(b"\x00\x01payload").replace(b"\n", b"\r\n")
    + b"--BB--\r\n"
)  # fmt: skip


def test_header_fields_beyond_the_count_are_not_parsed() -> None:
    raw = HEAD + b"X-Spam: 1\r\n" * 50_000 + b"\r\nthe body\r\n"
    mail = parse_mail(raw)
    assert len(mail.headers) == 1000
    assert mail.subject == "many headers" and mail.body == "the body\r\n".replace("\r", "")
    assert "more than 1000 header fields: the first 1000 parsed, the rest skipped" in mail.warnings
    assert mail.raw is raw  # the article keeps every header


def test_the_mime_fields_past_the_cut_still_shape_the_body() -> None:
    # Content-Type and friends come last, after a flood of fields the bound skips.
    raw = HEAD + b"Received: from a\r\n  by b\r\n" * 3000 + MIME
    mail = parse_mail(raw, ParseLimits(max_header_count=100))
    assert len([n for n, _ in mail.headers if n == "Received"]) == 95
    assert mail.body == "the body"
    assert [(a.filename, a.content) for a in mail.attachments] == [("a.bin", b"\x00\x01payload")]


def test_the_header_block_size_is_bounded() -> None:
    field = b"X-Big: " + b"y" * 9_000 + b"\r\n"
    raw = HEAD + field * 20 + MIME
    mail = parse_mail(raw, ParseLimits(max_header_block_bytes=50_000))
    big = [v for n, v in mail.headers if n == "X-Big"]
    assert len(big) == 5  # the fields that fit whole, after the five of HEAD
    assert any(w.startswith("header block larger than 50000 bytes") for w in mail.warnings)
    assert mail.body == "the body" and len(mail.attachments) == 1


def test_one_field_of_a_million_folded_lines_is_cut() -> None:
    raw = HEAD + b"References: <a@b>\r\n" + b" <c@d>\r\n" * 1_000_000 + b"\r\nbody\r\n"
    mail = parse_mail(raw)
    assert mail.subject == "many headers" and mail.body == "body\n"
    assert mail.references == ()
    assert any(w.startswith("header block larger than") for w in mail.warnings)


def test_a_header_block_that_fits_is_not_copied() -> None:
    raw = HEAD + b"X-Spam: 1\r\n" * 900 + b"\r\nbody\r\n"
    mail = parse_mail(raw)
    assert len(mail.headers) == 905 and not mail.warnings


def test_an_oversized_mail_is_read_within_the_header_bounds() -> None:
    raw = HEAD + b"X-Spam: 1\r\n" * 5000 + b"\r\n" + b"x" * 2000
    mail = parse_mail(raw, ParseLimits(max_message_bytes=1000, max_header_count=10))
    assert len(mail.headers) == 10 and mail.subject == "many headers"
    assert any(w.startswith("more than 10 header fields") for w in mail.warnings)


def test_a_non_header_line_still_ends_the_block_before_the_bound() -> None:
    # The stdlib starts the body at the first line that is not a field; no cut is needed then.
    raw = HEAD + b"this line is body text\r\n" + b"more text\r\n" * 5000 + b"\r\nend\r\n"
    mail = parse_mail(raw, ParseLimits(max_header_count=100))
    assert len(mail.headers) == 5
    assert not any("header fields" in w for w in mail.warnings)
    assert mail.body.startswith("this line is body text\n")


@settings(max_examples=3000, derandomize=True)
@given(st.binary().map(lambda b: bytes(b"\r\na: "[x % 5] for x in b)))
def test_the_empty_line_is_found_as_the_plain_pattern_finds_it(raw: bytes) -> None:
    # `_BLANK_LINE` is this pattern with a literal first character in each alternative.
    plain = re.compile(rb"\r?\n\r?\n|\r\r").search(raw)
    found = _BLANK_LINE.search(raw)
    assert (found and found.span()) == (plain and plain.span())
