"""The postmaster's routing set-up: what turns a mail, the filter rules and the known tickets
into a decision, built once from the configuration.

Place in the flow: the worker (`postmaster.worker`) builds one at start and prepares every
claimed mail with it (parse, control headers and rules, routing input) and plans its batches
with it; the dry run behind `pytrs filters test` (`postmaster.dryrun`) builds the same from the
same configuration, so it decides as the worker would without building a worker (with its
responder and its DKIM verifier). No I/O here: what it needs from the database is handed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytrs.config import Config, PostmasterConfig
from pytrs.parsers import parse_mail
from pytrs.postmaster.apply import Planned
from pytrs.postmaster.filters import CompiledRules
from pytrs.postmaster.planning import (
    Parsed,
    Recognition,
    control_headers,
    plan_batch,
    routing_input,
)
from pytrs.routing.decision import Policy
from pytrs.routing.external import ExternalRule
from pytrs.routing.ticket_number import TicketNumberGenerator, make_generator
from pytrs.schema.inbox_repo import ClaimedMessage
from pytrs.schema.ticket_repo import QueueInfo
from pytrs.vocabulary import znuny
from pytrs.vocabulary.known import Known
from pytrs.vocabulary.parse_limits import ParseLimits


@dataclass(frozen=True, slots=True)
class RoutingSetup:
    """The parser's limits, the ticket-number generator, what the follow-up checks look for,
    and the `[postmaster]` options routing applies."""

    limits: ParseLimits
    numbers: TicketNumberGenerator
    recognition: Recognition
    options: PostmasterConfig

    @classmethod
    def from_config(cls, config: Config) -> RoutingSetup:
        pm, tc = config.postmaster, config.ticket
        numbers = make_generator(
            tc.number_generator, tc.system_id, tc.hook, tc.check_system_id, tc.min_counter_size
        )
        recognition = Recognition(
            numbers=numbers,
            check_body=pm.followup_check_body,
            check_attachments=pm.followup_check_attachments,
            external=tuple(ExternalRule.compile(rule) for rule in config.external_ticket_numbers),
            comment_tag=config.agent_mail.comment_tag,
        )
        return cls(
            limits=config.parser.limits(), numbers=numbers, recognition=recognition, options=pm
        )

    def prepare(self, message: ClaimedMessage, rules: CompiledRules) -> Parsed:
        """`message` parsed, its control headers in force (its own when trusted, what pytrs
        detected, then the rules) and its routing input. Raises what the parser raises."""
        mail = parse_mail(message.raw, self.limits)
        control, hits = control_headers(message, mail, rules)
        item = routing_input(message, mail, control, self.recognition)
        return Parsed(message, mail, item, control, hits)

    def policy(self, queue_for_address: Mapping[str, str]) -> Policy:
        """The routing policy with the current address book (system address → queue)."""
        pm = self.options
        return Policy(
            queue_for_address=queue_for_address,
            default_queue=pm.default_queue,
            states=frozenset(znuny.STATE_IDS),
            unknown_sender_followup=pm.unknown_sender_followup,
            bounce_as_followup=pm.bounce_as_followup,
            followup_state=pm.followup_state,
            followup_state_closed=pm.followup_state_closed,
            same_mail_other_queue=pm.same_mail_other_queue,
        )

    def plan(
        self,
        batch: list[Parsed],
        known: Known,
        queues: dict[str, QueueInfo],
        queue_for_address: Mapping[str, str],
    ) -> list[Planned]:
        """A decision per mail of `batch` (see `planning.plan_batch`)."""
        return plan_batch(batch, known, queues, self.numbers, self.policy(queue_for_address))
