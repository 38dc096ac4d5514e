"""The quirk corpus: one `tests/data/parsers/q-*.eml` per way real mail goes wrong (SPEC S6).

Each file has one entry in `QUIRKS` saying exactly what the parser must make of it: decoded
subject and body, sender and recipients, attachment names, and the warnings that record each
repair. Quirks too large to keep as files (a 1 MB header, deep nesting, oversized mail) are
generated below, as are the checks that `ParseLimits` are honoured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytrs.parsers import ParsedMail, parse_mail
from pytrs.vocabulary.parse_limits import ParseLimits

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
RU = (
    "Здравствуйте! Пишу вам по поводу заказа номер 12345. Товар до сих пор не пришёл, "
    "прошло уже две недели.\n"
)
JA = "お世話になっております。先日注文した商品がまだ届いておりません。"
DEFAULT_SENDER = "Quirk Sender <sender@example.org>"


@dataclass(frozen=True)
class Quirk:
    """What one quirk file must parse to; None means "not checked"."""

    subject: str | None = None
    body: str | None = None
    from_: str | None = DEFAULT_SENDER
    to: str | None = None
    cc: str | None = None
    addresses: tuple[str, ...] | None = None  # ParsedMail.addresses("To", "Cc", "Reply-To")
    files: tuple[tuple[str, str, int], ...] = ()  # (filename, content type, size)
    warnings: tuple[str, ...] = ()  # each must be present
    clean: bool = False  # no warnings at all
    message_id: str | None = None
    dated: bool = True  # a usable Date header
    extra: dict[str, str] = field(default_factory=dict)  # header name -> decoded value


def labelled(body: str, *warnings: str, subject: str | None = None) -> Quirk:
    """A single text/plain quirk: the body, and the body warnings expected (none: clean)."""
    return Quirk(subject=subject, body=body, warnings=warnings, clean=not warnings)


QUIRKS: dict[str, Quirk] = {
    # --- charset labels and mislabels ---------------------------------------------------------
    "charset-us-ascii-utf8": labelled(
        "Grüße aus Köln\n", "body: 8-bit text labelled 'us-ascii', read as utf-8"
    ),
    "charset-us-ascii-guess": labelled(RU, "body: 8-bit text labelled 'us-ascii', guessed koi8-r"),
    "charset-latin1-is-cp1252": labelled(
        "“Quoted” price: 20 € – thanks\n", "body: 8-bit C1 bytes in text labelled 'iso-8859-1'"
    ),
    "charset-unknown-8bit": labelled(
        "Café crème à la carte\n", "body: unknown charset 'unknown-8bit', read as cp1252"
    ),
    "charset-x-unknown": labelled(
        "Grüße, Zoë\n", "body: unknown charset 'x-unknown', read as utf-8"
    ),
    "charset-unknown": labelled(RU, "body: unknown charset 'unknown', guessed cp1251"),
    "charset-utf8": labelled("Smörgåsbord\n"),
    "charset-utf_8-upper": labelled("Smörgåsbord\n"),
    "charset-iso8859-1": labelled("Señor Muñoz\n"),
    "charset-iso-8859-15-space": labelled("Preis: 20 €, Œuvre\n"),
    "charset-win-1252": labelled("“Smart” quotes…\n"),
    "charset-cp-1252": labelled("Ellipsis… and € sign\n"),
    "charset-ks_c_5601-1987": labelled(
        "안녕하세요, 주문 문의입니다. 똠방각하\n", subject="주문 문의"
    ),
    "charset-x-sjis": labelled("髙橋様 ① 山﨑\n"),  # cp932-only characters
    "charset-shift-jis-misspelt": labelled(JA + "\n"),
    "charset-gb2312-gbk-chars": labelled("朱镕基总理\n", subject="朱镕基"),  # 镕 is GBK only
    "charset-big5-hkscs-chars": labelled("佢哋喺度講嘅嘢\n"),  # Cantonese: HKSCS only
    "charset-empty-label": labelled(
        "Grüße\n", "body: 8-bit text labelled 'us-ascii', read as utf-8"
    ),
    "charset-garbage-label": labelled("Grüße\n", "body: unknown charset '=?!#%', read as cp1252"),
    "charset-iso-2022-jp-ms-label": labelled("①② NEC 漢字\n"),
    "iso-2022-jp-nec-chars": labelled(
        "①② NEC 漢字\n", "body: text invalid in charset 'ISO-2022-JP', read as cp50220"
    ),
    "unlabelled-iso-2022-jp": labelled(
        "日本語のテキスト\n", "body: ISO-2022-JP text labelled 'us-ascii'"
    ),
    "8bit-body-no-charset": labelled(
        "Résumé attached, café\n", "body: 8-bit text labelled 'us-ascii', read as cp1252"
    ),
    "encoded-word-unknown-charset": Quirk(
        subject="Grüße and Grüße",
        body="body\n",
        warnings=(
            "header word: unknown charset 'x-mystery', read as utf-8",
            "header word: unknown charset 'x-mystery', read as cp1252",
        ),
    ),
    # --- named charsets: REFERENCE Part B #26 and Asian mail ----------------------------------
    "koi8-r": Quirk(subject="Заказ не пришёл", body=RU, clean=True),
    "iso-2022-jp": Quirk(subject="ご注文について", body=JA + "\n", clean=True),
    "big5": Quirk(subject="訂單查詢", body="您好，我上週訂購的商品至今尚未收到。\n", clean=True),
    "shift_jis": Quirk(subject="髙橋です", body=JA + " 髙橋\n", clean=True),
    # --- attachment names: REFERENCE Part B #20 -----------------------------------------------
    "rfc2231-continuations": Quirk(
        body="See attachment.",
        files=(
            ("€ Rechnung März 2026.pdf", "application/pdf", 13),
            ("Grüße.txt", "text/plain; name*=iso-8859-1'de'Gr%FC%DFe.txt", 5),
            ("…real.bin", "application/octet-stream", 2),  # filename* beats filename
            ("single wins.bin", "application/octet-stream", 1),  # a mix the stdlib rejects
        ),
        clean=True,
    ),
    "encoded-word-filenames": Quirk(
        body="Logo:",
        files=(
            ("Logö.png", 'image/png; name="=?utf-8?B?TG9nw7YucG5n?="', 12),
            (
                "Angebot für Müller.pdf",
                'application/pdf; name="=?iso-8859-1?Q?Angebot_f=FCr_M=FCller.pdf?="',
                13,
            ),
            ("Überweisung.xlsx", "application/octet-stream", 4),
        ),
    ),
    # --- broken MIME ----------------------------------------------------------------------------
    "missing-boundary": Quirk(
        body="The text of a mail whose multipart has no boundary.\n",
        warnings=(
            "MIME defect: NoBoundaryInMultipartDefect",
            "multipart without a usable boundary read as text",
        ),
    ),
    "missing-boundary-parts": Quirk(
        body="The text part, found anyway.",
        files=(("data.csv", 'text/csv; name="data.csv"', 7),),
        warnings=("multipart boundary not found, '=_part_1' from the body used",),
    ),
    "wrong-boundary": Quirk(
        body="Words under a boundary never declared.",
        warnings=(
            "MIME defect: StartBoundaryNotFoundDefect",
            "multipart boundary not found, 'actual' from the body used",
        ),
    ),
    "truncated-base64": Quirk(
        body="Log attached.",
        files=(("server.log", 'text/plain; charset=utf-8; name="server.log"', 150),),
        warnings=(
            "MIME defect: CloseBoundaryNotFoundDefect",
            "base64 payload truncated, 150 bytes decoded",
        ),
    ),
    "bad-quoted-printable": Quirk(
        body="Grüße =ZZ and 100=% sure, softbreak, lower ä case\n",
        warnings=("bad quoted-printable sequences kept as written",),
    ),
    "nul-bytes": Quirk(
        subject="NUL in subject",
        body="Beforeafter the NUL.\n",
        warnings=("NUL characters removed from header Subject", "NUL characters removed from text"),
    ),
    # --- header blocks --------------------------------------------------------------------------
    "8bit-header-utf8": Quirk(
        subject="Grüße aus Köln", from_="Jürgen Weiß <juergen@example.org>", clean=True
    ),
    "8bit-header-latin1": Quirk(
        subject="Résumé für Sie",
        from_="François Müller <francois@example.org>",
        body="Chère cliente\n",
        warnings=(
            "8-bit header From read as iso8859-1, the charset of the body",
            "8-bit header Subject read as iso8859-1, the charset of the body",
        ),
    ),
    "duplicate-headers": Quirk(
        subject="the first subject",
        from_="First <first@example.org>",
        to="one@example.com, two@example.com",
        cc="c1@example.com, c2@example.com",
        message_id="<dup-1@example.org>",
        warnings=(
            "2 Subject headers, the first kept",
            "2 From headers, the first kept",
            "2 Date headers, the first kept",
            "2 Message-ID headers, the first kept",
            "2 To headers, joined",
            "2 Cc headers, joined",
        ),
    ),
    "malformed-addresses": Quirk(
        from_="Jörg Müller <joerg@example.org>",
        to=(
            '"Smith, John" <john@example.com>, broken@, <not an address>, joe@@example.com, '
            "Renée <renee@example.net>"
        ),
        cc="undisclosed-recipients:;",
        addresses=("john@example.com", "renee@example.net", "reply@example.org"),
        extra={"Reply-To": "Missing Bracket <reply@example.org"},
        clean=True,
    ),
    "missing-message-id": Quirk(
        body="body\n",
        message_id="<2134c20175328ff28a01a5c722b082a3@pytrs.invalid>",
        warnings=("Message-ID missing, derived from the raw bytes",),
    ),
    "missing-date": Quirk(subject="no date", dated=False, warnings=("Date missing",)),
    "bad-date": Quirk(
        subject="bad date",
        dated=False,
        warnings=("Date unparsable",),
        extra={"Date": "Tuesday, the 3rd of March, around noon"},
    ),
    "long-date": Quirk(  # REFERENCE Part B #9: a long Date must not fail the mail.
        subject="200-char date", body="The date comment is 200 characters long.\n", clean=True
    ),
    "no-headers": Quirk(
        subject="",
        from_="",
        body="Hello, this mail has no header block at all.\nJust two lines.\n",
        dated=False,
        warnings=("Message-ID missing, derived from the raw bytes", "Date missing"),
    ),
    "only-headers": Quirk(subject="only headers", from_="sender@example.org", body="", clean=True),
    "cr-line-ends": Quirk(
        subject="CR only",
        message_id="<cr-line-ends@example.org>",
        body="first line\nsecond line\n",
        clean=True,
    ),
    "mixed-line-ends": Quirk(
        subject="mixed",
        from_="sender@example.org",
        message_id="<mixed-line-ends@example.org>",
        body="one\ntwo\nthree\nfour\n",
        clean=True,
    ),
    # --- nested messages ------------------------------------------------------------------------
    "nested-rfc822-charset": Quirk(
        body="See the forwarded mail.",
        files=(("Zażółć gęślą jaźń.eml", "message/rfc822", 327),),
        clean=True,
    ),
    "nested-rfc822-base64": Quirk(
        body="Forwarded as an encoded attachment.",
        files=(("Пересланное письмо.eml", "message/rfc822", 207),),
        warnings=("nested message in base64 decoded",),
    ),
}


def load(name: str) -> ParsedMail:
    return parse_mail((DATA / f"q-{name}.eml").read_bytes())


def test_every_quirk_file_has_expectations() -> None:
    files = {path.name[2:-4] for path in DATA.glob("q-*.eml")}
    assert files == set(QUIRKS)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_quirk(name: str) -> None:
    raw = (DATA / f"q-{name}.eml").read_bytes()
    mail, quirk = parse_mail(raw), QUIRKS[name]
    assert mail.raw == raw
    if quirk.subject is not None:
        assert mail.subject == quirk.subject
    if quirk.body is not None:
        assert mail.body == quirk.body
    if quirk.from_ is not None:
        assert mail.from_ == quirk.from_
    if quirk.to is not None:
        assert mail.to == quirk.to
    if quirk.cc is not None:
        assert mail.cc == quirk.cc
    if quirk.addresses is not None:
        assert mail.addresses("To", "Cc", "Reply-To") == quirk.addresses
    expected_id = quirk.message_id or f"<{name}@example.org>"
    if name != "no-headers":
        assert mail.message_id == expected_id
    assert (mail.date is not None) == quirk.dated
    assert [(a.filename, a.content_type, len(a.content)) for a in mail.attachments] == list(
        quirk.files
    )
    for header, value in quirk.extra.items():
        assert mail.header(header) == value
    for warning in quirk.warnings:
        assert warning in mail.warnings
    if quirk.clean:
        assert mail.warnings == ()


# --- what the quirk files hold beyond the record ---------------------------------------------


def test_nested_message_text_decodes_in_its_own_charset() -> None:
    (nested,) = load("nested-rfc822-charset").attachments
    inner = parse_mail(nested.content)
    assert (inner.subject, inner.from_, inner.body) == (
        "Zażółć gęślą jaźń",
        "Paweł <pawel@example.pl>",
        "Proszę o pilną odpowiedź.\n",
    )
    assert inner.message_id == "<inner@example.pl>"


def test_base64_nested_message_is_decoded_before_it_is_stored() -> None:
    (nested,) = load("nested-rfc822-base64").attachments
    inner = parse_mail(nested.content)
    assert (inner.subject, inner.body) == ("Пересланное письмо", "Текст вложенного письма.\n")


def test_inline_image_keeps_its_content_id() -> None:
    logo = load("encoded-word-filenames").attachments[0]
    assert (logo.content_id, logo.disposition, logo.content[:4]) == (
        "<logo@example.org>",
        "inline",
        b"\x89PNG",
    )


def test_truncated_base64_keeps_every_whole_byte() -> None:
    (log,) = load("truncated-base64").attachments
    assert ("line of a log file with ümlauts\n" * 8).encode().startswith(log.content)


def test_derived_message_id_is_stable() -> None:
    assert load("missing-message-id").message_id == load("missing-message-id").message_id


# --- generated quirks: too large for files -----------------------------------------------------


def nested(depth: int) -> bytes:
    entity = b"Content-Type: text/plain\n\ndeepest text\n"
    for level in range(depth):
        boundary = b"b%d" % level
        entity = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\n\n--' + boundary
            + b"\n" + entity + b"\n--" + boundary + b"--\n"
        )  # fmt: skip
    return b"Subject: deep\nMessage-ID: <deep@example.org>\n" + entity


def test_absurdly_long_header_is_bounded() -> None:
    raw = b"Subject: " + b"long " * 200_000 + b"\nX-After: kept\nMessage-ID: <x@y>\n\nbody\n"
    mail = parse_mail(raw)
    assert len(raw) > 1_000_000
    assert len(mail.subject) == 64 * 1024
    assert mail.header("X-After") == "kept"
    assert mail.body == "body\n"
    assert "header Subject longer than 262144 bytes, cut" in mail.warnings
    assert "header Subject cut to 64 KiB" in mail.warnings


def test_header_limit_comes_from_the_limits() -> None:
    raw = b"Subject: " + b"x" * 5000 + b"\nMessage-ID: <x@y>\n\nbody\n"
    mail = parse_mail(raw, ParseLimits(max_header_bytes=1000))
    assert mail.subject == "x" * 1000  # The value is bounded; the name is not counted.
    assert "header Subject longer than 1000 bytes, cut" in mail.warnings


def test_deep_nesting_is_bounded_by_the_limits() -> None:
    raw = nested(30)
    assert parse_mail(raw).body == "deepest text\n"
    shallow = parse_mail(raw, ParseLimits(max_depth=10))
    assert (shallow.subject, shallow.body) == ("deep", "")
    assert "MIME nesting deeper than 10, the rest skipped" in shallow.warnings
    assert shallow.raw == raw


def test_part_count_is_bounded_by_the_limits() -> None:
    part = b"--B\nContent-Type: application/octet-stream\n\nx\n"
    raw = b'Content-Type: multipart/mixed; boundary="B"\n\n' + part * 50 + b"--B--\n"
    mail = parse_mail(raw, ParseLimits(max_parts=11))
    assert len(mail.attachments) == 10
    assert "more than 11 MIME parts, the rest skipped" in mail.warnings


def test_oversized_mail_is_read_for_its_headers_only() -> None:
    raw = (DATA / "q-encoded-word-filenames.eml").read_bytes()
    mail = parse_mail(raw, ParseLimits(max_message_bytes=len(raw) - 1))
    assert mail.raw is raw
    assert (mail.subject, mail.message_id) == (
        "encoded words",
        "<encoded-word-filenames@example.org>",
    )
    assert (mail.body, mail.html, mail.attachments) == ("", None, ())
    assert mail.warnings[0] == (
        f"message larger than {len(raw) - 1} bytes: headers only, body and attachments skipped"
    )
    assert parse_mail(raw, ParseLimits(max_message_bytes=len(raw))).attachments


def test_oversized_mail_without_a_header_end() -> None:
    raw = b"Subject: no end\nX-Filler: " + b"y" * 5000
    mail = parse_mail(raw, ParseLimits(max_message_bytes=100))
    assert mail.subject == "no end"
    assert mail.raw is raw


def test_nested_message_text_is_searchable() -> None:
    from pathlib import Path

    from pytrs.parsers import parse_mail

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "znuny"
    if not shared.is_dir():
        pytest.skip("../shared is not present")
    mail = parse_mail((shared / "PostMaster" / "PostMaster-Test10.box").read_bytes())
    [original] = [a for a in mail.attachments if a.content_type.startswith("message/rfc822")]
    assert original.text.startswith("Subject: [Ticket#2007070610001801] test mail\n")
    assert "From: Skywalker <skywalker@znuny.org>" in original.text
    # A nested message is read one level deep: its own record has no derived extras.
    inner = parse_mail(original.content, nested=True)
    assert inner.safe_html is None and inner.bounce is None
