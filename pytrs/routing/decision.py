"""Routing policy: from a parsed mail and what the database knows, a Decision (pure).

The postmaster worker looks up, in one batch, every ticket a mail could belong to (by the ticket
number in its subject and by the Message-IDs it references) and passes them in as `Known`; this
module then decides, without I/O, between a new ticket and a follow-up, following Znuny's
PostMaster (REFERENCE §1.2, §4, §5, §9), and records why in `reasons` (the routing trace).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytrs.routing.ticket_number import TicketNumberGenerator

# Header order in which recipients select the queue (REFERENCE §9). The SMTP/LMTP envelope
# recipient stands in for Envelope-To: it is what the sending MTA actually delivered to us.
DISPATCH_HEADERS = ("Resent-To", "Envelope-To", "To", "Cc", "Delivered-To", "X-Original-To")


class Action(enum.Enum):
    NEW_TICKET = "new_ticket"  # Znuny return code 1 (or 3: follow-up to a closed ticket)
    FOLLOW_UP = "follow_up"  # 2
    REJECT = "reject"  # 4: stored on the closed ticket, not reopened


@dataclass(frozen=True, slots=True)
class TicketRef:
    """What routing needs to know about an existing ticket."""

    id: int
    tn: str
    queue: str
    state: str
    state_type: str
    follow_up: str  # the ticket's current queue's option: possible | reject | new_ticket

    @property
    def is_closed(self) -> bool:
        return self.state_type.startswith(("close", "removed"))


@dataclass(slots=True)
class Known:
    """Tickets found for a batch: by ticket number and by stored Message-ID."""

    by_tn: dict[str, TicketRef] = field(default_factory=dict)
    by_message_id: dict[str, TicketRef] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoutingInput:
    subject: str
    message_id: str
    references: Sequence[str]
    recipients: Sequence[str]  # addresses in DISPATCH_HEADERS order, envelope recipient included
    queue_override: str = ""  # a mail account's or `pytrs deliver --queue`'s fixed queue


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    queue: str
    ticket: TicketRef | None = None  # the existing ticket (follow-up, reject, linked new ticket)
    reopen: bool = False
    followup_via: str = ""
    reasons: tuple[str, ...] = ()


def find_followup(
    item: RoutingInput, numbers: TicketNumberGenerator, known: Known
) -> tuple[TicketRef | None, str, list[str]]:
    """Znuny's follow-up checks in order: subject ticket number, then In-Reply-To/References."""
    reasons: list[str] = []
    tn = numbers.find(item.subject)
    if tn:
        ticket = known.by_tn.get(tn)
        if ticket:
            reasons.append(f"subject carries ticket number {tn}")
            return ticket, "subject", reasons
        reasons.append(f"subject number {tn} matches no ticket")
    for message_id in item.references:
        ticket = known.by_message_id.get(message_id)
        if ticket:
            reasons.append(f"references {message_id} of ticket {ticket.tn}")
            return ticket, "references", reasons
    return None, "", reasons


def choose_queue(
    item: RoutingInput, queue_for_address: Mapping[str, str], default_queue: str
) -> tuple[str, str]:
    """(queue, why): fixed queue, else the first recipient that is a system address."""
    if item.queue_override:
        return item.queue_override, f"queue fixed by source: {item.queue_override}"
    for address in item.recipients:
        queue = queue_for_address.get(address)
        if queue:
            return queue, f"recipient {address} → queue {queue}"
    return default_queue, f"no system address among recipients → default queue {default_queue}"


def decide(
    item: RoutingInput,
    numbers: TicketNumberGenerator,
    known: Known,
    queue_for_address: Mapping[str, str],
    default_queue: str,
) -> Decision:
    """The routing decision for one mail."""
    ticket, via, reasons = find_followup(item, numbers, known)
    if ticket is not None:
        if ticket.is_closed and ticket.follow_up == "reject":
            reasons.append(f"ticket is {ticket.state} and its queue rejects follow-ups")
            return Decision(Action.REJECT, ticket.queue, ticket, False, via, tuple(reasons))
        if ticket.is_closed and ticket.follow_up == "new_ticket":
            reasons.append(f"ticket is {ticket.state} and its queue opens new tickets")
            queue, why = choose_queue(item, queue_for_address, default_queue)
            reasons.append(why)
            return Decision(Action.NEW_TICKET, queue, ticket, False, via, tuple(reasons))
        # Znuny: a `new` ticket stays new; open, pending and closed ones become `open`.
        reopen = ticket.state_type not in ("new", "open")
        if reopen:
            reasons.append(f"follow-up reopens ticket from {ticket.state}")
        return Decision(Action.FOLLOW_UP, ticket.queue, ticket, reopen, via, tuple(reasons))
    queue, why = choose_queue(item, queue_for_address, default_queue)
    reasons.append(why)
    return Decision(Action.NEW_TICKET, queue, None, False, "", tuple(reasons))
