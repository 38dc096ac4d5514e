"""Non-standard bounces: delivery failures written as prose instead of an RFC 3464 report.

Called by `bounces.detect_bounce` when a mail carries no readable `message/delivery-status`
part. Such a report is recognised only when BOTH its sender is a mail system (MAILER-DAEMON,
postmaster, "Mail Delivery Subsystem", …) AND its subject or text has the wording of a known
format; a person who forwards or quotes a bounce, or an out-of-office reply that mentions one,
is never taken for one. The formats are a table of data below, not code paths: adding an MTA
means adding its phrases.

Only the report's own text is read, up to the line where the returned copy begins, so an
address or code inside the bounced mail is not taken for the failed recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytrs.parsers.addresses import extract_addresses
from pytrs.parsers.autoreply import oof_prefix
from pytrs.parsers.bounce_reasons import refined
from pytrs.parsers.model import Bounce, ParsedMail
from pytrs.parsers.textscan import (
    MAX_SCAN,
    Fields,
    addresses_in,
    ascii_lower,
    find_status,
    first,
    line_at,
    normalised,
    one_line,
)


@dataclass(frozen=True, slots=True)
class _Format:
    """How one family of MTAs words its failure reports (all phrases lower-case)."""

    name: str
    phrases: tuple[str, ...]  # in the report text
    subjects: tuple[str, ...]  # at the start of the subject


# Checked in order: the first format whose text phrase occurs wins, else the first whose subject
# matches. "generic" comes last and only ever names what no MTA-specific phrase claimed.
_FORMATS = (
    _Format(
        "qmail",
        (
            "hi. this is the qmail-send program",
            "i'm afraid i wasn't able to deliver your message to the following addresses",
            "this is the mail delivery agent at",  # qmail clones
        ),
        (),
    ),
    _Format("yahoo", ("sorry, we were unable to deliver your message",), ()),
    _Format(
        "exim",
        ("this message was created automatically by mail delivery software",),
        ("mail delivery failed", "warning: message"),
    ),
    _Format(
        "postfix",
        ("this is the postfix program", "this is the mail system at host"),
        ("undelivered mail returned to sender", "delayed mail (still being retried)"),
    ),
    _Format(
        "sendmail",
        (
            "----- the following addresses had permanent fatal errors -----",
            "----- transcript of session follows -----",
        ),
        ("returned mail:", "warning: could not send message"),
    ),
    _Format(
        "exchange",
        (
            "delivery has failed to these recipients or groups",
            "the following recipient(s) could not be reached",
            "diagnostic information for administrators",
        ),
        # Exchange prefixes the original subject, translated into the server's language.
        (
            "undeliverable:",
            "unzustellbar:",
            "non remis",
            "onbestelbaar:",
            "no se puede entregar:",
            "non recapitabile:",
            "não é possível entregar:",
            "olevererbart:",
            "kan ikke leveres:",
            "ei voitu toimittaa:",
        ),
    ),
    _Format(
        "gmail",
        (
            "** address not found **",
            "delivery to the following recipient failed permanently",
            "your message wasn't delivered to",
        ),
        ("delivery status notification (failure)", "delivery status notification (delay)"),
    ),
    _Format(
        "generic",
        (
            "could not be delivered to",
            "delivery to the following recipients failed",
            "message could not be delivered",
            "was not delivered to",
            "the following addresses had delivery problems",
        ),
        (
            "failure notice",
            "mail delivery failure",
            "delivery failure",
            "delivery status notification",
            "undeliverable",
            "undelivered mail",
            "returned mail",
            "non-delivery",
            "nondeliverable",
            "mail system error",
            "message delivery failure",
            "delivery notification: delivery has failed",
        ),
    ),
)

# Where the returned copy of the bounced mail begins in the major formats.
_COPY_MARKERS = (
    "--- below this line is a copy of the message",
    "--- below this line is a copy of the mail header",  # qmail clones
    "--- below the next line is a copy of the message",
    "------ this is a copy of the message",
    "------ this is a copy of the body of the message",
    "----- original message follows -----",
    "----- unsent message follows -----",
    "----- message header follows -----",
    "original message headers:",
    # DragonFly Mail Agent, fml, m-FILTER, Verizon (see bounce_families).
    "original message follows.",
    "message headers follow",
    "original mail as follows:",
    "-------original message",
    "-------original mail info",
    "original message:",
)
# Phrases after which the failed address follows within a few lines.
_ANCHORS = (
    "following address",
    "following recipient",
    "these recipients",
    "failed permanently",
    "could not be reached",
    "not yet been delivered",
    "wasn't delivered to",
    "was not delivered to",
    "could not be delivered to",
    "your message to",
    "unable to deliver your message to",
    "rcpt to:",
    # Exchange in German, French, Dutch, Spanish, Italian.
    "folgende empfänger",
    "destinataires",
    "geadresseerden",
    "destinatarios",
    "destinatari",
)
_ANCHOR_WINDOW = 600
_DAEMON_LOCALS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster"}
)
_DAEMON_NAMES = (
    "mail delivery",
    "mailer-daemon",
    "mailer daemon",
    "postmaster",
    "mail administrator",
    "mail system",
    "microsoft outlook",
    "microsoft exchange",
)
# A person answering or forwarding a bounce writes one of these first.
_HUMAN_PREFIXES = (
    "re:", "aw:", "sv:", "vs:", "antw:", "odp:", "ynt:", "res:", "rv:", "r:",
    "fw:", "fwd:", "wg:", "tr:", "enc:", "doorst:", "i:",
)  # fmt: skip
_DELAY_WORDS = (
    "delayed",
    "(delay)",
    "not yet been delivered",
    "still being retried",
    "will be retried",
    "will continue",
    "temporary error",
    "warning only",
    "warning message only",
    "deferred:",
    "will keep trying",
)
_LINE_ADDRESS = re.compile(r"^[ \t]{0,8}<([^<>\s@]{1,64}@[^<>\s]{1,255})>", re.MULTILINE)
_REPORTER = re.compile(
    r"(?:program at|mail system at host|generating server:|on the queue on)[ \t]{1,8}"
    r"(?:host[ \t]{1,8})?([\w.-]{1,255})",
    re.IGNORECASE,
)


def text_bounce(mail: ParsedMail, fields: Fields, *, trust_report: bool) -> Bounce | None:
    """Return the bounce a prose report describes, or None if the mail is not one.

    `trust_report` says the mail is a delivery-status `multipart/report` whose status part could
    not be read; the content type already proves it is a report, so no wording is required.
    """
    subject = normalised(mail.subject[:1000])
    if human_subject(mail.subject):
        return None
    # The sender first: it rules out nearly every mail before its text is read.
    if not trust_report and not looks_like_daemon(mail):
        return None
    body = mail.body[:MAX_SCAN]
    report = body[: copy_marker_at(body)]
    lowered = ascii_lower(report)
    name = "rfc3464" if trust_report else _format_of(lowered, subject)
    if not name:
        return None
    recipient, at = _recipient(mail, fields, report, lowered)
    region = report[at:] if at >= 0 else report
    status, status_at = find_status(region)
    delayed = any(word in lowered or word in subject for word in _DELAY_WORDS)
    # No code, or a bare SMTP reply (class only): the reason the text names says more.
    status = refined(status, lowered, permanent=not delayed)
    if name == "generic" and not status:
        # Generic wording alone, with neither a code nor a reason, is what a person writing
        # about a bounce produces too (even one signing as "Postmaster Team").
        return None
    return Bounce(
        original_message_id="",
        recipient=recipient,
        status=status,
        permanent=status.startswith("5") if status else not delayed,
        diagnostic=one_line(line_at(region, status_at)),
        reporting_mta=_reporter(report) or mail.from_address.rpartition("@")[2],
        format=name,
    )


def human_subject(subject: str) -> bool:
    """Return whether the subject is a person's answer or forward, or an out-of-office reply."""
    return normalised(subject[:1000]).startswith(_HUMAN_PREFIXES) or bool(oof_prefix(subject))


