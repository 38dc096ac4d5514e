"""Planning a batch: parsed mail → routing inputs → decisions, in a safe order (pure).

The worker hands over a parsed batch and what the database knows (`Known`); this module builds
each mail's routing input (recipients in dispatch order, ticket numbers in body and attachments,
external numbers, the bounced Message-ID), names the keys to look up, orders replies after their
parents, holds back mail whose parent or first copy is still in flight elsewhere, and asks
`routing.decide` for a decision per mail. Tickets created earlier in the same batch are known
under placeholder ids (the negative inbox id) until the batch is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pytrs.authentication.authenticity import Verdict
from pytrs.parsers import ParsedMail
from pytrs.parsers.addresses import base_address
from pytrs.postmaster.batch import Planned
from pytrs.postmaster.control import canonical, strip_untrusted
from pytrs.postmaster.filters import CompiledRules, RuleHit
from pytrs.routing.decision import DISPATCH_HEADERS, Action, Policy, RoutingInput, decide
from pytrs.routing.external import ExternalNumber, ExternalRule, recognise
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema.inbox_repo import ClaimedMessage, InFlight, stored_message_id
from pytrs.schema.known_repo import Wanted
from pytrs.schema.ticket_repo import QueueInfo
from pytrs.vocabulary.known import Known, SameMail, TicketRef, fingerprint

# Body and attachment number checks read at most this much of each (numbers sit near the top).
_SCAN_CHARS = 256 * 1024


@dataclass(slots=True)
class Parsed:
    claimed: ClaimedMessage
    mail: ParsedMail
    item: RoutingInput
    control: dict[str, str] = field(default_factory=dict)  # X-PyTRS-* values for this mail
    rule_hits: tuple[RuleHit, ...] = ()
    # How a mail from an agent's address authenticated (None: not from an agent's address).
    agent_check: Verdict | None = None


def control_headers(
    message: ClaimedMessage, mail: ParsedMail, rules: CompiledRules
) -> tuple[dict[str, str], tuple[RuleHit, ...]]:
    """The control headers in force for a mail: its own, only when its source is trusted
    (REFERENCE §1.3), then what pytrs detected (loop, bounce, attachments), then what the
    postmaster filter rules set on top. Rules can match on the detected headers, as Znuny's
    rules match on what its DetectBounceEmail and DetectAttachment filters set."""
    headers = rule_headers(message, mail)
    control: dict[str, str] = {}
    for name, value in headers:
        known = canonical(name)
        if known and known not in control:
            control[known] = value
    result = rules.apply(headers, mail.body, explain=False)
    control.update(result.control)
    return control, result.hits


def rule_headers(message: ClaimedMessage, mail: ParsedMail) -> list[tuple[str, str]]:
    """The headers the filter rules see: the mail's own (control headers only from a trusted
    source), with what pytrs detected in place of any the mail claimed."""
    own = mail.headers if message.trusted else strip_untrusted(mail.headers)[0]
    detected = detected_headers(mail)
    replaced = {name for name, _ in detected}
    return [(n, v) for n, v in own if canonical(n) not in replaced] + detected


def detected_headers(mail: ParsedMail) -> list[tuple[str, str]]:
    """Control headers from what the parser recognised. These replace any the mail carries:
    a mail cannot claim not to be a bounce, or hide that it is a loop."""
    found: list[tuple[str, str]] = []
    if mail.loop or mail.is_auto_reply or mail.is_list or mail.bounce or mail.feedback:
        found.append(("X-PyTRS-Loop", "yes"))
    if mail.bounce is not None:
        found.append(("X-PyTRS-Bounce", "1"))
        if mail.bounce.original_message_id:
            found.append(("X-PyTRS-Bounce-OriginalMessageID", mail.bounce.original_message_id))
        error = " ".join(p for p in (mail.bounce.status, mail.bounce.recipient) if p)
        found.append(("X-PyTRS-Bounce-ErrorMessage", error or "undeliverable"))
    # Znuny's DetectAttachment: parts with a disposition, except inline images shown in HTML.
    attached = [
        part for part in mail.attachments
        if part.disposition and not (part.disposition == "inline" and part.content_id)
    ]  # fmt: skip
    found.append(("X-PyTRS-AttachmentExists", "yes" if attached else "no"))
    found.append(("X-PyTRS-AttachmentCount", str(len(attached))))
    return found


def _reported_message_id(mail: ParsedMail) -> str:
    report = mail.bounce or mail.feedback
    return report.original_message_id if report is not None else ""


def is_ignored(control: dict[str, str]) -> bool:
    """Znuny's X-OTRS-Ignore: "yes" or "true" anywhere in the value, any case."""
    value = control.get("X-PyTRS-Ignore", "").lower()
    return "yes" in value or "true" in value


