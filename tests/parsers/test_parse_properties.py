"""Property tests of `parse_mail`: stdlib-built mail, then the same mail mutated (SPEC S6).

Well-formed messages are generated with the standard library's own MIME classes (random
charsets, headers, parts, attachment names), so for those the parser must give back exactly
what was put in. Then the bytes are mutated the ways transport and broken software mutate mail
(truncation, flipped bytes, lost or doubled lines, NULs and 8-bit bytes, broken boundaries,
other line ends): the parser must never raise, must hand back the input bytes unchanged and
must stay within its time and memory bounds. Hypothesis runs derandomized, so CI is
deterministic.
"""

from __future__ import annotations

import base64
import random
import time
import tracemalloc
from collections.abc import Callable
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytrs.parsers import ParsedMail, parse_mail

SECONDS_PER_MAIL = 2.0
SETTINGS = settings(
    max_examples=300,
    deadline=None,  # Timing is checked by hand, with a bound generous enough for slow CI.
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 .,:!?-"
# Characters each charset can carry, so that a well-formed mail round-trips exactly.
ALPHABETS = {
    "us-ascii": LATIN,
    "utf-8": LATIN + "äöüßéèñçøåłżśćę€“”…αβγДЖЯ日本語中文한국",
    "iso-8859-1": LATIN + "äöüßéèñçøåÄÖÜ",
    "iso-8859-15": LATIN + "äöüß€Œœ",
    "windows-1252": LATIN + "äöüß€“”…–",
    "koi8-r": LATIN + "абвгдежзийклмнопрстуфхцчшщьыэюяАБВГДЕЖЗ",
    "iso-8859-2": LATIN + "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ",
    "shift_jis": LATIN + "あいうえおかきくけこアイウエオ漢字日本語",
    "euc-jp": LATIN + "あいうえおかきくけこアイウエオ漢字日本語",
    "iso-2022-jp": LATIN + "あいうえおかきくけこアイウエオ漢字日本語",
    "big5": LATIN + "中文字測試郵件訂單",
    "gb2312": LATIN + "中文字测试邮件订单",
    "euc-kr": LATIN + "안녕하세요주문문의",
}
CHARSETS = st.sampled_from(sorted(ALPHABETS))


def words(charset: str, min_size: int = 1) -> st.SearchStrategy[str]:
    """Text that survives header folding: no leading/trailing or doubled spaces."""
    alphabet = ALPHABETS[charset].replace(" ", "")
    word = st.text(alphabet=alphabet, min_size=1, max_size=12)
    return st.lists(word, min_size=min_size, max_size=8).map(" ".join)


@st.composite
def lines(draw: st.DrawFn, charset: str) -> str:
    text = draw(st.lists(words(charset, 0), min_size=1, max_size=8))
    return "\n".join(text) + "\n"


@st.composite
def mails(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """A well-formed mail built with `email.mime`, and what the parser must read from it."""
    charset = draw(CHARSETS)
    subject = draw(words(charset))
    body = draw(lines(charset))
    text = MIMEText(body, "plain", charset)
    html = draw(st.booleans())
    files = draw(st.lists(st.tuples(CHARSETS, st.binary(max_size=300)), max_size=3))
    forward = draw(st.booleans())
    top: MIMEBase = text
    if html or files or forward:
        # Fixed boundaries: the stdlib would draw them from `random`, outside Hypothesis' control.
        top = MIMEMultipart("mixed", boundary="=====mixed=====")
        if html:
            alternative = MIMEMultipart("alternative", boundary="=====alternative=====")
            alternative.attach(text)
            alternative.attach(MIMEText(f"<p>{body}</p>", "html", "utf-8"))
            top.attach(alternative)
        else:
            top.attach(text)
    names = []
    for number, (name_charset, content) in enumerate(files):
        name = draw(words(name_charset)) + f".{number}.bin"
        part = MIMEApplication(content)
        if draw(st.booleans()):
            part.add_header("Content-Disposition", "attachment", filename=(name_charset, "", name))
        else:
            encoded = Header(name, name_charset).encode()
            part.add_header("Content-Disposition", "attachment", filename=encoded)
        top.attach(part)
        names.append(name)
    if forward:
        inner = MIMEText(draw(lines("koi8-r")), "plain", "koi8-r")
        inner["Subject"] = Header(draw(words("koi8-r")), "koi8-r")
        top.attach(MIMEMessage(inner))
    top["Subject"] = Header(subject, charset)
    top["From"] = Header(draw(words(charset)), charset).encode() + " <sender@example.org>"
    top["To"] = "support@example.com"
    top["Message-ID"] = "<prop@example.org>"
    top["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    expected = {"subject": subject, "body": body, "files": names, "forward": forward}
    return top.as_bytes(), expected


def timed_parse(raw: bytes) -> ParsedMail:
    started = time.perf_counter()
    parsed = parse_mail(raw)
    elapsed = time.perf_counter() - started
    assert elapsed < SECONDS_PER_MAIL, f"{elapsed:.2f} s for {len(raw)} bytes"
    return parsed


def check(parsed: ParsedMail, raw: bytes) -> None:
    """What holds for any input."""
    assert parsed.raw == raw
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert all("\n" not in value and "\r" not in value for _name, value in parsed.headers)
    assert "\x00" not in parsed.body and "\r" not in parsed.body
    assert all(isinstance(a.content, bytes) for a in parsed.attachments)
    assert isinstance(parsed.addresses("To", "Cc", "From"), tuple)
    assert len(parsed.warnings) <= 100


@SETTINGS
@given(mails())
def test_well_formed_mail_round_trips(mail: tuple[bytes, dict[str, object]]) -> None:
    raw, expected = mail
    parsed = timed_parse(raw)
    check(parsed, raw)
    assert parsed.subject == expected["subject"]
    assert parsed.body == expected["body"]
    assert parsed.from_address == "sender@example.org"
    names = [a.filename for a in parsed.attachments if a.content_type.startswith("application")]
    assert names == expected["files"]
    assert parsed.warnings == ()
    if expected["forward"]:
        nested = parsed.attachments[-1]
        assert nested.content_type == "message/rfc822"
        assert nested.filename.endswith(".eml")
        assert parse_mail(nested.content).warnings == (
            "Message-ID missing, derived from the raw bytes",
            "Date missing",
        )


# --- mutations ----------------------------------------------------------------------------


def _truncate(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(len(raw) + 1)]


def _flip(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _duplicate_line(raw: bytes, rng: random.Random) -> bytes:
    rows = raw.split(b"\n")
    index = rng.randrange(len(rows))
    return b"\n".join([*rows[: index + 1], rows[index], *rows[index + 1 :]])


def _remove_line(raw: bytes, rng: random.Random) -> bytes:
    rows = raw.split(b"\n")
    del rows[rng.randrange(len(rows))]
    return b"\n".join(rows)


def _insert(raw: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(raw) + 1)
    junk = bytes(rng.choice((0, 0x80, 0x9F, 0xC3, 0xFF, 0x1B)) for _ in range(rng.randint(1, 6)))
    return raw[:at] + junk + raw[at:]


def _break_boundary(raw: bytes, rng: random.Random) -> bytes:
    # The generated boundaries start with "====="; damage some of the delimiters.
    marker = b"--====="
    pieces = raw.split(marker)
    return b"".join(
        piece + (rng.choice((marker, b"--=X===", b"-=====", b"")) if i < len(pieces) - 1 else b"")
        for i, piece in enumerate(pieces)
    )


def _line_ends(raw: bytes, rng: random.Random) -> bytes:
    return raw.replace(b"\n", rng.choice((b"\r", b"\r\n", b"\n\r", b"\r\r\n")))


def _header_to_8bit(raw: bytes, rng: random.Random) -> bytes:
    # An encoded word's payload pasted in raw, as a broken gateway would.
    return raw.replace(b"=?", bytes([rng.choice((0xE4, 0xC3, 0x8E))]), rng.randint(1, 3))


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [
    _truncate, _flip, _duplicate_line, _remove_line, _insert, _break_boundary, _line_ends,
    _header_to_8bit,
]  # fmt: skip


@SETTINGS
@given(
    mails(),
    st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**32)), min_size=1, max_size=4),
)
def test_mutated_mail_never_breaks_the_parser(
    mail: tuple[bytes, dict[str, object]],
    mutations: list[tuple[Callable[[bytes, random.Random], bytes], int]],
) -> None:
    raw = mail[0]
    for mutate, seed in mutations:
        raw = mutate(raw, random.Random(seed))
    check(timed_parse(raw), raw)


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from([b"", b"Subject: x\n", b"Content-Type: multi"]))
def test_arbitrary_bytes_after_a_header(tail: bytes, head: bytes) -> None:
    raw = head + tail
    check(timed_parse(raw), raw)


