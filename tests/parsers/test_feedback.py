"""Complaints about our mail (`parsers/feedback.py`): ARF reports, Microsoft's JMRP and Amazon
SES complaint notices are recognised with who complained and about which of our mails; ordinary
mail, bounces and auto-replies are not complaints.

The samples are written here from the formats' public descriptions: ARF from RFC 5965 (sections
2 and 3, and its appendix B examples' structure); JMRP from Microsoft's Junk Mail Reporting
Program documentation (the original attached as message/rfc822, the complainer in
X-HmXmrOriginalRecipient); SES from Amazon SES's "notification contents" reference (the JSON
of a Complaint notification, e-mailed or inside an SNS notification's "Message").
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pytrs.parsers import parse_mail
from pytrs.parsers.model import FeedbackReport

from ..helpers import make_mail

OURS = "<20260301090000.1a2b3c.pytrs@helpdesk.example.com>"


def _arf(
    *, feedback_type: str = "abuse", rcpt_to: str | None = "alice@mail.example",
    original: str = "message/rfc822", report_type: str = "feedback-report",
) -> bytes:  # fmt: skip
    rcpt = f"Original-Rcpt-To: <{rcpt_to}>\r\n" if rcpt_to else ""
    return (
        "From: <abuse-reports@mail.example>\r\nTo: <postmaster@helpdesk.example.com>\r\n"
        "Subject: FW: [Ticket#2026030110000017] Your request\r\n"
        "Message-ID: <arf-1@feedback.mail.example>\r\nDate: Sun, 1 Mar 2026 12:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type};\r\n boundary="part"\r\n'
        "\r\n--part\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        "192.0.2.1 on Sun, 1 Mar 2026 09:00:00 +0000.\r\n"
        "\r\n--part\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nUser-Agent: MailExampleFBL/1.0\r\nVersion: 1\r\n"
        "Original-Mail-From: <support@helpdesk.example.com>\r\n"
        f"{rcpt}Arrival-Date: Sun, 1 Mar 2026 09:00:00 +0000\r\n"
        "Source-IP: 192.0.2.1\r\nReported-Domain: helpdesk.example.com\r\n"
        f"\r\n--part\r\nContent-Type: {original}\r\n\r\n"
        "From: Support <support@helpdesk.example.com>\r\nTo: Alice <alice@mail.example>\r\n"
        f"Subject: [Ticket#2026030110000017] Your request\r\nMessage-ID:\r\n {OURS}\r\n"
        "Date: Sun, 1 Mar 2026 09:00:00 +0000\r\n\r\nWe received your request.\r\n"
        "\r\n--part--\r\n"
    ).encode()


def _jmrp() -> bytes:
    return (
        "From: staff@hotmail.example\r\nTo: fbl@helpdesk.example.com\r\n"
        "Subject: complaint about message from 192.0.2.1\r\n"
        "Message-ID: <jmrp-1@hotmail.example>\r\nDate: Sun, 1 Mar 2026 12:00:00 +0000\r\n"
        "X-HmXmrOriginalRecipient: <Bob@Outlook.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="j"\r\n'
        "\r\n--j\r\nContent-Type: text/plain\r\n\r\nThis is a complaint notification.\r\n"
        "\r\n--j\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        "From: support@helpdesk.example.com\r\nTo: bob@outlook.example\r\n"
        f"Subject: Re: your ticket\r\nMessage-ID: {OURS}\r\n\r\nHello Bob.\r\n"
        "\r\n--j--\r\n"
    ).encode()


def _ses_notice(wrapped: bool = False) -> bytes:
    notice: dict[str, Any] = {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": "Carol@Customer.example"}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-03-01T09:00:00.000Z",
            "timestamp": "2026-03-01T09:00:01.000Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": {
            "timestamp": "2026-03-01T09:00:00.000Z",
            "messageId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
            "source": "support@helpdesk.example.com",
            "destination": ["carol@customer.example"],
            "headers": [
                {"name": "From", "value": "support@helpdesk.example.com"},
                {"name": "Message-ID", "value": OURS},
            ],
            "commonHeaders": {"from": ["support@helpdesk.example.com"], "messageId": OURS},
        },
    }
    body = json.dumps({"Type": "Notification", "Message": json.dumps(notice)} if wrapped
                      else notice)  # fmt: skip
    return (
        "From: no-reply@sns.amazonaws.example\r\nTo: fbl@helpdesk.example.com\r\n"
        "Subject: AWS Notification Message\r\nMessage-ID: <ses-1@sns.example>\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n" + body + "\r\n"
    ).encode()


def test_an_arf_report_names_the_complainer_and_our_mail() -> None:
    mail = parse_mail(_arf())
    assert mail.feedback == FeedbackReport(
        feedback_type="abuse", recipient="alice@mail.example", original_message_id=OURS,
        reporter="MailExampleFBL/1.0", format="arf",
    )  # fmt: skip
    assert mail.is_feedback_report and mail.loop and mail.bounce is None


@pytest.mark.parametrize("original", ["message/rfc822", "text/rfc822-headers"])
def test_an_arf_report_without_original_rcpt_to_falls_back_to_the_originals_to(
    original: str,
) -> None:
    mail = parse_mail(_arf(rcpt_to=None, original=original, feedback_type="Fraud"))
    assert mail.feedback is not None
    assert (mail.feedback.recipient, mail.feedback.feedback_type) == ("alice@mail.example", "fraud")
    assert mail.feedback.original_message_id == OURS


def test_a_feedback_part_is_enough_without_the_report_type() -> None:
    """Some reporters send multipart/mixed with the message/feedback-report part."""
    mail = parse_mail(
        _arf(report_type="x-unknown").replace(b"multipart/report", b"multipart/mixed")
    )
    assert mail.feedback is not None and mail.feedback.format == "arf"


def test_microsofts_jmrp_complaint() -> None:
    mail = parse_mail(_jmrp())
    assert mail.feedback == FeedbackReport(
        feedback_type="abuse", recipient="bob@outlook.example", original_message_id=OURS,
        reporter="hotmail.example", format="jmrp",
    )  # fmt: skip


@pytest.mark.parametrize("wrapped", [False, True], ids=["e-mailed", "sns"])
def test_an_amazon_ses_complaint_notice(wrapped: bool) -> None:
    mail = parse_mail(_ses_notice(wrapped))
    assert mail.feedback == FeedbackReport(
        feedback_type="abuse", recipient="carol@customer.example", original_message_id=OURS,
        reporter="ExampleCorp Feedback Loop (V0.01)", format="amazon-ses",
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        make_mail(body='{"notificationType": "Bounce", "bounce": {}}\n'),
        make_mail(body="{ not json at all\n"),
        make_mail(extra={"X-HmXmrOriginalRecipient": "bob@outlook.example"}),  # nothing attached
        make_mail(subject="spam complaint", body="I think your mail was spam.\n"),
    ],
    ids=["ses-bounce", "broken-json", "jmrp-header-alone", "words-alone"],
)
def test_other_mail_is_no_complaint(raw: bytes) -> None:
    assert parse_mail(raw).feedback is None


def test_a_bounce_stays_a_bounce() -> None:
    dsn = _arf().replace(b"report-type=feedback-report", b"report-type=delivery-status")
    dsn = dsn.replace(b"message/feedback-report", b"message/delivery-status").replace(
        b"Original-Rcpt-To: <alice@mail.example>",
        b"Final-Recipient: rfc822; alice@mail.example\r\nAction: failed\r\nStatus: 5.1.1",
    )
    mail = parse_mail(dsn)
    assert mail.feedback is None and mail.bounce is not None


def test_a_complaint_is_never_answered() -> None:
    from pytrs.config import parse_config
    from pytrs.responders.loop_protection import LoopPolicy, may_auto_answer

    policy = LoopPolicy.build(parse_config({}, environ={}))
    mail = parse_mail(make_mail())
    verdict = may_auto_answer(replace(mail, feedback=parse_mail(_arf()).feedback), policy)
    assert not verdict.allowed and verdict.refusals[0].reason == "complaint"
