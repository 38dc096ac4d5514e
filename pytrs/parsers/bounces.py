"""Bounce detection: is this mail a delivery-failure report, and about which mail and address?

Part of `classify` (after `parse_mail`). Routing uses the result to attach a bounce to the ticket
whose mail failed (by the original Message-ID) instead of opening a new ticket; responders never
answer it; the outbox suppresses hard-bounced addresses (SPEC S8).

The ways in, in order. A standard report (RFC 3464: `multipart/report;
report-type=delivery-status` with a `message/delivery-status` part) is read field by field, as
is such a part sent by a mail system outside a report (McAfee). An Amazon SES JSON notification
is `bounce_ses`'s; a report signed by a known system that writes neither (dma, InterScan, KDDI,
Verizon, fml, MailFoundry, m-FILTER, Mimecast, Apache James, Exchange 2003 …) is
`bounce_families`'s; delivery-status fields written into the text (SendGrid) are read like a
status part. Everything else (qmail, Postfix, Exim, Sendmail, Exchange text, provider formats)
is left to `bouncetext`, which recognises a report by its sender and wording.

The original Message-ID comes from the returned message or its headers, else from the report's
In-Reply-To/References, else from a Message-ID line quoted in the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pytrs.parsers.bounce_families import family_bounce, family_of
from pytrs.parsers.bounce_ses import ses_bounce
from pytrs.parsers.bouncetext import (
    copy_marker_at,
    human_subject,
    looks_like_daemon,
    text_bounce,
)
from pytrs.parsers.fields import bracketed_ids
from pytrs.parsers.model import Bounce, ParsedMail
from pytrs.parsers.textscan import (
    MAX_SCAN,
    Fields,
    addresses_in,
    decoded,
    field_blocks,
    first_attachment,
    header_block_message_id,
    one_line,
    quoted_message_id,
    report_type,
    status_in,
)

# message/global-* are the internationalised (RFC 6533) forms of the same parts.
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = (
    "message/rfc822",
    "text/rfc822-headers",
    "message/global",
    "message/global-headers",
)
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_MAX_RECIPIENT_BLOCKS = 100
# Families (bounce_families) whose reports carry delivery-status fields without being a report.
_FIELD_WRITERS = frozenset({"mcafee", "sendgrid"})
# A delivery-status field written at the start of a line of a text body.
_STATUS_FIELDS = re.compile(
    r"^(?:final|original)-recipient[ \t]{0,8}:", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class _Recipient:
    """One per-recipient block of a delivery-status part (RFC 3464 section 2.3)."""

    address: str
    action: str
    status: str
    diagnostic: str


class _Success:
    """Marker: a well-formed report that says every recipient got the mail (not a bounce)."""


def detect_bounce(mail: ParsedMail, fields: Fields) -> Bounce | None:
    """Return the bounce details when `mail` is a delivery-failure report, else None."""
    report = is_delivery_report(fields)
    # Only systems known to write delivery-status fields outside a multipart/report count as
    # signing one: a person on an Exchange server pasting a report must not.
    signed = report or looks_like_daemon(mail) or family_of(mail, fields) in _FIELD_WRITERS
    status_part = first_attachment(mail, _STATUS_TYPES)
    if status_part is not None and signed:
        found = _from_status_part(mail, decoded(status_part.content))
        if found is not None:
            return found if isinstance(found, Bounce) else None
    found_ses = ses_bounce(mail)
    if found_ses is not None:
        return found_ses
    found_family = family_bounce(mail, fields)
    if found_family is not None:
        return _with_original(found_family, mail, "")
    if signed and not human_subject(mail.subject) and _STATUS_FIELDS.search(mail.body[:MAX_SCAN]):
        # SendGrid and McAfee write the delivery-status fields into the text itself.
        text = mail.body[: copy_marker_at(mail.body[:MAX_SCAN])]
        found = _from_status_part(mail, text, family_of(mail, fields) or "dsn-text")
        if found is not None:
            return found if isinstance(found, Bounce) else None
    found_text = text_bounce(mail, fields, trust_report=report)
    if found_text is None:
        return None
    return _with_original(found_text, mail, "")


def is_delivery_report(fields: Fields) -> bool:
    """Return whether the top-level Content-Type is a delivery-status `multipart/report`."""
    return report_type(fields) in ("delivery-status", "global-delivery-status")


def _from_status_part(
    mail: ParsedMail, text: str, fmt: str = "rfc3464"
) -> Bounce | _Success | None:
    message_fields, recipients = _parse_status(text)
    if not recipients:
        return None  # Unreadable: let the wording decide.
    chosen = _failed(recipients)
    if chosen is None:
        return _Success()
    status = _refined_status(chosen)
    bounce = Bounce(
        original_message_id="",
        recipient=chosen.address,
        status=status,
        permanent=chosen.action == "failed" or status.startswith("5"),
        diagnostic=one_line(chosen.diagnostic),
        reporting_mta=_mta(message_fields.get("reporting-mta", "")) or _sender_domain(mail),
        format=fmt,
    )
    return _with_original(bounce, mail, message_fields.get("x-original-message-id", ""))


def _parse_status(text: str) -> tuple[dict[str, str], list[_Recipient]]:
    """Split a delivery-status body into its per-message fields and per-recipient blocks.

    Blocks are separated by blank lines; a block is a recipient's when it names one. Writers
    that run everything into one block (seen in the wild) still yield their recipient.
    """
    message_fields: dict[str, str] = {}
    recipients: list[_Recipient] = []
    for block in field_blocks(text):
        names_one = "final-recipient" in block or "original-recipient" in block
        if names_one and len(recipients) < _MAX_RECIPIENT_BLOCKS:
            recipients.append(_recipient(block))
        for name in ("reporting-mta", "x-original-message-id"):
            if name in block:
                message_fields.setdefault(name, block[name])
    return message_fields, recipients


def _recipient(block: dict[str, str]) -> _Recipient:
    # Original-Recipient is the address as the sender wrote it (before aliases and forwards),
    # which is the address our outbound mail used and the one to suppress.
    address = _address(block.get("original-recipient", "")) or _address(
        block.get("final-recipient", "")
    )
    return _Recipient(
        address=address,
        action=block.get("action", "").split(" ", 1)[0].lower(),
        status=block.get("status", ""),
        diagnostic=_after_type(block.get("diagnostic-code", "")),
    )


def _failed(recipients: list[_Recipient]) -> _Recipient | None:
    """Pick the recipient the report is about: failed first, then delayed, then unspecified."""
    for wanted in ("failed", "delayed"):
        for recipient in recipients:
            if recipient.action == wanted:
                return recipient
    for recipient in recipients:
        if recipient.action not in _SUCCESS_ACTIONS and status_in(recipient.status):
            return recipient
    for recipient in recipients:
        # Action and Status are mandatory, but reports without them exist (Znuny Issue24);
        # a report about an address that does not say it was delivered is a failure.
        if not recipient.action and not recipient.status:
            return recipient
    return None


def _refined_status(recipient: _Recipient) -> str:
    status = status_in(recipient.status)
    detail = status_in(recipient.diagnostic)
    if not status:
        return detail
    # Postfix and Exim write the class only ("5.0.0") when the remote server gave details.
    if status.endswith(".0.0") and detail[:1] == status[:1] and not detail.endswith(".0.0"):
        return detail
    return status


def _with_original(bounce: Bounce, mail: ParsedMail, dsn_id: str) -> Bounce:
    original = _original_message_id(mail, dsn_id)
    return replace(bounce, original_message_id=original) if original else bounce


def _original_message_id(mail: ParsedMail, dsn_id: str) -> str:
    """Return the Message-ID of the mail that bounced, from the best source present."""
    own = mail.message_id
    candidates = []
    original = first_attachment(mail, _ORIGINAL_TYPES)
    if original is not None:
        candidates.append(header_block_message_id(decoded(original.content)))
    candidates.append(_bracketed(dsn_id))
    candidates.append(mail.in_reply_to)
    candidates.extend(reversed(mail.references))  # The last reference is the direct parent.
    for candidate in candidates:
        if candidate and candidate != own:
            return candidate
    # The returned message quoted in the body: read after the copy marker when there is one,
    # so a Message-ID the report's own text mentions is not taken for it.
    body = mail.body[:MAX_SCAN]
    from_marker = quoted_message_id(body[copy_marker_at(body) :])
    return from_marker if from_marker != own else ""


def _address(value: str) -> str:
    # "rfc822; Name@Example.org" → "name@example.org"; other address types are kept as text.
    text = _after_type(value).strip("<> ")
    found = addresses_in(text, limit=1)
    return found[0] if found else text.lower()[:320]


def _after_type(value: str) -> str:
    # Typed fields ("rfc822; …", "smtp; …", "dns; …") carry the value after the first ";".
    kind, semicolon, rest = value.partition(";")
    if semicolon and len(kind) <= 20 and " " not in kind.strip():
        return rest.strip()
    return value.strip()


def _mta(value: str) -> str:
    return one_line(_after_type(value)).split(" ", 1)[0].rstrip(".").lower()[:255]


def _bracketed(value: str) -> str:
    ids = bracketed_ids(value[:2048])
    if ids:
        return ids[0]
    compact = "".join(value[:2048].split())
    return f"<{compact}>" if "@" in compact else ""


def _sender_domain(mail: ParsedMail) -> str:
    return mail.from_address.rpartition("@")[2]
