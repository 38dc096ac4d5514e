"""Planning a batch: parsed mail → routing inputs → decisions, in a safe order (pure).

The worker hands over a parsed batch and what the database knows (`Known`); this module builds
each mail's routing input (recipients in dispatch order), orders replies after their parents,
holds back replies whose parent is still in flight elsewhere, and asks `routing.decide` for a
decision per mail. Tickets created earlier in the same batch are known under placeholder ids
(the negative inbox id) until the batch is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from pytrs.gateway.addresses import base_address
from pytrs.parsers import ParsedMail
from pytrs.postmaster.apply import Planned
from pytrs.postmaster.control import canonical, strip_untrusted
from pytrs.postmaster.filters import CompiledRules, RuleHit
from pytrs.routing.decision import (
    DISPATCH_HEADERS,
    Action,
    Decision,
    Known,
    RoutingInput,
    TicketRef,
    decide,
)
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema.inbox_repo import MESSAGE_ID_MAX, ClaimedMessage
from pytrs.schema.ticket_repo import QueueInfo


@dataclass(slots=True)
class Parsed:
    claimed: ClaimedMessage
    mail: ParsedMail
    item: RoutingInput
    control: dict[str, str] = field(default_factory=dict)  # X-PyTRS-* values for this mail
    rule_hits: tuple[RuleHit, ...] = ()


def control_headers(
    message: ClaimedMessage, mail: ParsedMail, rules: CompiledRules
) -> tuple[dict[str, str], tuple[RuleHit, ...]]:
    """The control headers in force for a mail: its own, only when its source is trusted
    (REFERENCE §1.3), then what the postmaster filter rules set on top."""
    headers = mail.headers if message.trusted else strip_untrusted(mail.headers)[0]
    control: dict[str, str] = {}
    for name, value in headers:
        known = canonical(name)
        if known and known not in control:
            control[known] = value
    result = rules.apply(headers, mail.body, explain=False)
    control.update(result.control)
    return control, result.hits


def is_ignored(control: dict[str, str]) -> bool:
    """Znuny's X-OTRS-Ignore: "yes" or "true" anywhere in the value, any case."""
    value = control.get("X-PyTRS-Ignore", "").lower()
    return "yes" in value or "true" in value


def routing_input(
    message: ClaimedMessage, mail: ParsedMail, control: dict[str, str] | None = None
) -> RoutingInput:
    """Recipients in REFERENCE §9 order, the envelope recipient standing in for Envelope-To."""
    header_addresses = [base_address(a) for a in mail.addresses(*DISPATCH_HEADERS)]
    resent = [base_address(a) for a in mail.addresses("Resent-To")]
    recipients: list[str] = resent[:]
    if message.recipient:
        recipients.append(base_address(message.recipient))
    recipients.extend(a for a in header_addresses if a not in recipients)
    return RoutingInput(
        subject=mail.subject,
        message_id=mail.message_id,
        references=mail.references,
        recipients=recipients,
        # X-PyTRS-Queue beats a mail account's or the pipe's fixed queue (REFERENCE §1.2).
        queue_override=(control or {}).get("X-PyTRS-Queue", "") or message.queue_name,
    )


def unresolved_references(batch: list[Parsed], known: Known) -> set[str]:
    """Message-IDs the batch refers to that are neither stored articles nor in the batch."""
    in_batch = {p.mail.message_id for p in batch}
    return {
        ref
        for p in batch
        for ref in p.item.references
        if ref not in known.by_message_id and ref not in in_batch
    }


def split_waiting(
    batch: list[Parsed], known: Known, pending: Collection[str], numbers: TicketNumberGenerator
) -> tuple[list[Parsed], list[Parsed]]:
    """(route now, wait): replies whose parent is still `pending` in the inbox wait.

    With several workers a reply can be routed while its parent is uncommitted in another
    worker's batch; it would become a ticket of its own. It waits a moment instead (without
    counting an attempt), unless its subject already names a known ticket.
    """
    keep: list[Parsed] = []
    wait: list[Parsed] = []
    for p in batch:
        has_number = (tn := numbers.find(p.item.subject)) and tn in known.by_tn
        waits = not has_number and any(ref[:MESSAGE_ID_MAX] in pending for ref in p.item.references)
        (wait if waits else keep).append(p)
    return keep, wait


def plan_batch(
    batch: list[Parsed],
    known: Known,
    queues: dict[str, QueueInfo],
    numbers: TicketNumberGenerator,
    queue_for_address: dict[str, str],
    default_queue: str,
) -> list[Planned]:
    """A decision per mail, parents before their replies; `known` learns the new tickets."""
    planned: list[Planned] = []
    for p in parents_first(batch):
        decision = decide(p.item, numbers, known, queue_for_address, default_queue)
        if decision.queue not in queues:
            reason = f"queue {decision.queue} does not exist → {default_queue}"
            decision = Decision(
                decision.action, default_queue, decision.ticket, decision.reopen,
                decision.followup_via, (*decision.reasons, reason),
            )  # fmt: skip
        planned.append(Planned(p.claimed, p.mail, p.item, decision, control=p.control,
                               rule_hits=p.rule_hits))  # fmt: skip
        if decision.action is Action.NEW_TICKET:
            # Later mail of the same batch may already reply to this one.
            placeholder = TicketRef(
                -p.claimed.id, "", decision.queue, "new", "new", queues[decision.queue].follow_up
            )
            known.by_message_id.setdefault(p.mail.message_id, placeholder)
    return planned


def name_placeholders(planned: list[Planned]) -> None:
    """Follow-ups to a ticket created in the same batch learn its number (history, trace)."""
    tn_by_placeholder = {-p.claimed.id: p.tn for p in planned if p.tn}
    for p in planned:
        ref = p.decision.ticket
        if ref is not None and ref.id < 0 and ref.id in tn_by_placeholder:
            fixed = TicketRef(
                ref.id, tn_by_placeholder[ref.id], ref.queue, ref.state, ref.state_type,
                ref.follow_up,
            )  # fmt: skip
            p.decision = Decision(
                p.decision.action, p.decision.queue, fixed, p.decision.reopen,
                p.decision.followup_via, p.decision.reasons,
            )  # fmt: skip


def parents_first(batch: list[Parsed]) -> list[Parsed]:
    """The batch in arrival order, except that a reply follows the mail it references.

    Concurrent SMTP sessions can commit a reply a moment before its parent; routed in that
    order, the reply would open a ticket of its own.
    """
    index = {p.mail.message_id: n for n, p in enumerate(batch)}
    placed: set[int] = set()
    ordered: list[Parsed] = []

    def place(n: int, depth: int = 0) -> None:
        if n in placed:
            return
        placed.add(n)  # before recursing: reference cycles cannot loop
        if depth < 50:
            for ref in batch[n].item.references:
                parent = index.get(ref)
                if parent is not None and parent > n:
                    place(parent, depth + 1)
        ordered.append(batch[n])

    for n in range(len(batch)):
        place(n)
    return ordered
