"""Loop protection: whether a mail may be auto-answered, and the per-address daily budget.

Place in the flow: when the postmaster's apply step is about to send an auto-response (SPEC
S8, REFERENCE §7–§8) it asks ``may_auto_answer`` (pure: the parsed mail, its control headers
and the policy in, a ``Verdict`` out) and, for each recipient it leaves, ``clear_to_send``
(suppressed by a hard bounce? over today's budget?) inside the same transaction that writes
the ticket, the article and the outbox row. Every refusal is a ``Refusal`` with a short
kebab-case reason for the ticket history and the logs.

Never answered: our own mail coming back (a verified X-PyTRS-Loop marker, or a Message-ID
pytrs made); bounces; out-of-office and other auto-replies; mailing-list mail; mail flagged as
a loop (X-Loop, Precedence, …); mail whose X-PyTRS-Loop control header (set by the postmaster
for all of the above, by a filter rule or by a trusted source) is anything but false/no; an
``auto reply`` to a ticket that is already closed (Znuny sends ``auto reply/new ticket`` or
nothing then). Recipients (Reply-To, else From) are the parsed addresses of the field, never
display names (``ParsedMail.mailboxes``); they are dropped when they match
``[loop_protection] no_auto_response_pattern`` or are one of our system addresses (or a
``+tag`` of one); only the first ``max_recipients_per_mail`` addresses of the field are
looked at at all. A Message-ID of ours in In-Reply-To does *not* count as our own mail: every
customer answering our auto-reply carries one.

The daily budget follows Znuny's ``ticket_loop_protection`` (one row per auto-response, a limit
per address per calendar day), with two differences: days are UTC days, so that daemons in
different time zones share one count, and only mail that passed every other check uses budget
(Znuny also counts mail it then suppresses). Beside Znuny the rows are Znuny's own, which
have no id (the table as the database has it: `_counted`), so both count the same sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import formataddr
from typing import Any

import re2
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config, LoopProtectionConfig
from pytrs.parsers.addresses import base_address
from pytrs.parsers.model import ParsedMail
from pytrs.schema import storable
from pytrs.schema.database import lock_keys
from pytrs.schema.outbox_repo import suppressed
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import ticket_loop_protection as tlp

LOOP_CONTROL_HEADERS = ("x-pytrs-loop", "x-otrs-loop")
# Values of X-PyTRS-Loop that mean "answering is fine" (Znuny: anything but false/no loops).
_NOT_A_LOOP = ("", "false", "no")
AUTO_REPLY = "auto reply"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why (part of) a mail gets no auto-response; ``address`` is set for one recipient."""

    reason: str
    detail: str
    address: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str  # lower-cased addr-spec
    name: str = ""

    @property
    def header(self) -> str:
        """The recipient as a To: value ("Name <address>")."""
        return formataddr((self.name, self.address))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who may get the auto-response (possibly nobody), and why the others may not."""

    recipients: tuple[Recipient, ...]
    refusals: tuple[Refusal, ...] = ()

    @property
    def allowed(self) -> bool:
        return bool(self.recipients)


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    """What ``may_auto_answer`` compares a mail against, built once per configuration."""

    no_auto_response: Any  # compiled RE2 pattern, or None for no pattern
    system_addresses: frozenset[str]
    own_domains: frozenset[str]  # domains of the Message-IDs pytrs makes
    max_recipients: int = 5  # [loop_protection] max_recipients_per_mail

    @classmethod
    def build(
        cls,
        config: Config,
        system_addresses: Iterable[str] = (),
        message_id_domains: Iterable[str] = (),
    ) -> LoopPolicy:
        """From the configuration, plus system addresses known only to the database.

        Raises re2.error for a pattern the configuration check would have refused.
        """
        addresses = {a.address.lower() for a in config.system_addresses}
        addresses.update(a.lower() for a in system_addresses)
        # Message-IDs are made under [outbound] message_id_domain, else the sender's domain.
        domains = {a.rpartition("@")[2] for a in addresses}
        domains.update(d.lower() for d in message_id_domains)
        if config.outbound.message_id_domain:
            domains.add(config.outbound.message_id_domain.lower())
        return cls(
            _compile(config.loop_protection.no_auto_response_pattern),
            frozenset(addresses),
            frozenset(domains),
            config.loop_protection.max_recipients_per_mail,
        )

    def is_system_address(self, address: str) -> bool:
        return base_address(address) in self.system_addresses

    def is_own_message_id(self, message_id: str) -> bool:
        """Whether `message_id` is one ``message.new_message_id`` makes ("<….pytrs@domain>")."""
        value = message_id.strip()
        local, at, domain = value.rpartition("@")
        return (
            bool(at) and local.endswith(".pytrs") and domain.rstrip(">").lower() in self.own_domains
        )

    def refuses_address(self, address: str) -> bool:
        return (
            self.no_auto_response is not None and self.no_auto_response.search(address) is not None
        )


def _compile(pattern: str) -> Any:
    if not pattern:
        return None
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return re2.compile(pattern, options)


def may_auto_answer(
    mail: ParsedMail,
    policy: LoopPolicy,
    *,
    control: Mapping[str, str] | None = None,
    response_type: str = AUTO_REPLY,
    ticket_closed: bool = False,
    marker_verified: bool = False,
) -> Verdict:
    """Who may get an auto-response of `response_type` to `mail`, and why not the others.

    `control` are the mail's control headers as the postmaster settled them; `marker_verified`
    says whether ``marker.read_loop_marker`` recognised an X-PyTRS-Loop marker of ours on it.
    """
    refusal = _mail_refusal(
        mail, control or {}, response_type, ticket_closed, marker_verified, policy
    )
    if refusal is not None:
        return Verdict((), (refusal,))
    candidates = _recipients(mail)
    if not candidates:
        return Verdict((), (Refusal("no-recipient", "no usable Reply-To or From address"),))
    candidates, refusals = _first_recipients(candidates, policy.max_recipients)
    kept: list[Recipient] = []
    for recipient in candidates:
        address = recipient.address
        if policy.refuses_address(address):
            refusals.append(
                Refusal("no-auto-response-address", "matches no_auto_response_pattern", address)
            )
        elif policy.is_system_address(address):
            refusals.append(Refusal("system-address", "is one of our system addresses", address))
        else:
            kept.append(recipient)
    return Verdict(tuple(kept), tuple(refusals))


def _first_recipients(
    candidates: list[Recipient], limit: int
) -> tuple[list[Recipient], list[Refusal]]:
    """The first `limit` recipients, judged or not; the rest is neither mailed nor listed one
    by one, so that a field of a thousand addresses costs neither mail nor a long trace."""
    if len(candidates) <= limit:
        return candidates, []
    refusal = Refusal(
        "too-many-recipients",
        f"{len(candidates) - limit} more recipients than max_recipients_per_mail ({limit}), "
        f"from {candidates[limit].address} on: not sent to them",
    )
    return candidates[:limit], [refusal]


def _mail_refusal(
    mail: ParsedMail,
    control: Mapping[str, str],
    response_type: str,
    ticket_closed: bool,
    marker_verified: bool,
    policy: LoopPolicy,
) -> Refusal | None:
    # Most specific reason first, so the ticket history says what the mail actually was.
    checks = (
        (marker_verified, "own-mail", "carries our X-PyTRS-Loop marker"),
        (policy.is_own_message_id(mail.message_id), "own-mail", "has a Message-ID pytrs made"),
        (mail.bounce is not None, "bounce", "is a delivery status notification"),
        (mail.feedback is not None, "complaint", "is an abuse complaint (feedback report)"),
        (mail.is_out_of_office, "out-of-office", "is an out-of-office reply"),
        (mail.is_auto_reply, "auto-reply", "is an automatic reply"),
        (mail.is_list, "mailing-list", "came through a mailing list"),
        (mail.loop, "loop", "is marked as a loop or bulk mail (X-Loop, Precedence, …)"),
    )
    for hit, reason, detail in checks:
        if hit:
            return Refusal(reason, detail)
    value = _loop_control(control)
    if value.strip().lower() not in _NOT_A_LOOP:
        return Refusal("loop-header", f"X-PyTRS-Loop: {value[:100]}")
    if response_type == AUTO_REPLY and ticket_closed:
        return Refusal("closed-ticket", "an auto reply to a ticket that is already closed")
    return None


def _loop_control(control: Mapping[str, str]) -> str:
    for name, value in control.items():
        if name.lower() in LOOP_CONTROL_HEADERS and value.strip():
            return value
    return ""


def _recipients(mail: ParsedMail) -> list[Recipient]:
    """Reply-To's addresses if it has any, else From's (REFERENCE §8 step 5), each once.

    Parsed addresses only: a display name is shown, never mailed to, whatever it decodes to.
    """
    for field_name in ("Reply-To", "From"):
        mailboxes = mail.mailboxes(field_name)
        if mailboxes:
            return [Recipient(m.address, m.name) for m in mailboxes]
    return []


# --- the daily budget ----------------------------------------------------------------------------

# Namespace of pytrs's PostgreSQL advisory locks on loop-protection addresses ("pytr").
_LOCK_SPACE = 0x70797472


async def take_budget(conn: AsyncConnection, address: str, today: date, limit: int) -> bool:
    """Count one auto-response to `address` on `today` (a UTC date) unless `limit` are counted.

    Call inside the transaction that sends the response: the count is then undone with it. Safe
    under concurrency: on PostgreSQL a transaction-scoped advisory lock on the address makes
    concurrent callers (other workers, other daemons) wait until this transaction ends, so two
    calls at the limit cannot both pass; a row lock could not do it, since at zero rows there is
    nothing to lock. Take budgets in address order where one transaction takes several, to keep
    lock waits from turning into deadlocks. SQLite's BEGIN IMMEDIATE already serialises writers.
    """
    address = _key(address)
    if limit <= 0:
        return False
    await lock_keys(conn, _LOCK_SPACE, [_lock_key(address)])
    day = today.isoformat()
    # Earlier days of this address go now (the index on sent_to finds them); other addresses'
    # go with purge_loop_protection, so that one send never scans the whole table.
    await conn.execute(delete(tlp).where(tlp.c.sent_to == address, tlp.c.sent_date != day))
    used = await conn.scalar(
        select(func.count())
        .select_from(tlp)
        .where(tlp.c.sent_to == address, tlp.c.sent_date == day)
    )
    if (used or 0) >= limit:
        return False
    await conn.execute(insert(_counted(conn)).values(sent_to=address, sent_date=day))
    return True


async def purge_loop_protection(conn: AsyncConnection, today: date) -> int:
    """Delete the counts of days before `today` (Znuny does it on every send); how many."""
    result = await conn.execute(delete(tlp).where(tlp.c.sent_date < today.isoformat()))
    return int(result.rowcount or 0)


async def clear_to_send(
    conn: AsyncConnection,
    address: str,
    config: LoopProtectionConfig,
    *,
    now: datetime | None = None,
) -> Refusal | None:
    """None when `address` may get one more auto-response now (and that one is counted), else
    why not: a hard-bounce suppression (``outbox_repo``), or today's limit reached."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:  # naive values are UTC already, as in the database
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    address = _key(address)
    found = await suppressed(conn, [address], moment)
    if address in found:
        return Refusal("suppressed", found[address].reason, address)
    limit = config.limit_for(address)
    if not await take_budget(conn, address, moment.date(), limit):
        return Refusal("daily-limit", f"{limit} auto-responses a day (UTC) already sent", address)
    return None


