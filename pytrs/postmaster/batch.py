"""The postmaster's batch record: each claimed mail with its parse, routing input and decision,
and what the batch's transaction knows while it writes (`ApplyContext`).

Made by `planning`, written by `apply` (through the ticket service's batch functions) and
answered by `responders.answers`; a module of its own so that none of them imports another
for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytrs.parsers import ParsedMail
from pytrs.postmaster.changes import Lookups
from pytrs.postmaster.filters import RuleHit
from pytrs.routing.decision import Decision, RoutingInput
from pytrs.routing.subject import CleanOptions
from pytrs.schema.inbox_repo import ClaimedMessage
from pytrs.schema.ticket_repo import CustomerInfo, QueueInfo
from pytrs.tickets.model import TicketRecord


@dataclass(slots=True)
class Planned:
    """One claimed message with its parse, its routing input and its decision."""

    claimed: ClaimedMessage
    mail: ParsedMail
    item: RoutingInput
    decision: Decision
    tn: str = ""  # allocated number when the decision creates a ticket
    control: dict[str, str] = field(default_factory=dict)  # X-PyTRS-* in force
    rule_hits: tuple[RuleHit, ...] = ()


@dataclass(slots=True)
class ApplyContext:
    queues: dict[str, QueueInfo]
    customers: dict[str, CustomerInfo]
    hook: str
    now: datetime
    lookups: Lookups = field(default_factory=lambda: Lookups({}, {}, {}))
    # Article ids of referenced Message-IDs: a bounce records a send error on its article.
    articles_by_message_id: dict[str, int] = field(default_factory=dict)
    clean: CleanOptions = field(default_factory=lambda: CleanOptions())
    results: list[dict[str, Any]] = field(default_factory=list)
    # Tickets created earlier in this batch, by the placeholder id routing saw (negative).
    created: dict[int, int] = field(default_factory=dict)
    # Every ticket the batch writes to, as the batch leaves it so far (two follow-ups to one
    # ticket in one batch see each other's changes).
    tickets: dict[int, TicketRecord] = field(default_factory=dict)
    # How long an address that bounced for good gets no more mail ([outbound]).
    suppression_days: float = 30.0
    # Whether a complaint suppresses its address too ([outbound] suppress_on_complaint).
    suppress_on_complaint: bool = True
