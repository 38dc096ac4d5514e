"""The header block bounds hold for every MIME part too: a body part, an attached message
(message/rfc822) and a delivery-status block are cut in the raw bytes like the top-level block,
the rest of the mail is still parsed, the raw mail is kept whole."""

from __future__ import annotations

from pytrs.parsers import parse_mail
from pytrs.parsers.partheads import bound_part_header_blocks
from pytrs.vocabulary.parse_limits import ParseLimits

HEAD = (
    b"From: Alice <alice@customer.example>\r\nTo: support@example.com\r\n"
    b"Subject: parts\r\nMessage-ID: <parts@customer.example>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n'
)
ATTACHMENT = (
    b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n\r\nAAFwYXlsb2Fk\r\n'
)
FLOOD = b"X-Spam: 1\r\n" * 50_000


def test_a_body_part_of_many_header_lines_is_cut() -> None:
    part = b"--BB\r\n" + FLOOD + b"Content-Type: text/plain; charset=utf-8\r\n\r\nthe body\r\n"
    raw = HEAD + part + ATTACHMENT + b"--BB--\r\n"
    mail = parse_mail(raw)
    assert mail.body == "the body"  # its Content-Type, found past the cut, still applies
    assert [(a.filename, a.content) for a in mail.attachments] == [("a.bin", b"\x00\x01payload")]
    assert "MIME part: more than 1000 header fields: the first 1000 parsed, the rest skipped" in (
        mail.warnings
    )
    assert mail.raw is raw


def test_an_attached_message_of_many_header_lines_is_cut() -> None:
    inner = b"Subject: inner\r\nFrom: bob@example.org\r\n" + FLOOD + b"\r\ninner body\r\n"
    part = b"--BB\r\nContent-Type: message/rfc822\r\n\r\n" + inner
    raw = HEAD + b"--BB\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" + part + b"--BB--\r\n"
    mail = parse_mail(raw)
    assert mail.body == "see below"
    forwarded = [a for a in mail.attachments if a.content_type.startswith("message/rfc822")]
    assert len(forwarded) == 1 and "Subject: inner" in forwarded[0].text
    assert "inner body" in forwarded[0].text
    assert any(w.startswith("MIME part: more than 1000 header fields") for w in mail.warnings)


def test_a_part_header_block_is_bounded_in_bytes() -> None:
    field = b"X-Big: " + b"y" * 9_000 + b"\r\n"
    part = b"--BB\r\nContent-Type: text/plain\r\n" + field * 20 + b"\r\nthe body\r\n"
    raw = HEAD + part + ATTACHMENT + b"--BB--\r\n"
    mail = parse_mail(raw, ParseLimits(max_header_block_bytes=50_000))
    assert mail.body == "the body" and len(mail.attachments) == 1
    assert any(w.startswith("MIME part: header block larger than 50000") for w in mail.warnings)


def test_a_delivery_status_block_is_cut() -> None:
    status = (
        b'--BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a.example\r\n'
        b"\r\nFinal-Recipient: rfc822; x@example.com\r\n" + FLOOD + b"Status: 5.1.1\r\n\r\n"
    )  # fmt: skip
    raw = HEAD + b"--BB\r\nContent-Type: text/plain\r\n\r\nbounced\r\n" + status + b"--BB--\r\n"
    warnings: list[str] = []
    bounded = bound_part_header_blocks(raw, 1000, 1024 * 1024, warnings)
    assert len(bounded) < len(raw) // 10 and warnings
    assert bounded.count(b"X-Spam: 1") == 999  # after Final-Recipient, within the 1000
    assert parse_mail(raw).body == "bounced"


def test_parts_that_fit_are_not_copied() -> None:
    body = b"--BB\r\nContent-Type: text/plain\r\n\r\n" + b"line: of text\r\n" * 5000
    raw = HEAD + body + ATTACHMENT + b"--BB--\r\n"
    warnings: list[str] = []
    assert bound_part_header_blocks(raw, 1000, 1024 * 1024, warnings) is raw and not warnings