async def clear_many(
    conn: AsyncConnection,
    addresses: Sequence[str],
    config: LoopProtectionConfig,
    *,
    now: datetime | None = None,
) -> list[Refusal | None]:
    """`clear_to_send` for a whole batch in a handful of statements: one answer per entry of
    `addresses`, in order (an address listed twice takes two of its budget).

    The postmaster answers a batch of mail in one transaction; asking address by address cost
    four or five round trips each. The locks are taken in address order, so two batches that
    share addresses wait for each other instead of deadlocking.
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    wanted = [_key(a) for a in addresses]
    distinct = sorted(set(wanted))
    if not distinct:
        return []
    blocked = await suppressed(conn, distinct, moment)
    open_ = [a for a in distinct if a not in blocked and config.limit_for(a) > 0]
    used = await _used_today(conn, open_, moment.date())
    answers: list[Refusal | None] = []
    taken: list[dict[str, str]] = []
    day = moment.date().isoformat()
    for address in wanted:
        limit = config.limit_for(address)
        if address in blocked:
            answers.append(Refusal("suppressed", blocked[address].reason, address))
        elif used.get(address, 0) >= limit:
            answers.append(
                Refusal("daily-limit", f"{limit} auto-responses a day (UTC) already sent", address)
            )
        else:
            used[address] = used.get(address, 0) + 1
            taken.append({"sent_to": address, "sent_date": day})
            answers.append(None)
    if taken:
        await conn.execute(insert(_counted(conn)), taken)
    return answers


async def _used_today(conn: AsyncConnection, addresses: list[str], today: date) -> dict[str, int]:
    """Lock `addresses` (PostgreSQL: advisory, in order), drop their earlier days, count today."""
    if not addresses:
        return {}
    await lock_keys(conn, _LOCK_SPACE, [_lock_key(a) for a in addresses])
    day = today.isoformat()
    await conn.execute(delete(tlp).where(tlp.c.sent_to.in_(addresses), tlp.c.sent_date != day))
    rows = await conn.execute(
        select(tlp.c.sent_to, func.count())
        .where(tlp.c.sent_to.in_(addresses), tlp.c.sent_date == day)
        .group_by(tlp.c.sent_to)
    )
    return {address: int(n) for address, n in rows}


def _counted(conn: AsyncConnection) -> Table:
    """The table sends are counted in, as this database has it: beside Znuny without the id
    pytrs's own table adds (an INSERT on the model would ask the database for it back)."""
    return shape_of(conn).table(tlp)


def _key(address: str) -> str:
    """An address as `ticket_loop_protection.sent_to` holds it: lower-cased and storable (a
    sender's address is hostile input and may be longer than the column)."""
    return storable.value(tlp.c.sent_to, address.strip().lower())


def _lock_key(address: str) -> int:
    digest = hashlib.blake2b(address.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)
