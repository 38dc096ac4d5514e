"""Routing policy: from a parsed mail and what the database knows, a Decision (pure).

The postmaster worker looks up, in one batch, every ticket a mail could belong to (by the ticket
numbers in its subject, body and attachments, by the Message-IDs it references or bounced, by
external ticket numbers, and earlier copies of the same mail) and passes them in as `Known`;
this module then decides, without I/O, between a new ticket, a follow-up, a reject and "already
stored", following Znuny's PostMaster (REFERENCE §1.2, §4, §5, §9), and records why in
`reasons` (the routing trace).

Beyond Znuny: a follow-up found only through a number (subject, body, attachment) from a sender
who is not a participant of that ticket does not silently join it (SPEC S7). Every From address
must be a participant, and none of our own system addresses ever is: mail that claims one comes
from outside (pytrs does not mail itself), so it is a stranger's, and flagged.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytrs.parsers.addresses import base_address
from pytrs.routing.external import ExternalNumber
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.vocabulary.known import SYSTEM_USER_ID, Known, SameMail, TicketRef

# Header order in which recipients select the queue (REFERENCE §9). The SMTP/LMTP envelope
# recipient stands in for Envelope-To: it is what the sending MTA actually delivered to us.
DISPATCH_HEADERS = ("Resent-To", "Envelope-To", "To", "Cc", "Delivered-To", "X-Original-To")

KEEP_STATE = "X-PyTRS-FollowUp-State-Keep"
FOLLOWUP_STATE = "X-PyTRS-FollowUp-State"

# Follow-up checks that only see a number, which anybody can copy into a mail; a follow-up
# found this way is bound to the ticket's participants. References and bounces name one of
# our Message-IDs, and external numbers come from rules an admin wrote for a known system.
SENDER_BOUND = frozenset({"subject", "body", "attachment"})


class Action(enum.Enum):
    NEW_TICKET = "new_ticket"  # Znuny return code 1 (or 3: follow-up to a closed ticket)
    FOLLOW_UP = "follow_up"  # 2
    REJECT = "reject"  # 4: stored on the closed ticket, not reopened
    DUPLICATE = "duplicate"  # another copy of this very mail is already stored


@dataclass(frozen=True, slots=True)
class RoutingInput:
    subject: str
    message_id: str
    references: Sequence[str]
    recipients: Sequence[str]  # addresses in DISPATCH_HEADERS order, envelope recipient included
    queue_override: str = ""  # X-PyTRS-Queue, else a mail account's or the pipe's fixed queue
    sender: str = ""  # the From address the ticket's customer is taken from, lower-cased
    senders: tuple[str, ...] = ()  # every From address, lower-cased; () = just `sender`
    body_number: str = ""  # a ticket number found in the body (when that check is on)
    attachment_number: str = ""  # … in an attached file (when that check is on)
    bounced_message_id: str = ""  # the Message-ID a bounce reports as undeliverable
    external: tuple[ExternalNumber, ...] = ()
    dedup_key: str = ""  # the inbox's Message-ID + body key
    fingerprint: str = ""  # see `fingerprint`
    control: Mapping[str, str] = field(default_factory=dict)  # X-PyTRS-* in force
    agent: str = ""  # login of the agent this mail authenticated as ("" = not an agent's)
    comment: bool = False  # sent to a system address's comment form (local+comment@domain)
    unverified_agent: str = ""  # from an agent's address but not authenticated: why


@dataclass(frozen=True, slots=True)
class Policy:
    """The configuration routing applies (from `[postmaster]`, `[[system_addresses]]`)."""

    queue_for_address: Mapping[str, str]
    default_queue: str
    states: frozenset[str] = frozenset()  # known state names (X-PyTRS-FollowUp-State)
    unknown_sender_followup: str = "new_ticket"  # new_ticket | internal
    bounce_as_followup: bool = True
    followup_state: str = "open"
    followup_state_closed: str = ""
    same_mail_other_queue: str = "new_ticket"  # new_ticket | same_ticket

    def is_own_address(self, address: str) -> bool:
        """One of our system addresses, in any case and with any `+tag`."""
        return base_address(address) in self.queue_for_address


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    queue: str
    # The existing ticket: followed up, rejected, already holding this mail, or (new ticket)
    # the one this ticket is opened instead of.
    ticket: TicketRef | None = None
    new_state: str = ""  # the state a follow-up sets; "" keeps the ticket's state
    lock: bool = False  # follow-up lock: lock the reopened ticket to its owner
    internal: bool = False  # follow-up from a non-participant: internal, flagged for review
    followup_via: str = ""
    reasons: tuple[str, ...] = ()
    external: ExternalNumber | None = None  # the number that routed it, or to store
    duplicate_of: SameMail | None = None
    stranger: bool = False  # a new ticket instead of a follow-up from a non-participant
    own_address: str = ""  # a From address of ours, on mail from outside: flagged

    @property
    def reopen(self) -> bool:
        return bool(self.new_state)


def find_followup(
    item: RoutingInput, numbers: TicketNumberGenerator, known: Known
) -> tuple[TicketRef | None, str, list[str], ExternalNumber | None]:
    """Znuny's follow-up checks in order (REFERENCE §4): subject number, In-Reply-To and
    References, the bounced Message-ID, body and attachment numbers, external numbers."""
    reasons: list[str] = []
    tn = numbers.find(item.subject)
    found = _by_number(tn, "subject", known, reasons)
    if found:
        return found, "subject", reasons, None
    for message_id in item.references:
        ticket = known.by_message_id.get(message_id)
        if ticket:
            reasons.append(f"references {message_id} of ticket {ticket.tn}{_merged(ticket)}")
            return ticket, "references", reasons, None
    if item.bounced_message_id:
        ticket = known.by_message_id.get(item.bounced_message_id)
        if ticket:
            reasons.append(f"bounce of {item.bounced_message_id}, an article of ticket {ticket.tn}")
            return ticket, "bounce", reasons, None
        reasons.append(f"bounce of {item.bounced_message_id}, which is none of our articles")
    for via, number in (("body", item.body_number), ("attachment", item.attachment_number)):
        found = _by_number(number, via, known, reasons)
        if found:
            return found, via, reasons, None
    for external in item.external:
        ticket = known.by_external.get((external.field, external.value))
        if ticket and (not external.state_types or ticket.state_type in external.state_types):
            reasons.append(
                f"external number {external.value} (rule {external.rule}) is stored on "
                f"ticket {ticket.tn}"
            )
            return ticket, "external", reasons, external
    return None, "", reasons, None


def _by_number(tn: str | None, where: str, known: Known, reasons: list[str]) -> TicketRef | None:
    if not tn:
        return None
    ticket = known.by_tn.get(tn)
    if ticket is None:
        reasons.append(f"{where} number {tn} matches no ticket")
        return None
    reasons.append(f"{where} carries ticket number {tn}{_merged(ticket)}")
    return ticket


def _merged(ticket: TicketRef) -> str:
    if not ticket.merged_from:
        return ""
    return f", merged into ticket {ticket.tn}" if len(ticket.merged_from) == 1 else (
        f", merged via {' → '.join(ticket.merged_from[1:])} into ticket {ticket.tn}"
    )  # fmt: skip


def senders(item: RoutingInput) -> tuple[str, ...]:
    """Every From address of the mail."""
    return item.senders or ((item.sender,) if item.sender else ())


def own_sender(item: RoutingInput, policy: Policy) -> str:
    """The first From address that is one of ours, or ""."""
    return next((s for s in senders(item) if policy.is_own_address(s)), "")


def is_participant(ticket: TicketRef, item: RoutingInput, known: Known, policy: Policy) -> bool:
    """Every From address is the ticket's customer or a correspondent, and none is ours; or
    the mail references one of the ticket's messages."""
    participants = known.participants.get(ticket.id, frozenset())
    found = senders(item)
    if found and all(s in participants and not policy.is_own_address(s) for s in found):
        return True
    for ref in item.references:
        referenced = known.by_message_id.get(ref)
        if referenced is not None and referenced.id == ticket.id:
            return True
    return False


