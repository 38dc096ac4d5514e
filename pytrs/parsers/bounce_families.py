"""Failure reports of mail systems that sign them but write no RFC 3464 part and no MTA prose.

Called by `bounces.detect_bounce` before the generic prose check (`bouncetext`). Each family
(DragonFly Mail Agent, Trend Micro InterScan MSS, KDDI/au, Verizon, fml, MailFoundry, m-FILTER,
McAfee, Mimecast, Apache James, Exchange 2003) is one row of data: how the system signs its
reports (a header or an opening line), the line after which the failed address follows, and
where the returned copy begins. A mail is taken for a family's report only when BOTH its
signature and its failure line are there, the failure line starting a line of the report's own
text (a person quoting it writes "> " first), so ordinary mail passing through those systems,
which carries the same headers, is never a bounce.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytrs.parsers.bounce_reasons import refined
from pytrs.parsers.bouncetext import human_subject
from pytrs.parsers.model import Bounce, ParsedMail
from pytrs.parsers.textscan import (
    MAX_SCAN,
    Fields,
    addresses_in,
    ascii_lower,
    find_status,
    first,
    line_at,
    one_line,
)


@dataclass(frozen=True, slots=True)
class _Family:
    """How one system signs and words its failure reports (all text lower-case)."""

    name: str
    signs: tuple[tuple[str, str], ...]  # (header field or "body", text in it): any one will do
    failures: tuple[str, ...]  # a line of the report starts with one; the address follows
    copies: tuple[str, ...] = ()  # where the returned copy begins
    # When set, the address is read from the returned copy's first line starting with one.
    copy_lines: tuple[str, ...] = ()


_FAMILIES = (
    _Family(
        "dma",
        (("received", "(dragonfly mail agent"), ("body", "this is the dragonfly mail agent")),
        ("there was an error delivering your mail to",),
        ("original message follows.", "message headers follow"),
    ),
    _Family(
        "interscan",
        (("from", "interscan"), ("received", "(interscanmss) with")),
        ("sent <<< rcpt to:", "unable to deliver message to <"),
    ),
    _Family(
        "kddi",
        (("from", ".dion.ne.jp"), ("received", "ezweb.ne.jp ("), ("received", ".au.com (")),
        ("could not be delivered to: <",),
    ),
    _Family(
        "verizon",
        (("from", "post_master@vtext.com"), ("from", ".vzwpix.com")),
        ("error:",),
        ("original message:", "message details:"),
        copy_lines=("rcpt to:", "to:"),
    ),
    _Family(
        "fml",
        (("message-id", ".fml"), ("x-mlserver", "fml")),
        ("you are not a member of this mailing list", "reject spammers:", "reject mail from"),
        ("original mail as follows:",),
    ),
    _Family(
        "mailfoundry",
        (("received", "(mailfoundry) id"),),
        ("unable to deliver message to:",),
    ),
    _Family(
        "mfilter",
        (("x-mailer", "m-filter"),),
        ("以下のメールアドレスへの送信に失敗しました", "-------server message"),
        ("-------original message", "-------original mail info"),
    ),
    _Family(
        "mcafee",
        (("x-nai-header", "modified by mcafee"),),
        ("--- the following addresses had delivery problems ---",),
    ),
    # SendGrid writes delivery-status fields into its text: `bounces` reads those.
    _Family(
        "sendgrid",
        (("return-path", "apps@sendgrid.net"), ("body", "generated message from sendgrid")),
        (),
    ),
    _Family(
        "mimecast",
        (("message-id", ".mimecast.lan>"), ("subject", "email delivery failure")),
        ("an email that you attempted to send to the following address",),
    ),
    _Family(
        "apache-james",
        (("subject", "[bounce]"), ("message-id", ".javamail."), ("received", "james smtp server")),
        ("rcpt to:",),
    ),
    _Family(
        "exchange2003",
        (
            ("x-ms-embedded-report", ""),
            ("x-mailer", "internet mail service ("),
            ("x-mailer", "microsoft exchange server internet mail connector"),
            ("x-mimeole", "produced by microsoft exchange"),
            ("received", " with internet mail service ("),
        ),
        ("did not reach the following recipient(s):",),
    ),
)
_WINDOW = 600  # characters after the failure line in which the address must appear
_MAX_LINES = 2000
_DELAY_WORDS = ("will be retried", "will continue trying", "not yet been delivered", "(delay)")
_PERMANENT_WORDS = ("permanent failure", "permanent error", "has been a permanent")


def family_of(mail: ParsedMail, fields: Fields) -> str:
    """Return the family whose signature the mail carries ("" for none). Not proof of a bounce."""
    body = ascii_lower(mail.body[:MAX_SCAN])
    for family in _FAMILIES:
        if _signed(family, mail, fields, body):
            return family.name
    return ""


def family_bounce(mail: ParsedMail, fields: Fields) -> Bounce | None:
    """Return the bounce a signed family report describes, or None."""
    if human_subject(mail.subject):
        return None  # a person answering or forwarding a report, not the report
    body = mail.body[:MAX_SCAN]
    lowered = ascii_lower(body)
    for family in _FAMILIES:
        if _signed(family, mail, fields, lowered):
            found = _read(family, mail, fields, body, lowered)
            if found is not None:
                return found
    return None


def _signed(family: _Family, mail: ParsedMail, fields: Fields, lowered_body: str) -> bool:
    for name, text in family.signs:
        if name == "body":
            if text in lowered_body:
                return True
            continue
        values = [mail.subject] if name == "subject" else fields.get(name, [])
        for value in values[:50]:
            if text in value[:2048].lower():
                return True
    return False


def _read(
    family: _Family, mail: ParsedMail, fields: Fields, body: str, lowered: str
) -> Bounce | None:
    copy_at = min((at for m in family.copies if (at := lowered.find(m)) >= 0), default=len(body))
    report, low_report = body[:copy_at], lowered[:copy_at]
    failure_at = _failure_line(low_report, family.failures)
    if failure_at < 0:
        return None
    # Verizon names the failed address only in the envelope lines of the returned copy.
    search_from = failure_at
    if family.copy_lines:
        start = _failure_line(lowered[copy_at : copy_at + _WINDOW], family.copy_lines)
        if start < 0:
            return None
        search_from = copy_at + start
    window = lowered[search_from : search_from + _WINDOW]
    # The report's own sender and addressee (us) are never the failed address.
    own = {mail.from_address, *addresses_in(first(fields, "to")[:2048], limit=10)}
    recipient = next((a for a in addresses_in(window, limit=10) if a not in own), "")
    if not recipient:
        return None
    status, status_at = find_status(report[failure_at:])
    status_line = line_at(report[failure_at:], status_at)
    if not status:
        status, status_at = find_status(report)
        status_line = line_at(report, status_at)
    delayed = any(word in low_report for word in _DELAY_WORDS)
    permanent_words = any(word in low_report for word in _PERMANENT_WORDS)
    status = refined(status, low_report + ascii_lower(mail.subject), permanent=not delayed)
    permanent = status.startswith("5") if status else (permanent_words or not delayed)
    return Bounce(
        original_message_id="",
        recipient=recipient,
        status=status,
        permanent=permanent,
        diagnostic=one_line(status_line or line_at(report, failure_at)),
        reporting_mta=mail.from_address.rpartition("@")[2],
        format=family.name,
    )


def _failure_line(lowered: str, failures: tuple[str, ...]) -> int:
    """Return where a line starting (after indentation) with a failure phrase is, else -1."""
    at = 0
    for _ in range(_MAX_LINES):
        end = lowered.find("\n", at)
        line = lowered[at : end if end >= 0 else len(lowered)]
        stripped = line.lstrip(" \t")
        if stripped.startswith(failures):
            return at + len(line) - len(stripped)
        if end < 0:
            return -1
        at = end + 1
    return -1
