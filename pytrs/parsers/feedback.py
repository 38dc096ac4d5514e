"""Complaints about our mail: abuse feedback reports (ARF, RFC 5965) and providers' own forms.

Part of the classification step (`classify`): a mailbox provider whose user pressed "this is
spam" on a mail from us sends a report. Routing files it on the ticket of the mail complained
about, as it does a bounce; responders never answer it; the apply step may suppress the
complaining address (`[outbound] suppress_on_complaint`).

Recognised forms:
- ARF: `multipart/report; report-type=feedback-report` with a `message/feedback-report` part
  (Feedback-Type, User-Agent, Original-Rcpt-To …) and the original mail or its headers;
- Microsoft's JMRP (Outlook.com/Hotmail): the original attached as `message/rfc822`, the
  complaining address in `X-HmXmrOriginalRecipient`;
- Amazon SES complaint notifications: a JSON body (`"notificationType": "Complaint"`), as
  e-mailed by SES or wrapped in an SNS notification.

Pure and never raising for the caller (`classify` guards it); everything read is bounded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pytrs.parsers.model import Attachment, FeedbackReport, ParsedMail
from pytrs.parsers.textscan import (
    Fields,
    addresses_in,
    decoded,
    field_blocks,
    first,
    first_attachment,
    header_block_message_id,
    one_line,
    report_type,
)

_FEEDBACK_TYPES = ("message/feedback-report",)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global")
_BRACKETED = re.compile(r"<[^<>\s]{1,250}>")
# An SES notification is a few kilobytes; a bigger "JSON" body is not one.
_MAX_JSON = 256 * 1024


def detect_feedback(mail: ParsedMail, fields: Fields) -> FeedbackReport | None:
    """Return the complaint `mail` is, or None for any other mail."""
    part = first_attachment(mail, _FEEDBACK_TYPES)
    if part is not None or _is_feedback_report(fields):
        return _arf(mail, part)
    jmrp = first(fields, "x-hmxmroriginalrecipient")
    if jmrp and first_attachment(mail, _ORIGINAL_TYPES) is not None:
        return _jmrp(mail, jmrp)
    return _amazon_ses(mail)


def _is_feedback_report(fields: Fields) -> bool:
    return report_type(fields) == "feedback-report"


def _arf(mail: ParsedMail, part: Attachment | None) -> FeedbackReport:
    report = _header_fields(decoded(part.content)) if part is not None else {}
    original = _original_headers(mail)
    recipient = _address(report.get("original-rcpt-to", "")) or _address(
        report.get("removal-recipient", "")
    )
    return FeedbackReport(
        feedback_type=_word(report.get("feedback-type", "")) or "abuse",
        recipient=recipient or _address(original.get("to", "")),
        original_message_id=_original_message_id(mail, original),
        reporter=one_line(report.get("user-agent", ""))[:200] or _sender_domain(mail),
        format="arf",
    )


def _jmrp(mail: ParsedMail, recipient: str) -> FeedbackReport:
    original = _original_headers(mail)
    return FeedbackReport(
        feedback_type="abuse",
        recipient=_address(recipient) or _address(original.get("to", "")),
        original_message_id=_original_message_id(mail, original),
        reporter=_sender_domain(mail),
        format="jmrp",
    )


def _amazon_ses(mail: ParsedMail) -> FeedbackReport | None:
    notice = _json_body(mail.body)
    if isinstance(notice, dict) and isinstance(notice.get("Message"), str):
        notice = _json_body(notice["Message"])  # an SNS notification around it
    if not isinstance(notice, dict) or notice.get("notificationType") != "Complaint":
        return None
    complaint = _mapping(notice.get("complaint"))
    sent = _mapping(notice.get("mail"))
    complained = complaint.get("complainedRecipients")
    recipients = [
        _address(str(_mapping(entry).get("emailAddress", "")))
        for entry in (complained if isinstance(complained, list) else [])[:20]
    ]
    message_id = str(_mapping(sent.get("commonHeaders")).get("messageId", ""))
    headers = sent.get("headers")
    for header in headers if isinstance(headers, list) else []:
        header = _mapping(header)
        if str(header.get("name", "")).lower() == "message-id":
            message_id = str(header.get("value", ""))
            break
    found = _BRACKETED.search(message_id[:1024])
    return FeedbackReport(
        feedback_type=_word(str(complaint.get("complaintFeedbackType", ""))) or "abuse",
        recipient=next((r for r in recipients if r), ""),
        original_message_id=found.group(0) if found else "",
        reporter=one_line(str(complaint.get("userAgent", "")))[:200] or "amazonses.com",
        format="amazon-ses",
    )


def _json_body(text: str) -> Any:
    text = text.strip()
    if not text.startswith("{") or len(text) > _MAX_JSON:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _original_headers(mail: ParsedMail) -> dict[str, str]:
    part = first_attachment(mail, _ORIGINAL_TYPES)
    if part is None:
        return {}
    text = decoded(part.content)
    fields = _header_fields(text.split("\n\n", 1)[0])
    message_id = header_block_message_id(text)
    if message_id:
        fields["message-id"] = message_id
    return fields


def _original_message_id(mail: ParsedMail, original: dict[str, str]) -> str:
    message_id = original.get("message-id", "")
    return message_id if message_id and message_id != mail.message_id else ""


def _header_fields(text: str) -> dict[str, str]:
    """The first block of `Name: value` lines of `text` (see `field_blocks`)."""
    blocks = field_blocks(text)
    return blocks[0] if blocks else {}


def _address(value: str) -> str:
    found = addresses_in(value[:1024], limit=1)
    return found[0] if found else ""


def _word(value: str) -> str:
    return value.strip().split(" ", 1)[0].lower()[:40]


def _sender_domain(mail: ParsedMail) -> str:
    return mail.from_address.rpartition("@")[2]