@dataclass(frozen=True, slots=True)
class Recognition:
    """What the planner looks for in a mail beyond its headers (from `[postmaster]` and
    `[[external_ticket_numbers]]`)."""

    numbers: TicketNumberGenerator
    check_body: bool = False
    check_attachments: bool = False
    external: tuple[ExternalRule, ...] = ()
    comment_tag: str = "comment"


def routing_input(
    message: ClaimedMessage,
    mail: ParsedMail,
    control: dict[str, str] | None = None,
    recognition: Recognition | None = None,
) -> RoutingInput:
    """Recipients in REFERENCE §9 order (the envelope recipient standing in for Envelope-To),
    plus every clue to an existing ticket the configured follow-up checks look for."""
    control = control or {}
    header_addresses = [base_address(a) for a in mail.addresses(*DISPATCH_HEADERS)]
    resent = [base_address(a) for a in mail.addresses("Resent-To")]
    recipients: list[str] = resent[:]
    if message.recipient:
        recipients.append(base_address(message.recipient))
    recipients.extend(a for a in header_addresses if a not in recipients)
    body_number = attachment_number = ""
    external: tuple[ExternalNumber, ...] = ()
    comment = False
    if recognition is not None:
        # The address the mail was delivered to decides; a fetched mail has none, then To
        # does. A Cc to the comment address does not turn an answer into a note.
        suffix = f"+{recognition.comment_tag}@".lower()
        delivered_to = [message.recipient] if message.recipient else mail.addresses("To")
        comment = any(suffix in a.lower() for a in delivered_to)
        numbers = recognition.numbers
        if recognition.check_body:
            body_number = numbers.find(mail.body[:_SCAN_CHARS]) or ""
        if recognition.check_attachments:
            attachment_number = _attachment_number(mail, numbers)
        external = recognise(recognition.external, mail.from_address, mail.subject, mail.body)
    return RoutingInput(
        subject=mail.subject,
        message_id=mail.message_id,
        references=mail.references,
        recipients=recipients,
        # X-PyTRS-Queue beats a mail account's or the pipe's fixed queue (REFERENCE §1.2).
        queue_override=control.get("X-PyTRS-Queue", "") or message.queue_name,
        sender=mail.from_address.lower(),
        senders=mail.addresses("From"),
        body_number=body_number,
        attachment_number=attachment_number,
        # A complaint is filed like a bounce: on the ticket of the mail it is about.
        bounced_message_id=_reported_message_id(mail),
        external=external,
        dedup_key=message.dedup_key,
        fingerprint=fingerprint(mail.from_, mail.to, mail.cc, mail.subject),
        control=control,
        comment=comment,
    )


def _attachment_number(mail: ParsedMail, numbers: TicketNumberGenerator) -> str:
    """The first ticket number in an attached (not inline) file (Znuny's Attachments check)."""
    for part in mail.attachments:
        if part.disposition and part.disposition != "inline":
            # Ticket numbers are ASCII: latin-1 decodes any bytes without failing.
            found = numbers.find(part.content[:_SCAN_CHARS].decode("latin-1"))
            if found:
                return found
    return ""