def looks_like_daemon(mail: ParsedMail) -> bool:
    """Return whether the sender is a mail system rather than a person."""
    local = mail.from_address.rpartition("@")[0]
    if local in _DAEMON_LOCALS or local.startswith(("mailer-daemon", "microsoftexchange")):
        return True
    name = mail.from_[:500].lower().replace(mail.from_address, " ")
    return any(word in name for word in _DAEMON_NAMES)


def copy_marker_at(body: str) -> int:
    """Return where the returned copy of the bounced mail begins in `body` (its length if not)."""
    lowered = ascii_lower(body)
    found = [at for marker in _COPY_MARKERS if (at := lowered.find(marker)) >= 0]
    return min(found, default=len(body))


def _format_of(lowered: str, subject: str) -> str:
    for fmt in _FORMATS:
        if any(phrase in lowered for phrase in fmt.phrases):
            return fmt.name
    for fmt in _FORMATS:
        if subject.startswith(fmt.subjects):
            return fmt.name
    return ""


def _recipient(mail: ParsedMail, fields: Fields, report: str, lowered: str) -> tuple[str, int]:
    """Return the failed address and where the report mentions it (-1 if it does not)."""
    unwanted = {mail.from_address, *extract_addresses(first(fields, "to")[:2048])}
    # Exim names the failed addresses in a header of their own.
    for address in addresses_in(first(fields, "x-failed-recipients")[:2048], limit=1):
        return address, lowered.find(address)
    # qmail, Yahoo, Postfix and Sendmail start a line with "<address>" for each failure.
    for match in _LINE_ADDRESS.finditer(lowered):
        address = match.group(1).rstrip(".")
        if _acceptable(address, unwanted):
            return address, match.start()
    anchors = sorted(at for anchor in _ANCHORS if (at := lowered.find(anchor)) >= 0)
    # Last resort: the gate already proved this is a failure report, and the first address in
    # its own text that is neither sender nor addressee is nearly always the failed one.
    for at in [*anchors, 0]:
        window = lowered[at : at + _ANCHOR_WINDOW] if at else lowered
        for address in addresses_in(window, limit=10):
            if _acceptable(address, unwanted):
                return address, at + window.find(address)
    return "", -1


def _acceptable(address: str, unwanted: set[str]) -> bool:
    return address not in unwanted and address.partition("@")[0] not in _DAEMON_LOCALS


def _reporter(report: str) -> str:
    match = _REPORTER.search(report)
    return match.group(1).rstrip(".").lower() if match else ""