def _stranger(ticket: TicketRef, item: RoutingInput, known: Known, policy: Policy) -> str:
    """Who of the senders makes the mail a stranger's, for the routing trace."""
    participants = known.participants.get(ticket.id, frozenset())
    outsider = next((s for s in senders(item) if s not in participants), "")
    return outsider or own_sender(item, policy) or "the sender"


def choose_queue(item: RoutingInput, policy: Policy) -> tuple[str, str]:
    """(queue, why): fixed queue, else the first recipient that is a system address."""
    if item.queue_override:
        return item.queue_override, f"queue fixed by X-PyTRS-Queue or source: {item.queue_override}"
    for address in item.recipients:
        queue = policy.queue_for_address.get(address)
        if queue:
            return queue, f"recipient {address} → queue {queue}"
    default = policy.default_queue
    return default, f"no system address among recipients → default queue {default}"


def decide(
    item: RoutingInput, numbers: TicketNumberGenerator, known: Known, policy: Policy
) -> Decision:
    """The routing decision for one mail."""
    ticket, via, reasons, external = find_followup(item, numbers, known)
    if item.unverified_agent:
        reasons.insert(0, f"from an agent's address, not authenticated ({item.unverified_agent}):"
                       " handled as customer mail")  # fmt: skip
    own = "" if item.agent else own_sender(item, policy)
    if own:
        reasons.insert(0, f"from {own}, one of our own addresses, but from outside: handled "
                       "as a stranger's mail")  # fmt: skip
    internal = False
    bound = via in SENDER_BOUND and not item.agent  # agents answer any ticket
    if ticket is not None and bound and not is_participant(ticket, item, known, policy):
        reasons.append(
            f"{_stranger(ticket, item, known, policy)} is neither customer nor correspondent "
            f"of ticket {ticket.tn} and references none of its messages"
        )
        if policy.unknown_sender_followup == "internal":
            internal = True
            reasons.append("→ internal article, flagged for review")
        else:
            reasons.append("→ a new ticket, not a follow-up")
            decision = _new_ticket(item, policy, reasons, ticket, via, external)
            decision = dataclasses.replace(decision, stranger=True, own_address=own)
            return _same_mail(decision, item, known, policy)
    if ticket is not None:
        decision = _follow_up(item, policy, ticket, via, internal, reasons, external)
    else:
        # An unknown external number is stored on the new ticket (Znuny's ETNR).
        decision = _new_ticket(item, policy, reasons, None, "", next(iter(item.external), None))
    return _same_mail(dataclasses.replace(decision, own_address=own), item, known, policy)