def lookup_keys(batch: list[Parsed], numbers: TicketNumberGenerator) -> Wanted:
    """Every key the batch's follow-up checks need looked up."""
    tns: set[str] = set()
    message_ids: set[str] = set()
    externals: set[tuple[str, str]] = set()
    for p in batch:
        item = p.item
        tn = numbers.find(item.subject)
        tns.update(n for n in (tn, item.body_number, item.attachment_number) if n)
        message_ids.update(item.references)
        if item.bounced_message_id:
            message_ids.add(item.bounced_message_id)
        externals.update((e.field, e.value) for e in item.external)
    return Wanted(
        tns, message_ids, externals,
        {p.claimed.dedup_key for p in batch if p.claimed.dedup_key},
        [p.claimed.id for p in batch],
    )  # fmt: skip


def outside_references(batch: list[Parsed]) -> set[str]:
    """Message-IDs the batch refers to that are not mail of the batch itself."""
    in_batch = {p.mail.message_id for p in batch}
    return {ref for p in batch for ref in p.item.references if ref not in in_batch}


def split_waiting(
    batch: list[Parsed], known: Known, in_flight: InFlight, numbers: TicketNumberGenerator
) -> tuple[list[Parsed], list[Parsed]]:
    """(route now, wait): mail whose parent, or an earlier copy of itself, is still in flight.

    With several workers a reply can be routed while its parent is uncommitted in another
    worker's batch; it would become a ticket of its own. It waits a moment instead (without
    counting an attempt), unless its subject already names a known ticket or the parent's
    article became visible after `in_flight` was read (its batch committed meanwhile).
    Likewise a second copy of one mail (sent to two system addresses) waits for the first
    copy's outcome.
    """
    keep: list[Parsed] = []
    wait: list[Parsed] = []
    for p in batch:
        has_number = (tn := numbers.find(p.item.subject)) and tn in known.by_tn
        waits = not has_number and any(
            ref not in known.by_message_id and stored_message_id(ref) in in_flight.message_ids
            for ref in p.item.references
        )
        first_copy = in_flight.first_copies.get(p.claimed.dedup_key)
        waits = waits or (first_copy is not None and first_copy < p.claimed.id)
        (wait if waits else keep).append(p)
    return keep, wait


def plan_batch(
    batch: list[Parsed],
    known: Known,
    queues: dict[str, QueueInfo],
    numbers: TicketNumberGenerator,
    policy: Policy,
) -> list[Planned]:
    """A decision per mail, parents before their replies; `known` learns the new tickets and
    where each mail went, so later mail of the batch can refer to it."""
    planned: list[Planned] = []
    for p in parents_first(batch):
        decision = decide(p.item, numbers, known, policy)
        if decision.queue not in queues:
            reason = f"queue {decision.queue} does not exist → {policy.default_queue}"
            decision = replace(
                decision, queue=policy.default_queue, reasons=(*decision.reasons, reason)
            )
        planned.append(Planned(p.claimed, p.mail, p.item, decision, control=p.control,
                               rule_hits=p.rule_hits))  # fmt: skip
        target = decision.ticket
        if decision.action is Action.NEW_TICKET:
            # Later mail of the same batch may already reply to this one.
            queue = queues[decision.queue]
            target = TicketRef(
                -p.claimed.id, "", decision.queue, "new", "new", queue.follow_up,
                queue.follow_up_lock,
            )  # fmt: skip
            known.by_message_id.setdefault(p.mail.message_id, target)
        if target is not None and p.claimed.dedup_key and decision.action is not Action.DUPLICATE:
            key = (p.claimed.dedup_key, p.item.fingerprint)
            known.same_mail.setdefault(key, SameMail(target, p.claimed.id))
    return planned


def name_placeholders(planned: list[Planned]) -> None:
    """Mail routed to a ticket created in the same batch learns its number (history, trace)."""
    tn_by_placeholder = {-p.claimed.id: p.tn for p in planned if p.tn}
    for p in planned:
        ref = p.decision.ticket
        if ref is not None and ref.id < 0 and ref.id in tn_by_placeholder:
            p.decision = replace(p.decision, ticket=replace(ref, tn=tn_by_placeholder[ref.id]))


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
