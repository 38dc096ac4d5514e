"""Reason classes of bounces: the status a failure report means when it writes no code.

Used by `bounce_families` and `bouncetext` after a report has been recognised: many formats
(KDDI, Exchange 2003, fml, Mimecast, Amazon SES …) say *why* a mail failed in words or in a
vendor code only. The class is mapped to the RFC 3463 code that says the same, with the class
digit the report's permanence gives (a full mailbox is 4.2.2 while retried, 5.2.2 once given up).
"""

from __future__ import annotations

# (reason, lower-case phrases, detail of the status code). Checked in order: the first reason
# with a phrase in the text wins, so narrower reasons come first.
_REASONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("expired", ("could not deliver for the last", "delivery time expired",
                 "message expired", "action: expired",
                 "in the queue too long"), "4.7"),
    ("mailbox-full", ("mailbox is full", "mailbox full", "over quota", "quota exceeded",
                      "exceeded storage", "insufficient storage", "mailboxfull"), "2.2"),
    ("host-unknown", ("dns lookup failure", "host not found", "domain doesnt exist",
                      "domain does not exist", "remote domain doesn",
                      "couldn't find any host"), "1.2"),
    ("too-large", ("message too large", "exceeds size limit", "message size exceeds",
                   "messagetoolarge"), "3.4"),
    ("user-unknown", ("user unknown", "unknown user", "no such user", "user not exist",
                      "name is not recognized", "unknown recipient", "does not exist",
                      "possibly incorrect", "no mailbox here", "address rejected",
                      "not a valid recipient", "no valid recipients", "000c05a6"), "1.1"),
    ("no-answer", ("connection timed out", "connection refused", "no route to host"), "4.1"),
    ("blocked", ("spam", "blocked", "blacklist", "denied", "not member", "not a member",
                 "rejected", "relay error", "contentrejected", "policy"), "7.1"),
)  # fmt: skip

# The basic class of an expired mail is transient: the address may well be fine.
_TRANSIENT_REASONS = frozenset({"expired"})


def reason_of(lowered: str) -> str:
    """Return the reason class the (lower-cased) report text names, or ""."""
    for reason, phrases, _detail in _REASONS:
        if any(phrase in lowered for phrase in phrases):
            return reason
    return ""


def status_for(reason: str, *, permanent: bool) -> str:
    """Return the enhanced status code for `reason` ("" for none), 5.x.x when `permanent`."""
    for name, _phrases, detail in _REASONS:
        if name == reason:
            if name in _TRANSIENT_REASONS:
                return f"4.{detail}"
            return f"{'5' if permanent else '4'}.{detail}"
    return ""


def refined(status: str, lowered: str, *, permanent: bool) -> str:
    """Return `status`, or the reason class's code when `status` is empty or class-only (x.0.0).

    A bare SMTP reply ("550") only gives the class; the words next to it usually say more.
    """
    if status and not status.endswith(".0.0"):
        return status
    permanent = status.startswith("5") if status else permanent
    return status_for(reason_of(lowered), permanent=permanent) or status
