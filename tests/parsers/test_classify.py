"""`classify`: bounces, auto-replies, out-of-office, lists and the loop flag.

One `.eml` per quirk under tests/data/parsers (dsn-*, oof-*, autoreply-*, list-*) with the
expected classification, negatives that must stay unflagged, REFERENCE §1.3 rule by rule, Znuny's
Postfix sample, and property tests: `classify` never raises and stays linear on hostile input.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytrs.parsers import Attachment, ParsedMail, parse_mail
from pytrs.parsers import classify as classify_module
from pytrs.parsers.autoreply import _OOF_PREFIXES, oof_prefix
from pytrs.parsers.classify import NOTHING, Classification, classify
from pytrs.parsers.textscan import normalised

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ZNUNY = SHARED / "corpus" / "znuny"

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,  # No .hypothesis/ folder in the repository.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def classified(name: str) -> Classification:
    return classify(parse_mail((DATA / name).read_bytes()))


def mail(head: str, body: str = "Hello.\n") -> Classification:
    """Classify a small mail given as header lines (a From and To are added when missing)."""
    if "from:" not in head.lower():
        head = "From: Anna Berg <anna@example.org>\n" + head
    if "\nto:" not in "\n" + head.lower():
        head += "\nTo: support@example.com"
    return classify(parse_mail(f"{head.strip()}\n\n{body}".encode()))


# --- Bounces ---------------------------------------------------------------------------------

# file: (recipient, status, permanent, original Message-ID, format)
DSNS = {
    "dsn-postfix.eml": (
        "nobody@example.org", "5.1.1", True,
        "<20260302093014.1234.5678@helpdesk.example.com>", "rfc3464",
    ),
    "dsn-exim.eml": (
        "frank@example.org", "5.1.1", True, "<exim-original-0001@helpdesk.example.com>",
        "rfc3464",
    ),
    "dsn-sendmail.eml": (
        "eve@example.org", "5.1.1", True, "<sendmail-original.42@helpdesk.example.com>",
        "rfc3464",
    ),
    "dsn-office365.eml": (
        "grace@example.org", "5.1.10", True, "<AM0PR01MB99.quote-2026-17@example.com>",
        "rfc3464",
    ),
    "dsn-gmail.eml": (
        "ivan@example.org", "5.1.1", True, "<CAG7x9Q+Zk3wq1MqN0w8vYt2f1hG@mail.gmail.com>",
        "rfc3464",
    ),
    "dsn-postfix-delayed.eml": (
        "nina@example.org", "4.4.1", False, "<delayed-original.3@helpdesk.example.com>",
        "rfc3464",
    ),
    "dsn-rfc822-headers.eml": (
        "purchasing@example.net", "5.3.4", True, "<headers-only-original.8@helpdesk.example.com>",
        "rfc3464",
    ),
    "dsn-exchange-plain.eml": (
        "heidi.huber@corp.example.net", "5.1.1", True,
        "<ticket-2026030310000041.17@helpdesk.example.com>", "exchange",
    ),
    "dsn-qmail.eml": (
        "judy@example.net", "5.1.1", True, "<qmail-original.7781@helpdesk.example.com>", "qmail",
    ),
    "dsn-exim-plain.eml": (
        "mallory@example.org", "5.1.1", True, "<exim-plain-original.99@helpdesk.example.com>",
        "exim",
    ),
    "dsn-exim-delay.eml": (
        "olga@example.org", "4.3.0", False, "<delay-original.11@helpdesk.example.com>", "exim",
    ),
    "dsn-yahoo.eml": (
        "kim.lee@example.org", "5.0.0", True, "<yahoo-original.5@helpdesk.example.com>", "yahoo",
    ),
    "dsn-sendmail-plain.eml": (
        # A bare 550 gives the class; "User unknown" next to it says 5.1.1 (bounce_reasons).
        "oscar@example.org", "5.1.1", True, "<sendmail-plain-original.1@helpdesk.example.com>",
        "sendmail",
    ),
}  # fmt: skip


def test_every_dsn_file_has_an_expectation() -> None:
    assert sorted(path.name for path in DATA.glob("dsn-*.eml")) == sorted(DSNS)


@pytest.mark.parametrize("name", sorted(DSNS))
def test_bounce(name: str) -> None:
    recipient, status, permanent, original, fmt = DSNS[name]
    result = classified(name)
    bounce = result.bounce
    assert bounce is not None
    assert (bounce.recipient, bounce.status, bounce.permanent) == (recipient, status, permanent)
    assert (bounce.original_message_id, bounce.format) == (original, fmt)
    assert bounce.diagnostic and "\n" not in bounce.diagnostic and len(bounce.diagnostic) <= 500
    assert bounce.reporting_mta and bounce.reporting_mta == bounce.reporting_mta.lower()
    # Bounces are not auto-replies, even those marked "Auto-Submitted: auto-replied", but they
    # always carry the loop flag (Znuny's bounce filter sets X-OTRS-Loop).
    assert (result.is_auto_reply, result.is_out_of_office, result.is_list) == (False,) * 3
    assert result.loop


@pytest.mark.parametrize(
    ("name", "reporting_mta", "diagnostic_start"),
    [
        ("dsn-postfix.eml", "mail.example.com", "550 5.1.1 <nobody@example.org>: Recipient"),
        ("dsn-office365.eml", "am0pr01mb1234.eurprd01.prod.exchangelabs.com", "550 5.1.10 "),
        ("dsn-qmail.eml", "mx.example.net", "Sorry, no mailbox here by that name. (#5.1.1)"),
        ("dsn-exchange-plain.eml", "exch01.corp.example.net", "#550 5.1.1 RESOLVER.ADR"),
        ("dsn-yahoo.eml", "mta1012.mail.example.net", "554: delivery error: dd This user"),
        ("dsn-exim-delay.eml", "mx1.example.net", "451 4.3.0 Temporary lookup failure"),
    ],
)
def test_bounce_reporter_and_diagnostic(
    name: str, reporting_mta: str, diagnostic_start: str
) -> None:
    bounce = classified(name).bounce
    assert bounce is not None
    assert bounce.reporting_mta == reporting_mta
    assert bounce.diagnostic.startswith(diagnostic_start)


def test_x_class_status_refined_from_the_diagnostic() -> None:
    # Exim writes "Status: 5.0.0" next to "Diagnostic-Code: smtp; 550 5.1.1 …".
    bounce = classified("dsn-exim.eml").bounce
    assert bounce is not None and bounce.status == "5.1.1"


def test_original_recipient_preferred_to_final_recipient() -> None:
    # The alias the sender used is the address to suppress, not where the alias pointed.
    bounce = classified("dsn-rfc822-headers.eml").bounce
    assert bounce is not None and bounce.recipient == "purchasing@example.net"


@pytest.mark.skipif(not ZNUNY.is_dir(), reason=f"shared corpus not found at {ZNUNY}")
def test_znuny_postfix_sample_is_a_permanent_bounce() -> None:
    raw = (ZNUNY / "PostMaster" / "PostMaster-Test10.box").read_bytes()
    parsed = parse_mail(raw)
    # The ticket number sits only in the bounced copy, which must stay an attachment.
    assert any("[Ticket#2007070610001801] test mail" in a.filename for a in parsed.attachments)
    result = classify(parsed)
    assert result.bounce is not None
    assert result.bounce.permanent and result.bounce.status == "5.0.0"
    assert result.bounce.recipient == "asdfasdfasdfasd@example.com"
    assert result.bounce.original_message_id == (
        "<1183717051.586927.929001308.97809.36@znuny.otrs.org>"
    )
    assert result.bounce.format == "rfc3464" and result.loop


@pytest.mark.skipif(not ZNUNY.is_dir(), reason=f"shared corpus not found at {ZNUNY}")
def test_znuny_report_without_action_or_status() -> None:
    # Issue24 crashed Znuny's bounce detection: a report with a recipient and nothing else.
    result = classify(parse_mail((ZNUNY / "PostMaster" / "Issue24.eml").read_bytes()))
    assert result.bounce is not None
    assert result.bounce.recipient == "md@example.com"
    assert (result.bounce.status, result.bounce.permanent) == ("", False)
    assert result.bounce.original_message_id == ""


@pytest.mark.skipif(not ZNUNY.is_dir(), reason=f"shared corpus not found at {ZNUNY}")
def test_no_other_znuny_sample_is_a_bounce() -> None:
    bounces = {"PostMaster-Test10.box", "Issue24.eml"}
    for path in sorted(ZNUNY.rglob("*")):
        if path.suffix in (".box", ".eml") and path.name not in bounces:
            assert classify(parse_mail(path.read_bytes())).bounce is None, path.name


def test_localised_exchange_subject_from_postmaster() -> None:
    result = mail(
        "From: postmaster@corp.example.net\nSubject: Unzustellbar: Angebot\n"
        "In-Reply-To: <angebot-1@helpdesk.example.com>",
        "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\n\n"
        "bernd@example.org\n"
        "Remote Server returned '550 5.1.1 User unknown'\n",
    )
    assert result.bounce is not None
    assert (result.bounce.format, result.bounce.recipient) == ("exchange", "bernd@example.org")
    assert result.bounce.original_message_id == "<angebot-1@helpdesk.example.com>"


def test_smtp_code_alone_maps_to_its_class() -> None:
    result = mail(
        "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice",
        "Hi. This is the qmail-send program at mx.example.net.\n\n<lee@example.org>:\n"
        "Remote host said: 452 too busy, try later\n",
    )
    assert result.bounce is not None
    assert (result.bounce.status, result.bounce.permanent) == ("4.0.0", False)


def test_report_with_unreadable_status_part_falls_back_to_its_text() -> None:
    raw = (DATA / "dsn-postfix.eml").read_bytes()
    broken = raw.replace(b"Final-Recipient: rfc822; nobody@example.org\n", b"")
    broken = broken.replace(b"Original-Recipient: rfc822;nobody@example.org\n", b"")
    bounce = classify(parse_mail(broken)).bounce
    assert bounce is not None
    assert (bounce.recipient, bounce.status, bounce.format) == (
        "nobody@example.org", "5.1.1", "rfc3464",
    )  # fmt: skip


def test_successful_delivery_report_is_not_a_bounce() -> None:
    raw = (DATA / "dsn-postfix.eml").read_bytes()
    delivered = raw.replace(b"Action: failed\nStatus: 5.1.1", b"Action: delivered\nStatus: 2.0.0")
    delivered = delivered.replace(b"Subject: Undelivered Mail Returned to Sender", b"Subject: OK")
    result = classify(parse_mail(delivered))
    assert result.bounce is None
    assert result.is_auto_reply  # still machine-written: never answer it


def test_read_receipt_is_automatic_not_a_bounce() -> None:
    result = mail(
        "From: Anna Berg <anna@example.org>\nSubject: Read: Your offer\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"',
        "--b\nContent-Type: text/plain\n\nYour message was read.\n--b\n"
        "Content-Type: message/disposition-notification\n\n"
        "Final-Recipient: rfc822; anna@example.org\nDisposition: manual-action/MDN-sent-manually;"
        " displayed\n--b--\n",
    )
    assert result.bounce is None and result.is_auto_reply and not result.is_out_of_office


# --- Negatives: what must never be taken for a bounce ---------------------------------------

POSTFIX_TEXT = (
    "This is the mail system at host mail.example.com.\n\nI'm sorry to have to inform you that"
    " your message could not\nbe delivered to one or more recipients.\n\n<nobody@example.org>:"
    " host mx1.example.org said: 550 5.1.1\n    User unknown (in reply to RCPT TO command)\n"
)


@pytest.mark.parametrize(
    ("head", "body"),
    [
        # A person asking what the bounce means, quoting it.
        ("Subject: Re: Undelivered Mail Returned to Sender", "> " + POSTFIX_TEXT),
        # The same without a reply prefix: the sender is a person, not a mail system.
        ("Subject: Undelivered Mail Returned to Sender", POSTFIX_TEXT),
        ("Subject: Mail delivery failed - what now?", "I keep getting 550 5.1.1 errors."),
        # A mail system's reply to a bounce thread is still a reply.
        ("From: postmaster@example.net\nSubject: Re: Undelivered Mail Returned to Sender",
         POSTFIX_TEXT),
        # Postmaster mail that is not a failure report.
        ("From: postmaster@example.net\nSubject: Your mailbox is almost full",
         "You use 95% of your 2 GB quota."),
    ],
)  # fmt: skip
def test_human_mail_quoting_a_bounce_is_not_a_bounce(head: str, body: str) -> None:
    assert mail(head, body).bounce is None


def test_forwarded_bounce_attachment_is_not_a_bounce() -> None:
    dsn = (DATA / "dsn-postfix.eml").read_text()
    result = mail(
        "Subject: Fwd: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="outer"',
        "--outer\nContent-Type: text/plain\n\nSee below, what is wrong?\n--outer\n"
        f"Content-Type: message/rfc822\n\n{dsn}\n--outer--\n",
    )
    assert result == NOTHING


def test_delivery_status_file_from_a_person_is_not_a_bounce() -> None:
    result = mail(
        'Subject: logs\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nAttached.\n--b\nContent-Type: message/delivery-status"
        "\n\nReporting-MTA: dns; x.example.org\n\nFinal-Recipient: rfc822; a@example.org\n"
        "Action: failed\nStatus: 5.1.1\n--b--\n",
    )
    assert result.bounce is None


def test_out_of_office_quoting_a_delivery_failure_is_not_a_bounce() -> None:
    result = mail(
        "From: Mail Delivery Team <postmaster@example.org>\n"
        "Subject: Automatic reply: Mail delivery failed: returning message to sender\n"
        "Auto-Submitted: auto-replied",
        "I am out of the office.\n\n> This message was created automatically by mail delivery"
        " software.\n> The following address(es) failed:\n>   x@example.net\n",
    )
    assert result.bounce is None
    assert result.is_auto_reply and result.is_out_of_office and result.loop


# --- Auto-replies, out-of-office, lists ------------------------------------------------------

# file: (is_auto_reply, is_out_of_office, is_list, loop)
AUTOMATIC = {
    "autoreply-rfc3834.eml": (True, False, False, True),
    "autoreply-precedence-bulk.eml": (True, False, False, True),
    "autoreply-precedence-junk.eml": (True, False, False, True),
    "autoreply-x-autoreply.eml": (True, False, False, False),
    "autoreply-x-autogenerated.eml": (True, False, False, False),
    "autoreply-x-auto-response-suppress.eml": (True, False, False, False),
    "oof-exchange-en.eml": (True, True, False, True),
    "oof-de-abwesenheitsnotiz.eml": (True, True, False, False),
    "oof-de-automatische-antwort.eml": (True, True, False, True),
    "oof-fr-reponse-automatique.eml": (True, True, False, True),
    "oof-fr-absence-sieve.eml": (True, True, False, True),
    "oof-es-respuesta-automatica.eml": (True, True, False, False),
    "oof-es-fuera-de-la-oficina.eml": (True, True, False, True),
    "oof-nl-afwezig.eml": (True, True, False, False),
    "oof-it-risposta-automatica.eml": (True, True, False, True),
    "oof-pt-resposta-automatica.eml": (True, True, False, True),
    "oof-sv-autosvar.eml": (True, True, False, False),
    "oof-gmail-vacation.eml": (True, True, False, True),
    "oof-ja-jidou-outou.eml": (True, True, False, True),
    "list-mailman.eml": (True, False, True, True),  # Precedence: list counts as automatic
    "list-ezmlm.eml": (True, False, True, True),
    "list-precedence-only.eml": (True, False, True, True),
    "list-newsletter.eml": (False, False, True, False),
    "list-x-mailing-list.eml": (False, False, True, True),  # X-Loop
}


def test_every_automatic_file_has_an_expectation() -> None:
    names = {p.name for pattern in ("oof-*", "autoreply-*", "list-*") for p in DATA.glob(pattern)}
    assert names == set(AUTOMATIC)


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_automatic_mail(name: str) -> None:
    result = classified(name)
    assert result.bounce is None
    flags = (result.is_auto_reply, result.is_out_of_office, result.is_list, result.loop)
    assert flags == AUTOMATIC[name]


@pytest.mark.parametrize(
    "head",
    [
        "Subject: Question about my invoice",
        # A person announcing an absence, and a person answering an out-of-office reply.
        "Subject: Out of office next week",
        "Subject: Re: Automatic reply: [Ticket#2026030210000139] Contract renewal",
        "Subject: Automatic replies in our helpdesk?\nAuto-Submitted: no",
        # X-MS-Has-Attach is on every Outlook mail, not a marker of anything automatic.
        "Subject: Offer\nX-MS-Has-Attach: yes\nX-MS-TNEF-Correlator:",
    ],
)
def test_ordinary_mail_is_not_flagged(head: str) -> None:
    assert mail(head) == NOTHING


def test_out_of_office_prefix_alone_is_enough() -> None:
    # Old Exchange and many clients add no header at all; §1.3's loop flag stays as Znuny has it.
    result = mail("Subject: Out of Office AutoReply: Invoice 17")
    assert (result.is_auto_reply, result.is_out_of_office, result.loop) == (True, True, False)


@pytest.mark.parametrize("prefix", _OOF_PREFIXES)
def test_out_of_office_prefix_found_is_the_first_of_the_table(prefix: str) -> None:
    # "out of office autoreply:" must win over the "out of office:" that follows it.
    subject = f"{prefix.upper()}  Im Urlaub"
    found = (known for known in _OOF_PREFIXES if normalised(subject).startswith(known))
    expected = next(found, "")  # upper-casing loses the dotless i of "yanıt"
    assert oof_prefix(subject) == expected
    assert oof_prefix(f"Re: {subject}") == ""


def test_away_words_need_an_automatic_marker_and_no_list() -> None:
    assert mail("Subject: Out of office\nX-Autoreply: yes").is_out_of_office
    assert not mail("Subject: Out of office\nPrecedence: list").is_out_of_office
    newsletter = mail(
        "Subject: Out of office? Take your helpdesk along\nPrecedence: bulk\n"
        "List-Unsubscribe: <https://news.example.net/u/1>"
    )
    assert newsletter.is_auto_reply and newsletter.is_list and not newsletter.is_out_of_office


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: <users.lists.example.org>",
        "List-Unsubscribe: <mailto:leave@lists.example.org>",
        "List-Post: <mailto:users@lists.example.org>",
        "Mailing-List: contact users-help@lists.example.org; run by ezmlm",
        "X-Mailing-List: <users@lists.example.org>",
        "Precedence: list",
    ],
)
def test_list_headers(header: str) -> None:
    assert mail(f"Subject: Hello list\n{header}").is_list


# --- The loop flag, REFERENCE §1.3 rule by rule ----------------------------------------------


@pytest.mark.parametrize(
    ("header", "loop"),
    [
        ("Mailing-List: contact dev-help@lists.example.org", True),
        ("Precedence: first-class", True),  # any value
        ("Precedence: bulk", True),
        ("X-Loop: yes", True),
        ("X-Loop: support@example.com", True),
        ("X-No-Loop: 1", True),
        ("X-OTRS-Loop: yes", True),
        ("X-OTRS-Loop: no", True),  # any value, even "no"
        ("X-OTRS-Loop: false", True),
        ("X-PyTRS-Loop: yes", True),
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: auto-generated", True),
        ("Auto-Submitted: auto-notified", True),
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: autoreply", False),  # must begin with "auto-"
        ("X-Loop:", False),  # present but empty
        ("Precedence:", False),
        ("List-Id: <users.lists.example.org>", False),  # a list, but not a loop header
        ("X-Autoreply: yes", False),
        ("X-Auto-Response-Suppress: All", False),
        ("X-MS-Exchange-Inbox-Rules-Loop: x@example.org", False),
    ],
)
def test_loop_rule(header: str, loop: bool) -> None:
    assert mail(f"Subject: Hello\n{header}").loop is loop


def test_loop_rule_sees_every_occurrence() -> None:
    assert mail("Subject: Hello\nX-Loop:\nX-Loop: yes").loop


def test_a_bounce_sets_the_loop_flag_without_any_header() -> None:
    result = classified("dsn-qmail.eml")
    assert result.bounce is not None and result.loop


# --- Robustness ------------------------------------------------------------------------------


def test_internal_error_yields_all_false(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_mail: ParsedMail) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(classify_module, "fields_of", broken)
    assert classified("dsn-postfix.eml") == NOTHING


def test_failing_bounce_detector_keeps_the_header_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(classify_module, "detect_bounce", broken)
    result = classified("oof-exchange-en.eml")
    assert (result.bounce, result.is_out_of_office, result.loop) == (None, True, True)


def _base() -> ParsedMail:
    return parse_mail((DATA / "dsn-postfix.eml").read_bytes())


@pytest.mark.parametrize(
    "body",
    [
        "<" * 2_000_000,
        "a" * 2_000_000,
        "a@" * 1_000_000,
        ".@" * 1_000_000,
        "5." * 1_000_000,
        "550-" * 500_000,
        "<a@b>\n" * 300_000,
        "Message-ID: <" * 150_000,
        " " * 2_000_000,
        "\n" * 2_000_000,
        "following address " * 100_000,
    ],
)
def test_hostile_body_is_linear(body: str) -> None:
    base = _base()
    content = body.encode()[:5_000_000]
    variants = [
        # The status and original parts full of it (the RFC 3464 path) …
        replace(base, body=body, attachments=tuple(replace(a, content=content) for a in
                                                   base.attachments)),
        # … a report without them (its text is read) …
        replace(base, body=body, attachments=()),
        # … and no report at all: the daemon sender and subject lead to the prose formats.
        replace(base, body=body, attachments=(),
                headers=tuple(h for h in base.headers if h[0].lower() != "content-type")),
    ]  # fmt: skip
    started = time.perf_counter()
    for variant in variants:
        assert classify(variant).bounce is not None
    assert time.perf_counter() - started < 2.0


def test_hostile_headers_are_linear() -> None:
    value = "auto-" + "(" * 60_000
    names = ("Auto-Submitted", "Precedence", "X-Failed-Recipients", "Content-Type", "To", "Subject")
    headers = tuple((name, value) for name in names * 200)
    hostile = replace(_base(), headers=headers, subject=value, from_=value)
    started = time.perf_counter()
    assert classify(hostile).loop
    assert time.perf_counter() - started < 2.0


HEADER_NAMES = st.sampled_from(
    [
        "Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress",
        "X-MS-Exchange-Inbox-Rules-Loop", "X-Autogenerated", "X-POST-MessageClass", "List-Id",
        "List-Unsubscribe", "Mailing-List", "X-Mailing-List", "X-Loop", "X-No-Loop",
        "X-OTRS-Loop", "X-PyTRS-Loop", "Content-Type", "From", "To", "X-Failed-Recipients",
        "Subject", "In-Reply-To",
    ]
)  # fmt: skip
CONTENT_TYPES = st.sampled_from(
    [
        "message/delivery-status", "message/global-delivery-status", "message/rfc822",
        "text/rfc822-headers", "text/plain", "application/octet-stream",
    ]
)  # fmt: skip
TEXT = st.text(max_size=300) | st.sampled_from(
    [
        "multipart/report; report-type=delivery-status", "auto-replied (vacation)", "bulk",
        "MAILER-DAEMON@example.net", "Undelivered Mail Returned to Sender", "Automatic reply: x",
        "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n",
        "Hi. This is the qmail-send program\n<a@example.org>:\n(#5.1.1)\nMessage-ID: <x@y>",
    ]
)  # fmt: skip


@PROPERTY
@given(
    headers=st.lists(st.tuples(HEADER_NAMES | st.text(max_size=20), TEXT), max_size=12),
    subject=TEXT,
    sender=TEXT,
    body=TEXT,
    attachments=st.lists(st.tuples(CONTENT_TYPES, st.binary(max_size=400) | TEXT), max_size=3),
)
def test_classify_never_raises(
    headers: list[tuple[str, str]],
    subject: str,
    sender: str,
    body: str,
    attachments: list[tuple[str, bytes | str]],
) -> None:
    parts = tuple(
        Attachment(
            filename="f",
            content_type=kind,
            content=data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"),
            content_id="",
            disposition="attachment",
            content_alternative=False,
        )
        for kind, data in attachments
    )
    record = replace(
        _base(),
        headers=tuple(headers),
        subject=subject,
        from_=sender,
        from_address=sender.lower(),
        body=body,
        attachments=parts,
        references=(),
        in_reply_to="",
    )
    result = classify(record)
    assert isinstance(result, Classification)
    assert not (result.bounce is not None and result.is_auto_reply)
    assert result.bounce is None or result.loop


@PROPERTY
@given(data=st.data())
def test_mutated_quirk_mails_never_raise(data: st.DataObject) -> None:
    files = sorted(DATA.glob("dsn-*.eml")) + sorted(DATA.glob("oof-*.eml"))
    raw = bytearray(data.draw(st.sampled_from(files)).read_bytes())
    for _ in range(data.draw(st.integers(0, 20))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + data.draw(st.integers(0, 40))] = data.draw(st.binary(max_size=40))
        if not raw:
            break
    assert isinstance(classify(parse_mail(bytes(raw))), Classification)


def test_parse_mail_records_what_classify_answers() -> None:
    # parse_mail skips the copy of a mail with nothing to flag; every flag must still be there.
    paths = [*sorted(DATA.glob("*.eml")), *sorted(ZNUNY.rglob("*.box"))]
    flagged = 0
    for path in paths:
        parsed = parse_mail(path.read_bytes())
        expected = classify(parsed)
        recorded = Classification(
            bounce=parsed.bounce,
            is_auto_reply=parsed.is_auto_reply,
            is_out_of_office=parsed.is_out_of_office,
            is_list=parsed.is_list,
            loop=parsed.loop,
        )
        assert recorded == expected, path.name
        flagged += expected != NOTHING
    assert flagged >= 20
