"""`parse_mail` never raises: garbage, absurd sizes, bounded MIME walks, property tests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytrs.parsers import ParsedMail, parse_mail

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,  # No .hypothesis/ folder in the repository.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(parsed: ParsedMail) -> None:
    """Invariants every record holds, whatever the input was."""
    assert isinstance(parsed, ParsedMail)
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert all(isinstance(a.content, bytes) for a in parsed.attachments)
    assert all(a.disposition in ("inline", "attachment") for a in parsed.attachments)
    assert all("\n" not in value and "\r" not in value for _name, value in parsed.headers)
    assert "\n" not in parsed.subject and "\x00" not in parsed.body
    assert isinstance(parsed.addresses("To", "Cc", "From"), tuple)


def nested(depth: int) -> bytes:
    entity = b"Content-Type: text/plain\n\ndeepest text\n"
    for level in range(depth):
        boundary = b"b%d" % level
        entity = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\n\n--' + boundary
            + b"\n" + entity + b"\n--" + boundary + b"--\n"
        )  # fmt: skip
    return b"Subject: deep\n" + entity


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\xff\xfe\x80\r\n\r\n\xff",
        b"\n\n\n",
        b"A" * (1 << 20),
        b"Subject: " + b"x" * (1 << 20) + b"\n\nbody",
        b"X: y\n" * 20_000 + b"\nbody",
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: multipart/mixed\n\nno boundary\n",
        b"Content-Type: message/rfc822\n\n",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n!!!!",
        b"Content-Type: message/delivery-status\n\nbroken",
        b"Content-Type: text/plain; charset*=''\n\n\xff",
        b'Content-Type: text/plain; charset="\xff\xfe"\n\n\xff',
        b"Content-Type: text/plain; charset=utf-16\n\n\xff",
        b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 f\n#0V%T\n`\nend\n",
        b"Content-Transfer-Encoding: base64\n\n====",
        b"Content-Type: text/html\n\n<![if !supportLists]><!-- x <p>&#xffffffff; &bogus;",
        b"Content-Type: text/html\n\n<a href='#'>" * 1000,
        b"Subject: =?utf-8?b?" + b"A" * 100_001 + b"?=",
        b"From: " + b"<a@b>, " * 10_000,
        b"Date: Mon, 1 Jan 0001 00:00:00 +2359",
        b"Message-ID: <>\nIn-Reply-To: <<<>>>\nReferences: <\n\n",
    ],
    ids=lambda raw: repr(raw[:30]),
)
def test_garbage_never_raises(raw: bytes) -> None:
    check(parse_mail(raw))


def test_garbage_gets_a_stable_derived_id() -> None:
    raw = b"\x00\xff garbage"
    assert parse_mail(raw).message_id == parse_mail(raw).message_id
    assert parse_mail(raw).message_id.endswith("@pytrs.invalid>")


def test_nesting_beyond_the_bound_is_skipped_with_a_warning() -> None:
    parsed = parse_mail(nested(60))
    assert parsed.body == ""
    assert "MIME nesting deeper than 50, the rest skipped" in parsed.warnings
    assert parse_mail(nested(40)).body == "deepest text\n"


def test_nesting_beyond_the_parser_degrades_to_headers_only() -> None:
    parsed = parse_mail(nested(3000))
    assert parsed.subject == "deep"
    assert (parsed.body, parsed.attachments) == ("", ())
    assert any("MIME structure unparsable" in warning for warning in parsed.warnings)


def test_part_count_is_bounded() -> None:
    part = b"--B\nContent-Type: application/octet-stream\n\nx\n"
    raw = b'Content-Type: multipart/mixed; boundary="B"\n\n' + part * 1500 + b"--B--\n"
    parsed = parse_mail(raw)
    assert len(parsed.attachments) == 999  # The multipart container counts as a part.
    assert "more than 1000 MIME parts, the rest skipped" in parsed.warnings


def test_warnings_are_bounded() -> None:
    headers = b"".join(b"X-%d: =?x-bad%d?q?=FF?=\n" % (n, n) for n in range(500))
    parsed = parse_mail(headers + b"\nbody")
    assert len(parsed.warnings) == 100
    assert parsed.warnings[-1].endswith("more warnings")


@PROPERTY
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    check(parse_mail(raw))


HEADER_NAMES = st.sampled_from(
    [
        "Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "In-Reply-To",
        "References", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "MIME-Version", "X-Custom",
    ]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "multipart/mixed; boundary=B",
            "multipart/alternative; boundary=B",
            "text/plain; charset=utf-8",
            "text/plain; charset=x-unknown",
            "text/html; charset=iso-8859-1",
            "message/rfc822",
            "base64",
            "quoted-printable",
            "attachment; filename*=utf-8''%E4%FF",
            "=?utf-8?b?w6Q?= =?iso-8859-1?q?=E4?= =?bogus?q?x?=",
            "<id@example.org> <other@example.org>",
            "Tue, 03 Mar 2026 10:00:00 +0100",
        ]
    ),
)
BODY_TEXT = st.one_of(
    st.text(max_size=500),
    st.lists(
        st.sampled_from(["--B", "--B--", "Content-Type: text/html", "", "<p>x</p>", "=E4"])
    ).map("\n".join),
)


@PROPERTY
@given(
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12),
    BODY_TEXT,
    st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_arbitrary_header_and_body_text_never_raise(
    headers: list[tuple[str, str]], body: str, encoding: str, newline: str
) -> None:
    text = newline.join(f"{name}: {value}" for name, value in headers)
    errors = "replace" if encoding == "latin-1" else "surrogatepass"
    raw = (text + newline + newline + body).encode(encoding, errors)
    check(parse_mail(raw))


def test_buffers_are_accepted() -> None:
    raw = b"Subject: buffered\n\nbody\n"
    assert parse_mail(bytearray(raw)).subject == "buffered"  # type: ignore[arg-type]
    assert parse_mail(memoryview(raw)).body == "body\n"  # type: ignore[arg-type]


def test_a_failing_walk_keeps_the_header_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("pytrs.parsers.mail.split_parts", broken)
    parsed = parse_mail(b"Subject: kept\nMessage-ID: <k@x>\n\nbody\n")
    assert (parsed.subject, parsed.message_id, parsed.body) == ("kept", "<k@x>", "")
    assert "MIME walk failed (RuntimeError), body and attachments lost" in parsed.warnings


def test_a_failing_record_still_returns_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("pytrs.parsers.mail.parse_date", broken)
    raw = b"Subject: lost\n\nbody\n"
    parsed = parse_mail(raw)
    assert parsed.message_id == f"<{hashlib.sha256(raw).hexdigest()[:32]}@pytrs.invalid>"
    assert (parsed.subject, parsed.body, parsed.headers) == ("", "", ())
    assert "header fields failed (RuntimeError)" in parsed.warnings