# --- memory on large inputs -------------------------------------------------------------------

MB = 1 << 20


def _big_attachment() -> bytes:
    data = base64.encodebytes(random.Random(1).randbytes(MB * 3 // 4))
    return (
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhi\n'
        b"--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        + data + b"--B--\n"
    )  # fmt: skip


LARGE_INPUTS = {
    "attachment": _big_attachment,
    "header": lambda: b"Subject: " + b"=?utf-8?q?=C3=A4?= " * (MB // 19) + b"\n\nbody\n",
    "parts": lambda: b'Content-Type: multipart/mixed; boundary="B"\n\n' + b"--B\n\nx\n" * (MB // 8),
    "headers": lambda: b"X-Filler: some value\n" * (MB // 21) + b"\nbody\n",
    "unknown-charset": lambda: (
        b"Content-Type: text/plain; charset=x-unknown\n\n"
        + "Привет, это длинное письмо.\n".encode("koi8-r") * (MB // 28)
    ),
    "random": lambda: random.Random(2).randbytes(MB),
}


@pytest.mark.parametrize("name", sorted(LARGE_INPUTS))
def test_large_inputs_stay_within_memory_and_time(name: str) -> None:
    raw = LARGE_INPUTS[name]()
    assert len(raw) >= MB * 3 // 4
    tracemalloc.start()
    try:
        started = time.perf_counter()
        parsed = parse_mail(raw)
        elapsed = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check(parsed, raw)
    assert peak < 20 * len(raw) + 5 * MB, f"peak {peak / MB:.1f} MiB"
    # tracemalloc slows allocation-heavy code down several times; the bound allows for that.
    assert elapsed < 5 * SECONDS_PER_MAIL, f"{elapsed:.2f} s"