def _new_ticket(
    item: RoutingInput, policy: Policy, reasons: list[str], linked: TicketRef | None,
    via: str, external: ExternalNumber | None,
) -> Decision:  # fmt: skip
    queue, why = choose_queue(item, policy)
    reasons.append(why)
    return Decision(
        Action.NEW_TICKET, queue, linked, followup_via=via, reasons=tuple(reasons),
        external=external,
    )  # fmt: skip


def _follow_up(
    item: RoutingInput, policy: Policy, ticket: TicketRef, via: str, internal: bool,
    reasons: list[str], external: ExternalNumber | None,
) -> Decision:  # fmt: skip
    closed = ticket.is_closed
    if item.agent:
        # An agent's answer or note never reopens, rejects or forks the ticket: the agent
        # decides its state (Znuny's agent articles do not go through the follow-up options).
        reasons.append(
            f"answer by agent {item.agent}" + (" (internal note)" if item.comment else "")
        )
        return Decision(
            Action.FOLLOW_UP, ticket.queue, ticket, followup_via=via, reasons=tuple(reasons),
            external=external,
        )  # fmt: skip
    if via == "bounce" and policy.bounce_as_followup:
        reasons.append("bounces are follow-ups whatever the queue's option")
    elif closed and not internal and ticket.follow_up == "reject":
        reasons.append(f"ticket is {ticket.state} and its queue rejects follow-ups")
        return Decision(
            Action.REJECT, ticket.queue, ticket, followup_via=via, reasons=tuple(reasons),
            external=external,
        )  # fmt: skip
    elif closed and not internal and ticket.follow_up == "new_ticket":
        reasons.append(f"ticket is {ticket.state} and its queue opens new tickets")
        return _new_ticket(item, policy, reasons, ticket, via, None)
    new_state = "" if internal else _follow_up_state(item, policy, ticket, reasons)
    lock = not internal and closed and ticket.follow_up_lock and ticket.owner_id != SYSTEM_USER_ID
    if lock:
        reasons.append("queue has follow-up lock: ticket locked to its owner")
    return Decision(
        Action.FOLLOW_UP, ticket.queue, ticket, new_state, lock, internal, via, tuple(reasons),
        external,
    )  # fmt: skip


def _follow_up_state(
    item: RoutingInput, policy: Policy, ticket: TicketRef, reasons: list[str]
) -> str:
    """Znuny's follow-up state (REFERENCE §5): the keep-state header keeps it; an explicit
    X-PyTRS-FollowUp-State sets it; else a `new` ticket stays new and others take the
    configured follow-up state (open)."""
    if item.control.get(KEEP_STATE, "").strip() not in ("", "0"):
        reasons.append("state kept (X-PyTRS-FollowUp-State-Keep)")
        return ""
    wanted = item.control.get(FOLLOWUP_STATE, "").strip()
    if wanted and policy.states and wanted not in policy.states:
        reasons.append(f"X-PyTRS-FollowUp-State {wanted!r} is no known state; ignored")
        wanted = ""
    if wanted:
        explicit = True
    elif ticket.state_type == "new":
        return ""
    else:
        explicit = False
        closed_state = policy.followup_state_closed if ticket.is_closed else ""
        wanted = closed_state or policy.followup_state
    if wanted == ticket.state:
        return ""
    source = "X-PyTRS-FollowUp-State" if explicit else "follow-up"
    reasons.append(f"{source} moves ticket from {ticket.state} to {wanted}")
    return wanted


def _same_mail(decision: Decision, item: RoutingInput, known: Known, policy: Policy) -> Decision:
    """One mail that reached several system addresses is stored once per queue (or once at
    all, per `same_mail_other_queue`) — Znuny's MessageID follow-up check, made exact by
    comparing the body as well as the Message-ID."""
    copy = known.same_mail.get((item.dedup_key, item.fingerprint)) if item.dedup_key else None
    if copy is None:
        return decision
    if decision.action is Action.NEW_TICKET:
        same = copy.ticket.queue == decision.queue
    else:
        same = decision.ticket is not None and copy.ticket.id == decision.ticket.id
    where = f"ticket {copy.ticket.tn or '(new)'} in queue {copy.ticket.queue}"
    if not same and policy.same_mail_other_queue == "new_ticket":
        return dataclasses.replace(
            decision,
            reasons=(*decision.reasons, f"another copy went to {where}; other queue → own ticket"),
        )
    return Decision(
        Action.DUPLICATE, copy.ticket.queue, copy.ticket, followup_via="same-mail",
        reasons=(
            *decision.reasons, f"the same mail is already stored on {where} (inbox {copy.inbox_id})"
        ),
        duplicate_of=copy,
    )  # fmt: skip
