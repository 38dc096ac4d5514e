"""Amazon SES bounce notifications: a JSON body instead of a report (SES's own format).

Called by `bounces.detect_bounce`. SES (through SNS e-mail subscriptions, or forwarded by a
relay) sends `{"notificationType": "Bounce", "bounce": {...}, "mail": {...}}`, either as the
body itself or as the string `Message` of an SNS envelope around it. The bounce object names
each failed address in `bouncedRecipients` (emailAddress, status, diagnosticCode), says
`bounceType` Permanent / Transient / Undetermined, and its `bounceSubType` is the reason.
Complaints (`notificationType` "Complaint") are `feedback`'s; deliveries are not bounces.
"""

from __future__ import annotations

import json
from typing import Any

from pytrs.parsers.bounce_reasons import status_for
from pytrs.parsers.fields import bracketed_ids
from pytrs.parsers.model import Bounce, ParsedMail
from pytrs.parsers.textscan import MAX_SCAN, addresses_in, decoded, one_line, status_in

# bounceSubType → reason class (bounce_reasons); the others only give the class digit.
_SUBTYPES = {
    "mailboxfull": "mailbox-full",
    "messagetoolarge": "too-large",
    "contentrejected": "blocked",
    "attachmentrejected": "blocked",
    "noemail": "user-unknown",
}


def ses_bounce(mail: ParsedMail) -> Bounce | None:
    """Return the bounce an SES bounce notification describes, or None."""
    notice = _json(mail.body)
    if notice is None:
        # Relays that forward the notification as a file: the first application/json part.
        part = next((a for a in mail.attachments if _is_json(a.content_type)), None)
        notice = _json(decoded(part.content)) if part is not None else None
    if isinstance(notice, dict) and isinstance(notice.get("Message"), str):
        notice = _json(notice["Message"])  # an SNS notification around it
    if not isinstance(notice, dict) or notice.get("notificationType") != "Bounce":
        return None
    bounce = _mapping(notice.get("bounce"))
    listed = bounce.get("bouncedRecipients")
    entries = [_mapping(entry) for entry in (listed if isinstance(listed, list) else [])[:100]]
    if not entries:
        return None
    entry = entries[0]
    found = addresses_in(str(entry.get("emailAddress", ""))[:1024], limit=1)
    kind = str(bounce.get("bounceType", "")).lower()
    diagnostic = one_line(str(entry.get("diagnosticCode", "")))
    status = status_in(str(entry.get("status", ""))[:64]) or status_in(diagnostic)
    if kind == "permanent":
        permanent = True
    elif kind == "transient":
        permanent = False
    else:
        permanent = status.startswith("5")
    if not status:
        reason = _SUBTYPES.get(str(bounce.get("bounceSubType", "")).lower(), "")
        status = status_for(reason, permanent=permanent) or ("5.0.0" if permanent else "4.0.0")
    return Bounce(
        original_message_id=_message_id(_mapping(notice.get("mail"))),
        recipient=found[0] if found else "",
        status=status,
        permanent=permanent,
        diagnostic=diagnostic or one_line(str(bounce.get("bounceSubType", ""))),
        reporting_mta=_mta(str(bounce.get("reportingMTA", ""))) or "amazonses.com",
        format="amazon-ses",
    )


def _json(text: str) -> Any:
    text = text.strip()
    # Bounded: a body past the scan limit is not a notification (SES's are a few kilobytes).
    if not text.startswith("{") or len(text) > MAX_SCAN:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # malformed, or nested deeper than the stack allows
        return None


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message_id(sent: dict[str, Any]) -> str:
    headers = sent.get("headers")
    for header in (headers if isinstance(headers, list) else [])[:200]:
        header = _mapping(header)
        if str(header.get("name", "")).lower() == "message-id":
            ids = bracketed_ids(str(header.get("value", ""))[:1024])
            if ids:
                return ids[0]
    ids = bracketed_ids(str(_mapping(sent.get("commonHeaders")).get("messageId", ""))[:1024])
    return ids[0] if ids else ""


def _mta(value: str) -> str:
    # "dsn; a4-8.smtp-out.eu-west-1.amazonses.com"
    return value.rpartition(";")[2].strip().lower()[:255]
