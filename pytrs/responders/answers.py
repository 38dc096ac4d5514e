"""Deciding and composing what pytrs answers to stored mail: auto-responses, agents' answers
relayed by mail, notifications to agents.

Place in the flow: after the postmaster has written a batch's tickets and articles, and inside
the same transaction, this module decides what pytrs answers (SPEC S8; REFERENCE §7, §8) and
composes it; the postmaster hands what it returns to the ticket service, which stores it
(`tickets.outgoing`: system articles for auto-responses, outbox rows, history). It knows
nothing of the ticket service, which composes its own replies with `responders.answer_mail`,
as the relay here does:

* an **auto-response** per queue and type (auto reply, auto reply/new ticket, auto follow up,
  auto reject), unless loop protection refuses it — stored as a system article and queued in
  the outbox (`responders.loop_protection`, `responders.responses`);
* an authenticated agent's **answer by mail**, relayed from the queue's system address to the
  ticket's customer with the quoted history trimmed (a mail to the comment address stays an
  internal note);
* **notifications** of new tickets and customer follow-ups to the agents of the queue, with a
  reply token in Reply-To and Message-ID so that their answer by mail authenticates.

Nothing is sent or stored here: outbox rows commit with the ticket change that caused them,
or not at all, and the outbox sender delivers them. What was sent or refused is noted per
inbox row for the routing trace.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.authentication.reply_token import ReplyTokens, notification_message_id, reply_address
from pytrs.config import Config, ConfigError
from pytrs.parsers import ParsedMail
from pytrs.responders.answer_mail import (
    NoAnswerPossible,
    answer_cc,
    answer_draft,
    customer_address,
    system_sender,
)
from pytrs.responders.loop_protection import LoopPolicy, Recipient, clear_many, may_auto_answer
from pytrs.responders.marker import HEADER as LOOP_HEADER
from pytrs.responders.marker import read_loop_marker
from pytrs.responders.message import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    Composed,
    ComposeError,
    Composer,
    Draft,
    Parent,
)
from pytrs.responders.quoting import trim_quoted
from pytrs.responders.responses import AutoResponse, ResponseTable, preferred_languages
from pytrs.responders.templates import (
    ArticleVars,
    CustomerVars,
    ResponseTemplate,
    SystemVars,
    TemplateError,
    TicketVars,
    compile_response,
    template_variables,
)
from pytrs.routing.decision import Action, Decision, RoutingInput
from pytrs.schema import ticket_repo
from pytrs.schema.ticket_repo import TicketSummary

log = logging.getLogger(__name__)

# Znuny's history type per auto-response type.
HISTORY = {
    "auto reply": "SendAutoReply", "auto reply/new ticket": "SendAutoReply",
    "auto follow up": "SendAutoFollowUp", "auto reject": "SendAutoReject",
}  # fmt: skip
NOTIFY_LINES = 30  # lines of the customer's mail quoted in a notification


@dataclass(frozen=True, slots=True)
class Answering:
    """A stored mail pytrs may answer: its inbox id (`key`), parse, routing input and
    decision, and the ticket and article it was stored as."""

    key: int
    mail: ParsedMail
    item: RoutingInput
    decision: Decision
    control: Mapping[str, str]
    ticket_id: int
    article_id: int


@dataclass(slots=True)
class Answer:
    """A composed mail and what it is stored as (by the ticket service)."""

    key: int  # the inbox id of the mail it answers
    ticket: TicketSummary
    composed: Composed
    kind: str  # outbox kind, e.g. "auto reply", "answer", "notification"
    history: str  # Znuny history type: SendAutoReply, SendAnswer …
    article_id: int | None = None  # the article it belongs to (an agent's answer)
    new_article: bool = False  # stored as a system article of its own (auto-responses)


@dataclass(slots=True)
class _Candidate:
    """A mail that gets an auto-response if its recipients still have budget today."""

    plan: Answering
    ticket: TicketSummary
    kind: str
    response: AutoResponse
    recipients: tuple[Recipient, ...]
    refused: list[str]


@dataclass(slots=True)
class Responses:
    """What one batch answers, and what it sent or refused per inbox id (for the routing
    trace)."""

    notes: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    outgoing: list[Answer] = field(default_factory=list)
    # For the metrics, counted by the worker once the batch is committed: the type of each
    # auto-response queued, and the reason of each one a mail would have had but did not get
    # (the loop protection's first refusal, or "composition-failed").
    sent: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


class Responder:
    """Built once per worker; `answer` runs once per batch inside its transaction."""

    @classmethod
    def from_config(cls, config: Config, name: str) -> Responder | None:
        """The responder, or None (logged) when no loop-marker key is configured: the daemon
        always provides one (`schema.system_data`), a worker built by a tool may not."""
        try:
            composer = Composer.from_config(config)
        except ConfigError as exc:
            log.warning("%s: sends no mail (auto-responses, answers, notifications): %s", name, exc)
            return None
        return cls(config, composer)

    def __init__(self, config: Config, composer: Composer) -> None:
        """Raises ConfigError when a notification template does not compile."""
        self.config = config
        self.composer = composer
        self.notices = notification_templates(config)
        self.tokens = ReplyTokens.from_config(config)
        self.loop_secret = composer.loop_secret
        self.agents_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.agent_addresses = frozenset(agent.email.lower() for agent in config.agents)
        for agent in config.agents:
            for queue in agent.queues:
                self.agents_of[queue].append((agent.login, agent.email))

    def may_answer(self, items: list[Answering], responses: ResponseTable) -> bool:
        """Whether anything in the batch could be answered (else `answer` is skipped)."""
        return bool(len(responses) or self.agents_of or any(p.item.agent for p in items))

    async def answer(
        self, conn: AsyncConnection, items: list[Answering], responses: ResponseTable,
        policy: LoopPolicy,
    ) -> Responses:  # fmt: skip
        """Decide and compose everything this batch answers; with notes per inbox id."""
        tickets = await ticket_repo.ticket_summaries(conn, {p.ticket_id for p in items})
        result = Responses()
        outgoing: list[Answer] = []
        candidates: list[_Candidate] = []
        for plan in items:
            ticket = tickets[plan.ticket_id]
            notes = result.notes[plan.key]
            if plan.item.agent:
                outgoing += self._relay(plan, ticket, plan.article_id, policy, notes)
                continue
            candidate = self._candidate(plan, ticket, responses, policy, notes, result.suppressed)
            if candidate is not None:
                candidates.append(candidate)
            outgoing += self._notifications(plan, ticket, notes)
        outgoing += await self._auto_responses(conn, candidates, result)
        result.outgoing = outgoing
        return result

    # --- auto-responses ---------------------------------------------------------------------

    def _candidate(
        self, plan: Answering, ticket: TicketSummary, responses: ResponseTable,
        policy: LoopPolicy, notes: list[str], suppressed: list[str],
    ) -> _Candidate | None:  # fmt: skip
        """Which auto-response a mail gets and to whom, before the daily budget is asked."""
        kind = response_type(plan)
        if kind is None:
            return None
        verdict = may_auto_answer(
            plan.mail, policy, control=plan.control, response_type=kind,
            ticket_closed=ticket.state_type.startswith(("close", "removed")),
            marker_verified=self._marker_verified(plan),
        )  # fmt: skip
        refused = [str(r) for r in verdict.refusals]
        if not verdict.allowed:
            notes.append(f"no {kind}: " + "; ".join(refused))
            suppressed.append(verdict.refusals[0].reason if verdict.refusals else "refused")
            return None
        languages = preferred_languages(
            ticket.customer_language, plan.mail.header("Content-Language") or ""
        )
        response = responses.pick(self._queue_id(ticket), kind, languages)
        if response is None:
            notes.append(f"no {kind}: none configured for queue {ticket.queue}")
            return None
        return _Candidate(plan, ticket, kind, response, verdict.recipients, refused)

    async def _auto_responses(
        self, conn: AsyncConnection, candidates: list[_Candidate], result: Responses
    ) -> list[Answer]:
        """The budget of every recipient in one go (`clear_many`), then render and compose."""
        wanted = [r.address for c in candidates for r in c.recipients]
        answers = iter(await clear_many(conn, wanted, self.config.loop_protection))
        out: list[Answer] = []
        for c in candidates:
            notes = result.notes[c.plan.key]
            recipients, reasons = [], []
            for recipient in c.recipients:
                refusal = next(answers)
                if refusal is None:
                    recipients.append(recipient.header)
                else:
                    c.refused.append(str(refusal))
                    reasons.append(refusal.reason)
            if not recipients:
                notes.append(f"no {c.kind}: " + "; ".join(c.refused))
                result.suppressed.append(reasons[0] if reasons else "refused")
                continue
            composed = self._compose_response(c, recipients, notes)
            if composed is None:
                result.suppressed.append("composition-failed")
                continue
            result.sent.append(c.kind)
            out.append(Answer(c.plan.key, c.ticket, composed, c.kind, HISTORY[c.kind],
                              new_article=True))  # fmt: skip
        return out

    def _compose_response(
        self, c: _Candidate, recipients: list[str], notes: list[str]
    ) -> Composed | None:
        response, plan, ticket = c.response, c.plan, c.ticket
        try:
            rendered = response.render(self._variables(plan, ticket, response.sender_address,
                                                       response.sender_name))  # fmt: skip
        except TemplateError as exc:
            notes.append(f"no {c.kind}: template {response.name} failed: {exc}")
            log.warning("inbox %d: auto-response %s failed: %s", plan.key, response.name, exc)
            return None
        composed = self._compose(
            Draft(
                sender=response.sender, to=recipients, subject=rendered.subject,
                text=rendered.text, html=rendered.html, tn=ticket.tn, subject_kind="reply",
                answering=_parent(plan), automatic=AUTO_REPLIED, language=response.language,
            ), plan, f"no {c.kind}", notes,
        )  # fmt: skip
        if composed is None:
            return None
        notes.append(f"{c.kind} {response.name} to {', '.join(recipients)}")
        if c.refused:
            notes.append("not to: " + "; ".join(c.refused))
        return composed

    def _marker_verified(self, plan: Answering) -> bool:
        value = plan.mail.header(LOOP_HEADER)
        return bool(value) and read_loop_marker(value, self.loop_secret) is not None

    def _variables(
        self, plan: Answering, ticket: TicketSummary, address: str, name: str
    ) -> dict[str, Any]:
        mail = plan.mail
        article = ArticleVars(mail.subject, mail.from_, mail.to, mail.cc, mail.body,
                              mail.message_id, datetime.now(UTC))  # fmt: skip
        return response_variables(ticket, article, SystemVars(address, name), self.config)

    # --- agents' answers --------------------------------------------------------------------

    def _relay(
        self, plan: Answering, ticket: TicketSummary, article_id: int, policy: LoopPolicy,
        notes: list[str],
    ) -> list[Answer]:  # fmt: skip
        """An authenticated agent's answer to the customer, from the queue's address."""
        if plan.item.comment or not self.config.agent_mail.relay:
            notes.append("internal note by agent: not relayed" if plan.item.comment else
                         "answer by agent: relaying is off")  # fmt: skip
            return []
        sender = system_sender(self.config, ticket.queue)
        try:
            if sender is None:
                raise NoAnswerPossible("no system address for the queue")
            address = customer_address(ticket)
        except NoAnswerPossible as exc:
            notes.append(f"answer by agent not relayed: {exc}")
            return []
        body = plan.mail.body
        if self.config.agent_mail.trim_quoted:
            body = trim_quoted(body)
        # The customer, and whom the agent put on Cc — never our own addresses (the tokened
        # notification address is one), the agent, or the agent's threading headers.
        cc = answer_cc(
            plan.mail.addresses("Cc"), is_own=policy.is_system_address,
            leave_out=[plan.item.sender, address, *self.agent_addresses],
        )  # fmt: skip
        draft = answer_draft(ticket, sender=sender, subject=plan.mail.subject, text=body, cc=cc)
        composed = self._compose(draft, plan, "answer by agent not relayed", notes)
        if composed is None:
            return []
        notes.append(f"answer by agent {plan.item.agent} relayed to "
                     + ", ".join([address, *cc]))  # fmt: skip
        return [Answer(plan.key, ticket, composed, "answer", "SendAnswer", article_id)]

    # --- notifications ----------------------------------------------------------------------

    def _notifications(
        self, plan: Answering, ticket: TicketSummary, notes: list[str]
    ) -> list[Answer]:
        decision, am = plan.decision, self.config.agent_mail
        new = decision.action is Action.NEW_TICKET
        if not ((new and am.notify_new_ticket) or (
            decision.action is Action.FOLLOW_UP and not decision.internal and am.notify_follow_up
        )):  # fmt: skip
            return []
        sender = system_sender(self.config, ticket.queue)
        agents = [a for a in self.agents_of.get(ticket.queue, ())
                  if a[1].lower() != plan.item.sender]  # fmt: skip
        if sender is None or not agents:
            return []
        address, name = sender
        template = self.notices["new_ticket" if new else "follow_up"]
        try:
            rendered = template.render(self._variables(plan, ticket, address, name))
        except TemplateError as exc:
            notes.append(f"agents not notified: {exc}")
            return []
        comment = _tagged(address, self.config.agent_mail.comment_tag)
        text = (
            f"{rendered.text.rstrip()}\n\n-- \nAnswer this mail to reply to the customer. To add "
            f"an internal note instead, send it to {comment}.\n"
        )
        out: list[Answer] = []
        for login, email in agents:
            reply_to, message_id = address, ""
            if self.tokens.enabled:
                token = self.tokens.make(ticket.tn, login)
                try:
                    reply_to = reply_address(address, token)
                    message_id = notification_message_id(token, address.rpartition("@")[2])
                except ValueError as exc:  # a local part too long to carry a token
                    notes.append(f"no reply token for {login}: {exc}")
            composed = self._compose(
                Draft(
                    sender=formataddr((name, address)), to=[email], reply_to=reply_to,
                    subject=rendered.subject, text=text, tn=ticket.tn, subject_kind="new",
                    automatic=AUTO_GENERATED, message_id=message_id,
                ), plan, f"{login} not notified", notes,
            )  # fmt: skip
            if composed is None:
                continue
            out.append(Answer(plan.key, ticket, composed, "notification",
                              "SendAgentNotification"))  # fmt: skip
        notes.append(f"notified {', '.join(login for login, _ in agents)}")
        return out

    def _compose(
        self, draft: Draft, plan: Answering, what: str, notes: list[str]
    ) -> Composed | None:
        """The mail, or None with the reason noted: an address in a customer's mail (or in the
        configuration) that no relay would take must not fail the mail that caused it."""
        try:
            return self.composer.compose(draft)
        except (ComposeError, ValueError) as exc:
            notes.append(f"{what}: {exc}")
            log.warning("inbox %d: %s: %s", plan.key, what, exc)
            return None

    def _queue_id(self, ticket: TicketSummary) -> int:
        return ticket.queue_id


def notification_templates(config: Config) -> dict[str, ResponseTemplate]:
    """The agent notification templates of `[agent_mail]`, compiled; raises ConfigError."""
    am = config.agent_mail
    try:
        return {
            "new_ticket": compile_response(
                "agent-notification-new-ticket", am.new_ticket_subject, am.new_ticket_body
            ),
            "follow_up": compile_response(
                "agent-notification-follow-up", am.follow_up_subject, am.follow_up_body
            ),
        }
    except TemplateError as exc:
        raise ConfigError(f"agent_mail: {exc}") from exc


def response_variables(
    ticket: TicketSummary, article: ArticleVars, system: SystemVars, config: Config
) -> dict[str, Any]:
    """The variables an auto-response or notification about `ticket` renders with: the mail
    being answered (`article`), the address it is sent from; the same for the web's preview."""
    customer = (
        CustomerVars(ticket.customer_user, ticket.customer_email, ticket.first_name,
                     ticket.last_name)
        if ticket.known_customer else None
    )  # fmt: skip
    return template_variables(
        TicketVars(
            ticket.tn, ticket.title, ticket.queue, ticket.state, ticket.priority,
            config.ticket.hook, ticket.customer_user, ticket.customer_id,
            dynamic_fields=ticket.dynamic_fields,
        ),
        article,
        system,
        customer,
    )  # fmt: skip


def response_type(plan: Answering) -> str | None:
    """Znuny's auto-response type for what routing did with a mail (REFERENCE §8)."""
    decision = plan.decision
    if decision.action is Action.NEW_TICKET:
        # A closed ticket's queue opened this one (Znuny's return code 3); a stranger's mail
        # that only quoted a number gets the plain auto reply.
        instead_of_closed = decision.ticket is not None and not decision.stranger
        return "auto reply/new ticket" if instead_of_closed else "auto reply"
    if decision.action is Action.FOLLOW_UP and not decision.internal:
        return "auto follow up"
    if decision.action is Action.REJECT:
        return "auto reject"
    return None


def _parent(plan: Answering) -> Parent | None:
    mail = plan.mail
    if not mail.message_id:
        return None
    return Parent(mail.message_id, " ".join(mail.references), mail.in_reply_to)


def _tagged(address: str, tag: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+{tag}@{domain}"
