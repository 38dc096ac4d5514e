"""Znuny's PostMaster/EmailParser sample mails (GPL-3.0 fixtures kept outside the repository).

Every sample must parse; where /work/shared/corpus/znuny/INDEX.md records upstream expectations,
they are asserted here (with pytrs's documented deviations: the body part is not an attachment,
a non-text single-part mail yields an attachment instead of a body).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pytrs.parsers import ParsedMail, parse_mail

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "znuny"
PDF_MD5 = "5ee767f3b68f24a9213e0bef82dc53e5"
ISO_TXT_MD5 = "0596f2939525c6bd50fc2b649e40fbb6"
UTF8_TXT_MD5 = "bb29962e132ba159539f1e88b41663b1"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def _samples() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        str(path.relative_to(CORPUS))
        for path in CORPUS.rglob("*")
        if path.is_file() and path.suffix in {".box", ".eml"}
    )


def parse(name: str) -> ParsedMail:
    return parse_mail((CORPUS / name).read_bytes())


def md5(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.md5(raw).hexdigest()


def files(mail: ParsedMail) -> list[tuple[str, str]]:
    return [(a.filename, md5(a.content)) for a in mail.attachments]


def test_corpus_is_present() -> None:
    assert len(_samples()) >= 35


@pytest.mark.parametrize("name", _samples())
def test_every_sample_parses(name: str) -> None:
    mail = parse(name)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert mail.content_type.startswith("text/plain; charset=utf-8")
    for header, value in mail.headers:
        assert "\n" not in value and "\r" not in value, header
    assert parse(name) == mail  # Deterministic.


def test_test3_utf8_subject_and_rfc2231_inline_file() -> None:
    mail = parse("PostMaster/PostMaster-Test3.box")
    assert mail.subject == "UTF-8 Test äöü 顧客コンタクト管理"
    assert mail.body.startswith("UTF-8 Test äöü 顧客コンタクト管理\n")
    (attachment,) = mail.attachments
    assert attachment.filename == "utf-8-file-äöüß-カスタマ.txt"
    assert md5(attachment.content) == "4e78ae6bffb120669f50bca56965f552"
    assert attachment.disposition == "inline"


@pytest.mark.parametrize("folder", ["PostMaster", "EmailParser"])
def test_test5_latin1_mail(folder: str) -> None:
    mail = parse(f"{folder}/PostMaster-Test5.box")
    assert mail.subject == "2nd try: Again some stuff hübsches züm tästen]"
    assert mail.body.startswith("Schönen güten Tag,")
    assert files(mail) == [
        ("test-attachment-äöüß-iso-8859-1.txt", ISO_TXT_MD5),
        ("test-attachment-äöüß-utf-8.txt", UTF8_TXT_MD5),
        ("test-attachment-äöüß.pdf", PDF_MD5),
    ]
    assert not any(a.content_alternative for a in mail.attachments)


def test_test6_utf8_quoted_filenames_and_body() -> None:
    mail = parse("EmailParser/PostMaster-Test6.box")
    assert mail.subject == "Und hier das UTF-8 Mail   ÜÄÖ"
    assert md5(mail.body) == "2ac290235a8cad953a1837c77701c5dc"
    assert files(mail) == [
        ("test-attachment-äöüß.pdf", PDF_MD5),
        ("test-attachment-äöüß-utf-8.txt", UTF8_TXT_MD5),
        ("test-attachment-äöüß-iso-8859-1.txt", ISO_TXT_MD5),
    ]


@pytest.mark.parametrize("folder", ["PostMaster", "EmailParser"])
def test_test7_iso_subject_and_quoted_filenames(folder: str) -> None:
    mail = parse(f"{folder}/PostMaster-Test7.box")
    # The Q word has two underscores ("ISO__=DC"), so RFC 2047 gives two spaces; INDEX.md
    # quotes the subject with whitespace collapsed.
    assert mail.subject == "The Testmail in ISO  ÜÄÖ"
    assert " ".join(mail.subject.split()) == "The Testmail in ISO ÜÄÖ"
    assert files(mail) == [
        ("test-attachment-äöüß.pdf", PDF_MD5),
        ("test-attachment-äöüß-utf-8.txt", UTF8_TXT_MD5),
        ("test-attachment-äöüß-iso-8859-1.txt", ISO_TXT_MD5),
    ]


def test_test7_utf8_inside_latin1_text_is_repaired() -> None:
    mail = parse("PostMaster/PostMaster-Test7.box")
    assert "Marienstraße 18" in mail.body
    assert any("C1 bytes" in warning for warning in mail.warnings)


def test_test8_single_part_pdf_is_an_attachment_not_the_body() -> None:
    mail = parse("EmailParser/PostMaster-Test8.box")
    assert mail.body == ""
    assert files(mail) == [("IMAGE000.PDF", PDF_MD5)]
    assert mail.from_address == '"#fax#*49000783135#"@znuny.fax'


def test_test9_pdf_only_multipart_and_bare_message_id() -> None:
    mail = parse("EmailParser/PostMaster-Test9.box")
    assert mail.body == ""
    assert files(mail) == [("Bestellung RevOpt_Workshop_20070323.PDF", PDF_MD5)]
    assert mail.message_id == "<000000B9>"
    assert "Message-ID without angle brackets" in mail.warnings


def test_emailparser_test10_bounce_body_and_parts() -> None:
    mail = parse("EmailParser/PostMaster-Test10.box")
    assert mail.subject == ""
    assert md5(mail.body) == "7ddc731e5a3e76cd27d4b1e0628468b1"
    types = [a.content_type.split(";")[0] for a in mail.attachments]
    assert types == ["message/delivery-status", "message/rfc822"]
    assert b"Status: 5.0.0" in mail.attachments[0].content


def test_postmaster_test10_bounce_keeps_the_original_as_one_attachment() -> None:
    mail = parse("PostMaster/PostMaster-Test10.box")
    original = mail.attachments[-1]
    assert original.content_type == "message/rfc822"
    assert original.filename == "[Ticket#2007070610001801] test mail.eml"
    inner = parse_mail(original.content)
    assert inner.subject == "[Ticket#2007070610001801] test mail"
    assert inner.message_id == "<1183717051.586927.929001308.97809.36@znuny.otrs.org>"
    # The bounced copy's text is not taken for the bounce's own body.
    assert "Postfix program" in mail.body and "Ticket#" not in mail.body


def test_test19_duplicated_content_type() -> None:
    mail = parse("EmailParser/PostMaster-Test19.box")
    assert mail.subject == "test 1"
    assert mail.body.startswith("This is the first test.")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PostMaster-Test21.box", "Евгений Васильев Новоподзалупинский <xxzzyy@gmail.com>"),
        ("PostMaster-Test22.box", "QBQB Евгений Васильев Новоподзалупинский <xxzzyy@gmail.com>"),
    ],
)
def test_multiline_mixed_q_and_b_words(name: str, expected: str) -> None:
    mail = parse(f"EmailParser/{name}")
    assert mail.subject == expected
    assert mail.to == expected
    assert mail.addresses("To") == ("xxzzyy@gmail.com",)


def test_postmaster_test21_long_subject_kept_whole() -> None:
    mail = parse("PostMaster/PostMaster-Test21.box")
    assert len(mail.subject) > 255


def test_nested_message_is_one_attachment_named_after_its_subject() -> None:
    mail = parse("EmailParser/NestedMessage-Test1.box")
    assert "[Ticket#2007060642000226]" in mail.body
    assert mail.html is not None
    (nested,) = mail.attachments
    assert nested.filename == (
        "[Presse-Greenpeace] Morgen wird Greenpeace-Einspruch gegenEmbryonen-Patent verhandelt"
        " - NeueDokumentation ueber Patente auf Leben.eml"
    )
    assert nested.content_type == "message/rfc822"
    assert parse_mail(nested.content).header("List-Help").startswith("<mailto:presse-ger")


def test_multipart_mixed_plain_takes_the_first_text_part() -> None:
    mail = parse("EmailParser/MultipartMixedPlain.eml")
    assert mail.from_ == "" and mail.from_address == ""
    assert mail.body.startswith("first part")
    one_txt = next(a for a in mail.attachments if a.filename == "1.txt")
    assert one_txt.content == b"1\n"
    assert one_txt.disposition == "attachment"


def test_multipart_mixed_html_alternative_flags() -> None:
    mail = parse("EmailParser/MultipartMixedHTML.eml")
    assert mail.body.startswith("first part")
    assert mail.html is not None and "<html" in mail.html.lower()
    assert mail.attachments and all(a.content_alternative for a in mail.attachments)
    assert "1.txt" in [a.filename for a in mail.attachments]


@pytest.mark.parametrize(
    ("name", "toolbar_disposition", "pdf_cid", "image_disposition"),
    [
        ("Disposition1.box", "attachment", "", "inline"),
        ("Disposition2.box", "inline", "", "inline"),
        ("Disposition3.box", "inline", "<part1.02040705.0001234@znuny.com>", "inline"),
        ("Disposition4.box", "attachment", "", "attachment"),
    ],
)
def test_content_disposition_and_ids(
    name: str, toolbar_disposition: str, pdf_cid: str, image_disposition: str
) -> None:
    mail = parse(f"PostMaster/{name}")
    by_name = {a.filename: a for a in mail.attachments}
    assert list(by_name) == ["ceeibejd.png", "ui-toolbar.png", "testing.pdf"]
    image = by_name["ceeibejd.png"]
    assert image.content_type == 'image/png; name="ceeibejd.png"'
    assert image.content_id == "<part1.02040705.00020608@znuny.com>"
    assert image.content_alternative is True
    assert image.disposition == image_disposition
    assert image.content.startswith(b"\x89PNG")
    toolbar = by_name["ui-toolbar.png"]
    assert (toolbar.content_id, toolbar.content_alternative) == ("", False)
    assert toolbar.disposition == toolbar_disposition
    pdf = by_name["testing.pdf"]
    assert pdf.content_type == 'application/pdf; name="testing.pdf"'
    assert (pdf.disposition, pdf.content_id) == ("attachment", pdf_cid)
    assert mail.html is not None and "cid:part1.02040705.00020608@znuny.com" in mail.html


def test_inline_image_with_bare_content_id() -> None:
    mail = parse("PostMaster/InlineImage1.box")
    (image,) = mail.attachments
    assert (image.filename, image.content_id) == ("test.png", "image1@test.com")
    assert image.disposition == "attachment"
    assert image.content_alternative is True
    assert mail.html is not None and "cid:image1@test.com" in mail.html


def test_long_content_type_attachment() -> None:
    mail = parse("PostMaster/LongContentTypeAttachment.box")
    (pdf,) = mail.attachments
    # Znuny stores the name with "_" for spaces; the parser returns the decoded name.
    assert pdf.filename.replace(" ", "_") == (
        "Графік_планового_технічного_обслуговування_серверного_обладнання_на_четвертий_квартал.pdf"
    )
    assert pdf.content == b"Znuny unit test attachment"
    assert len(pdf.content_type) > 450
    assert pdf.content_type.startswith('application/pdf; name="=?UTF-8?Q?')
    assert "\n" not in pdf.content_type


def test_signed_mail_with_inline_pdf_before_the_text() -> None:
    mail = parse("PostMaster/PostMaster-Test26.box")
    assert mail.body.startswith("blasdfjasaösdfj")
    assert files(mail)[0] == ("StdAttachment-Test1.pdf", PDF_MD5)
    assert mail.attachments[0].disposition == "inline"
    assert [a.filename for a in mail.attachments] == ["StdAttachment-Test1.pdf", "signature.asc"]


def test_test27_single_part_xml_attachment() -> None:
    mail = parse("PostMaster/PostMaster-Test27.box")
    assert mail.body == ""
    (xml,) = mail.attachments
    assert xml.filename == "Test-123-456-789"
    assert xml.content_type.startswith("application/xml")
    assert xml.disposition == "attachment"


def test_dsn_without_original() -> None:
    mail = parse("PostMaster/Issue24.eml")
    assert mail.subject == "Undelivered Mail Returned to Sender"
    assert [a.content_type for a in mail.attachments] == ["message/delivery-status"]


def test_mbox_from_line_and_owner_header() -> None:
    mail = parse("PostMaster/PostMaster-Test-ResponsibleID.box")
    assert mail.header("X-OTRS-ResponsibleID") == "1"
    assert mail.from_address == "skywalker@znuny.org"
    assert mail.addresses("To") == ("darthvader@znuny.org",)


def test_exchange_crlf_mails() -> None:
    plain = parse("ProcessManagement/ArticleTagReplace/Plain.eml")
    assert "\r" not in plain.body and plain.body.startswith("Mit freundlichem HACK")
    html = parse("ProcessManagement/ArticleTagReplace/HTML.eml")
    assert html.html is not None and "MsoNormal" in html.html
    assert html.body == "Mit freundlichem HACK"
