"""Body choice, charsets, HTML rendering and attachments of hand-built mails."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pytrs.parsers import Attachment, ParsedMail, parse_mail

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
HEAD = b"From: a@example.org\nTo: b@example.org\nSubject: t\nMessage-ID: <t@example.org>\n"


def single(content_type: bytes, body: bytes, *extra: bytes) -> ParsedMail:
    lines = [b"Content-Type: " + content_type, *extra]
    return parse_mail(HEAD + b"\n".join(lines) + b"\n\n" + body)


def multipart(subtype: bytes, *parts: bytes, boundary: bytes = b"BOUNDARY") -> bytes:
    """The text of a multipart entity (headers and body) holding `parts`."""
    body = b"".join(b"--" + boundary + b"\n" + part + b"\n" for part in parts)
    return (
        b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\n\n'
        + body + b"--" + boundary + b"--\n"
    )  # fmt: skip


def mail(entity: bytes) -> ParsedMail:
    return parse_mail(HEAD + b"MIME-Version: 1.0\n" + entity)


TEXT = b"Content-Type: text/plain; charset=utf-8\n\nplain body\n"
HTML = b"Content-Type: text/html; charset=utf-8\n\n<p>html <b>body</b></p>\n"
PNG = base64.b64encode(b"\x89PNG fake image")


def test_plain_mail() -> None:
    parsed = single(b"text/plain; charset=utf-8", "Grüße\r\n".encode())
    assert parsed.body == "Grüße\n"
    assert parsed.content_type == "text/plain; charset=utf-8"
    assert (parsed.html, parsed.attachments, parsed.warnings) == (None, (), ("Date missing",))


def test_alternative_prefers_plain_and_keeps_html() -> None:
    parsed = mail(multipart(b"alternative", TEXT, HTML))
    assert parsed.body == "plain body\n"
    assert parsed.html == "<p>html <b>body</b></p>\n"
    assert parsed.attachments == ()


def test_html_only_mail_is_rendered_as_text() -> None:
    parsed = parse_mail((DATA / "parse-html-only.eml").read_bytes())
    assert parsed.html is not None and "<script>" in parsed.html
    assert parsed.content_type == "text/plain; charset=utf-8"
    assert parsed.body == (
        "Order änderung\n\n"
        "Fish & chips <today> only.\n\n"
        "See your order [https://example.org/order/42] or https://example.org/.\n\n"
        "- first\n- second\n\n"
        "Line\nbreak"
    )
    assert "alert" not in parsed.body and "color" not in parsed.body
    assert "Ignored title" not in parsed.body


def test_related_html_with_inline_image() -> None:
    image = (
        b'Content-Type: image/png; name="logo.png"\nContent-Transfer-Encoding: base64\n'
        b"Content-ID: <logo@example.org>\n\n" + PNG
    )
    related = multipart(b"related", HTML, image, boundary=b"REL")
    parsed = mail(multipart(b"alternative", TEXT, related))
    (logo,) = parsed.attachments
    assert logo == Attachment(
        filename="logo.png",
        content_type='image/png; name="logo.png"',
        content=b"\x89PNG fake image",
        content_id="<logo@example.org>",
        disposition="inline",
        content_alternative=True,
    )


def test_first_plain_part_is_the_body_later_ones_are_attachments() -> None:
    second = b"Content-Type: text/plain; charset=utf-8\n\nsecond text\n"
    parsed = mail(multipart(b"mixed", TEXT, second))
    assert parsed.body == "plain body\n"
    (extra,) = parsed.attachments
    assert (extra.filename, extra.content, extra.disposition) == (
        "file-1",
        b"second text\n",
        "attachment",
    )


def test_text_marked_as_attachment_is_not_the_body() -> None:
    attached = (
        b"Content-Type: text/plain; charset=utf-8\n"
        b'Content-Disposition: attachment; filename="notes.txt"\n\nnotes\n'
    )
    named_inline = (
        b"Content-Type: text/plain\nContent-Disposition: inline; filename=inline.txt\n\ninline\n"
    )
    parsed = mail(multipart(b"mixed", attached, named_inline, TEXT))
    assert parsed.body == "plain body\n"
    assert [(a.filename, a.disposition) for a in parsed.attachments] == [
        ("notes.txt", "attachment"),
        ("inline.txt", "inline"),
    ]


def test_non_multipart_non_text_mail_is_an_attachment() -> None:
    parsed = single(
        b"application/pdf", base64.b64encode(b"%PDF-1.4"), b"Content-Transfer-Encoding: base64"
    )
    assert parsed.body == ""
    assert [(a.filename, a.content) for a in parsed.attachments] == [("file-1", b"%PDF-1.4")]


def test_no_text_at_all() -> None:
    parsed = mail(multipart(b"mixed", b"Content-Type: application/zip\n\nPK"))
    assert (parsed.body, parsed.content_type, parsed.html) == (
        "",
        "text/plain; charset=utf-8",
        None,
    )


def test_format_flowed_is_kept_in_the_content_type() -> None:
    parsed = single(b"text/plain; charset=us-ascii; format=flowed; delsp=yes", b"a \nb\n")
    assert parsed.content_type == "text/plain; charset=utf-8; format=flowed; delsp=yes"


@pytest.mark.parametrize(
    ("charset", "payload", "expected", "warned"),
    [
        (b"utf-8", "café".encode(), "café", False),
        (b"iso-8859-1", "café".encode("latin-1"), "café", False),
        (b"iso-8859-1", "“quoted” €".encode("cp1252"), "“quoted” €", True),
        (b"us-ascii", "café".encode(), "café", True),
        (b"us-ascii", "café".encode("cp1252"), "café", True),
        (b"x-unknown", "café".encode(), "café", True),
        (b'"UTF-8"', "café".encode(), "café", False),
        (b"utf-8", b"caf\xe9 ok", "café ok", True),
        (b"euc-kr", "한국어".encode("cp949"), "한국어", False),
        (b"gb2312", "中文".encode("gb18030"), "中文", False),
        (b"base64", "café".encode(), "café", True),
        (b"iso-2022-jp", b"\x1b$B\xff\xff", None, True),
    ],
)
def test_body_charsets(charset: bytes, payload: bytes, expected: str | None, warned: bool) -> None:
    parsed = single(b"text/plain; charset=" + charset, payload, b"Content-Transfer-Encoding: 8bit")
    if expected is not None:
        assert parsed.body == expected
    assert any(w.startswith("body:") for w in parsed.warnings) == warned


def test_missing_charset_with_8bit_falls_back() -> None:
    parsed = single(b"text/plain", "naïve".encode())
    assert parsed.body == "naïve"
    assert any("read as utf-8" in warning for warning in parsed.warnings)


def test_unknown_charset_body() -> None:
    parsed = parse_mail((DATA / "parse-unknown-charset.eml").read_bytes())
    assert parsed.body == "café and crème\n"
    assert "body: unknown charset 'x-klingon', read as utf-8/cp1252" in parsed.warnings


def test_quoted_printable_and_base64_bodies() -> None:
    qp = single(
        b"text/plain; charset=iso-8859-1",
        b"Gr=FC=DFe=\n aus\n",
        b"Content-Transfer-Encoding: quoted-printable",
    )
    assert qp.body == "Grüße aus\n"
    b64 = single(
        b"text/plain; charset=utf-8",
        base64.b64encode("Grüße".encode()),
        b"Content-Transfer-Encoding: BASE64",
    )
    assert b64.body == "Grüße"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"Content-Disposition: attachment; filename*=UTF-8''%C3%A4%20b.txt", "ä b.txt"),
        (
            b"Content-Disposition: attachment;\n filename*0*=utf-8''%C3%A4;\n filename*1=.txt",
            "ä.txt",
        ),
        (b'Content-Disposition: attachment; filename="=?utf-8?q?=C3=A4.pdf?="', "ä.pdf"),
        (b'Content-Disposition: attachment; filename="caf\xc3\xa9.txt"', "café.txt"),
        (b'Content-Disposition: attachment; filename="caf\xe9.txt"', "café.txt"),
        (b"Content-Disposition: attachment; filename*=x-bogus''caf%E9.txt", "café.txt"),
        (b"Content-Disposition: attachment", "file-1"),
        (b'Content-Disposition: attachment; filename="a\x07b.txt"', "ab.txt"),
    ],
)
def test_attachment_filenames(headers: bytes, expected: str) -> None:
    part = b"Content-Type: application/octet-stream\n" + headers + b"\n\ndata"
    parsed = mail(multipart(b"mixed", TEXT, part))
    assert [a.filename for a in parsed.attachments] == [expected]


def test_name_parameter_is_the_filename_fallback() -> None:
    part = b'Content-Type: application/pdf; name="=?iso-8859-1?q?r=E9sum=E9.pdf?="\n\n%PDF'
    (pdf,) = mail(multipart(b"mixed", TEXT, part)).attachments
    assert pdf.filename == "résumé.pdf"
    assert pdf.content_type == 'application/pdf; name="=?iso-8859-1?q?r=E9sum=E9.pdf?="'
    assert pdf.disposition == "attachment"


def test_nested_message_is_not_walked_into() -> None:
    inner = b"Subject: =?utf-8?q?Inner_m=C3=A4il?=\nMessage-ID: <inner@x>\n\ninner text\n"
    nested = b"Content-Type: message/rfc822\n\n" + inner
    parsed = mail(multipart(b"mixed", nested))
    assert parsed.body == ""
    (attachment,) = parsed.attachments
    assert attachment.filename == "Inner mäil.eml"
    assert parse_mail(attachment.content).body == "inner text\n"
    assert parse_mail(attachment.content).message_id == "<inner@x>"


def test_nested_message_without_subject() -> None:
    parsed = mail(multipart(b"mixed", TEXT, b"Content-Type: message/rfc822\n\nFrom: x@y\n\nhi\n"))
    assert [a.filename for a in parsed.attachments] == ["file-1"]


def test_broken_boundary_keeps_text_visible() -> None:
    parsed = mail(b'Content-Type: multipart/mixed; boundary="NOPE"\n\nJust text, no parts.\n')
    assert parsed.body == "Just text, no parts.\n"
    assert "multipart without a usable boundary read as text" in parsed.warnings


def test_missing_end_boundary() -> None:
    parsed = mail(b'Content-Type: multipart/mixed; boundary="B"\n\n--B\n' + TEXT)
    assert parsed.body.startswith("plain body")


def test_stray_header_line_is_repaired() -> None:
    parsed = parse_mail(
        b"From: a@example.org\nX-Spam-Status: No, score=1\nBAYES_00 autolearn=ham\n"
        b"Subject: kept\nMessage-ID: <kept@example.org>\n\nbody\n"
    )
    assert (parsed.subject, parsed.message_id, parsed.body) == (
        "kept",
        "<kept@example.org>",
        "body\n",
    )
    assert parsed.header("X-Spam-Status") == "No, score=1 BAYES_00 autolearn=ham"
    assert "header line without colon joined to the previous header" in parsed.warnings


def test_body_without_separator_is_not_taken_for_headers() -> None:
    parsed = parse_mail(b"Subject: s\nDear John\nRe: your order\n")
    assert parsed.subject == "s"
    assert parsed.body == "Dear John\nRe: your order\n"
