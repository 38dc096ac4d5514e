"""Mail the postmaster sends in its apply transaction: auto-responses, agents' answers, notices.

Place in the flow: after `apply` has written a batch's tickets and articles, and inside the
same transaction, this stage decides what pytrs answers (SPEC S8; REFERENCE §7, §8):

* an **auto-response** per queue and type (auto reply, auto reply/new ticket, auto follow up,
  auto reject), unless loop protection refuses it — stored as a system article and queued in
  the outbox (`responders.loop_protection`, `responders.responses`);
* an authenticated agent's **answer by mail**, relayed from the queue's system address to the
  ticket's customer with the quoted history trimmed (a mail to the comment address stays an
  internal note);
* **notifications** of new tickets and customer follow-ups to the agents of the queue, with a
  reply token in Reply-To and Message-ID so that their answer by mail authenticates.

Nothing is sent here: outbox rows commit with the ticket change that caused them, or not at
all, and the outbox sender delivers them. What was sent or refused is noted per inbox row for
the routing trace.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.authentication.reply_token import ReplyTokens, notification_message_id, reply_address
from pytrs.config import Config, ConfigError
from pytrs.parsers.addresses import single_address
from pytrs.postmaster.apply import ApplyContext, Planned
from pytrs.postmaster.rows import audit, history_row, sent_mime_row
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
from pytrs.routing.decision import Action
from pytrs.schema import outbox_repo, storable, ticket_repo
from pytrs.schema.inbox_repo import DONE
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_plain,
    ticket_history,
)
from pytrs.schema.ticket_repo import TicketSummary
from pytrs.vocabulary import znuny

log = logging.getLogger(__name__)

# Znuny's history type per auto-response type.
HISTORY = {
    "auto reply": "SendAutoReply", "auto reply/new ticket": "SendAutoReply",
    "auto follow up": "SendAutoFollowUp", "auto reject": "SendAutoReject",
}  # fmt: skip
NOTIFY_LINES = 30  # lines of the customer's mail quoted in a notification


@dataclass(slots=True)
class _Outgoing:
    """A composed mail and what it is stored as."""

    plan: Planned
    ticket: TicketSummary
    composed: Composed
    kind: str  # outbox kind, e.g. "auto reply", "answer", "notification"
    history: str
    article_id: int | None = None  # the article it belongs to (an agent's answer)
    new_article: bool = False  # stored as a system article of its own (auto-responses)
    queue_id: int = 1


@dataclass(slots=True)
class _Candidate:
    """A mail that gets an auto-response if its recipients still have budget today."""

    plan: Planned
    ticket: TicketSummary
    kind: str
    response: AutoResponse
    recipients: tuple[Recipient, ...]
    refused: list[str]


@dataclass(slots=True)
class Responses:
    """What one batch sent or refused, per inbox id (for the routing trace)."""

    notes: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    queued: int = 0


class Responder:
    """Built once per worker; `respond` runs once per batch inside its transaction."""

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
        self.senders: dict[str, tuple[str, str]] = {}
        for entry in config.system_addresses:
            self.senders.setdefault(entry.queue, (entry.address, entry.name))
        self._queue_ids: dict[str, int] = {}  # queue name → id, refreshed per batch
        self.agents_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.agent_addresses = frozenset(agent.email.lower() for agent in config.agents)
        for agent in config.agents:
            for queue in agent.queues:
                self.agents_of[queue].append((agent.login, agent.email))

    async def respond_batch(
        self, conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext,
        responses: ResponseTable, policy: LoopPolicy,
    ) -> int:  # fmt: skip
        """`respond`, skipped when nothing could answer; its notes go into each mail's
        routing trace (`ctx.results`). Returns the outbox rows queued."""
        if not len(responses) and not self.agents_of and not any(p.item.agent for p in planned):
            return 0
        sent = await self.respond(conn, planned, ctx, responses, policy)
        for result in ctx.results:
            notes = sent.notes.get(result["id"])
            if notes and result.get("trace"):
                trace = json.loads(result["trace"])
                trace["responses"] = notes
                result["trace"] = json.dumps(trace, ensure_ascii=False)
        return sent.queued

    async def respond(
        self, conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext,
        responses: ResponseTable, policy: LoopPolicy,
    ) -> Responses:  # fmt: skip
        """Compose and queue everything this batch answers; returns notes per inbox id."""
        self._queue_ids = {name: q.id for name, q in ctx.queues.items()}
        done = {r["id"]: r for r in ctx.results if r["state"] == DONE}
        answered = [p for p in planned if p.claimed.id in done]
        tickets = await ticket_repo.ticket_summaries(
            conn, {done[p.claimed.id]["ticket_id"] for p in answered}
        )
        result = Responses()
        outgoing: list[_Outgoing] = []
        candidates: list[_Candidate] = []
        for plan in answered:
            outcome = done[plan.claimed.id]
            ticket = tickets[outcome["ticket_id"]]
            notes = result.notes[plan.claimed.id]
            if plan.item.agent:
                outgoing += self._relay(plan, ticket, outcome["article_id"], policy, notes)
                continue
            candidate = self._candidate(plan, ticket, responses, policy, notes)
            if candidate is not None:
                candidates.append(candidate)
            outgoing += self._notifications(plan, ticket, notes)
        outgoing += await self._auto_responses(conn, candidates, result)
        await self._store(conn, outgoing, ctx)
        result.queued = len(outgoing)
        return result

    # --- auto-responses ---------------------------------------------------------------------

    def _candidate(
        self, plan: Planned, ticket: TicketSummary, responses: ResponseTable,
        policy: LoopPolicy, notes: list[str],
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
    ) -> list[_Outgoing]:
        """The budget of every recipient in one go (`clear_many`), then render and compose."""
        wanted = [r.address for c in candidates for r in c.recipients]
        answers = iter(await clear_many(conn, wanted, self.config.loop_protection))
        out: list[_Outgoing] = []
        for c in candidates:
            notes = result.notes[c.plan.claimed.id]
            recipients = []
            for recipient in c.recipients:
                refusal = next(answers)
                if refusal is None:
                    recipients.append(recipient.header)
                else:
                    c.refused.append(str(refusal))
            if not recipients:
                notes.append(f"no {c.kind}: " + "; ".join(c.refused))
                continue
            composed = self._compose_response(c, recipients, notes)
            if composed is not None:
                queue_id = self._queue_id(c.ticket)
                out.append(_Outgoing(c.plan, c.ticket, composed, c.kind, HISTORY[c.kind], None,
                                     True, queue_id))  # fmt: skip
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
            log.warning(
                "inbox %d: auto-response %s failed: %s", plan.claimed.id, response.name, exc
            )
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

    def _marker_verified(self, plan: Planned) -> bool:
        value = plan.mail.header(LOOP_HEADER)
        return bool(value) and read_loop_marker(value, self.loop_secret) is not None

    def _variables(
        self, plan: Planned, ticket: TicketSummary, address: str, name: str
    ) -> dict[str, Any]:
        mail = plan.mail
        customer = (
            CustomerVars(ticket.customer_user, ticket.customer_email, ticket.first_name,
                         ticket.last_name)
            if ticket.known_customer else None
        )  # fmt: skip
        return template_variables(
            TicketVars(
                ticket.tn, ticket.title, ticket.queue, ticket.state, ticket.priority,
                self.config.ticket.hook, ticket.customer_user, ticket.customer_id,
            ),
            ArticleVars(mail.subject, mail.from_, mail.to, mail.cc, mail.body, mail.message_id,
                        datetime.now(UTC)),
            SystemVars(address, name),
            customer,
        )  # fmt: skip

    # --- agents' answers --------------------------------------------------------------------

    def _relay(
        self, plan: Planned, ticket: TicketSummary, article_id: int, policy: LoopPolicy,
        notes: list[str],
    ) -> list[_Outgoing]:  # fmt: skip
        """An authenticated agent's answer to the customer, from the queue's address."""
        if plan.item.comment or not self.config.agent_mail.relay:
            notes.append("internal note by agent: not relayed" if plan.item.comment else
                         "answer by agent: relaying is off")  # fmt: skip
            return []
        sender = self._sender(ticket)
        # The customer's address is free text (a login, or what a filter rule set): it is
        # mailed only when it is exactly one address, never a list someone slipped in.
        address = single_address(ticket.customer_email)
        if sender is None or not address:
            notes.append("answer by agent not relayed: " + (
                "no system address for the queue" if sender is None
                else f"the ticket's customer {ticket.customer_email[:100]!r} is not one e-mail "
                "address" if ticket.customer_email else "the ticket's customer has no address"
            ))  # fmt: skip
            return []
        body = plan.mail.body
        if self.config.agent_mail.trim_quoted:
            body = trim_quoted(body)
        customer = formataddr((f"{ticket.first_name} {ticket.last_name}".strip(), address))
        # The customer, and whom the agent put on Cc — never our own addresses (the tokened
        # notification address is one), the agent, or the agent's threading headers.
        left_out = {plan.item.sender, address, *self.agent_addresses}
        cc = [
            a for a in plan.mail.addresses("Cc")
            if not policy.is_system_address(a) and a not in left_out
        ]  # fmt: skip
        composed = self._compose(
            Draft(
                sender=formataddr((sender[1], sender[0])), to=[customer], cc=cc,
                subject=plan.mail.subject, text=body, tn=ticket.tn, subject_kind="reply",
                answering=Parent(ticket.last_customer_message_id,
                                 ticket.last_customer_references)
                if ticket.last_customer_message_id else None,
            ), plan, "answer by agent not relayed", notes,
        )  # fmt: skip
        if composed is None:
            return []
        notes.append(f"answer by agent {plan.item.agent} relayed to "
                     + ", ".join([address, *cc]))  # fmt: skip
        return [_Outgoing(plan, ticket, composed, "answer", "SendAnswer", article_id, False,
                          self._queue_id(ticket))]  # fmt: skip

    # --- notifications ----------------------------------------------------------------------

    def _notifications(
        self, plan: Planned, ticket: TicketSummary, notes: list[str]
    ) -> list[_Outgoing]:
        decision, am = plan.decision, self.config.agent_mail
        new = decision.action is Action.NEW_TICKET
        if not ((new and am.notify_new_ticket) or (
            decision.action is Action.FOLLOW_UP and not decision.internal and am.notify_follow_up
        )):  # fmt: skip
            return []
        sender = self._sender(ticket)
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
        out: list[_Outgoing] = []
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
            out.append(_Outgoing(plan, ticket, composed, "notification",
                                 "SendAgentNotification", None, False,
                                 self._queue_id(ticket)))  # fmt: skip
        notes.append(f"notified {', '.join(login for login, _ in agents)}")
        return out

    def _compose(self, draft: Draft, plan: Planned, what: str, notes: list[str]) -> Composed | None:
        """The mail, or None with the reason noted: an address in a customer's mail (or in the
        configuration) that no relay would take must not fail the mail that caused it."""
        try:
            return self.composer.compose(draft)
        except (ComposeError, ValueError) as exc:
            notes.append(f"{what}: {exc}")
            log.warning("inbox %d: %s: %s", plan.claimed.id, what, exc)
            return None

    # --- storing ----------------------------------------------------------------------------

    def _sender(self, ticket: TicketSummary) -> tuple[str, str] | None:
        found = self.senders.get(ticket.queue)
        if found is None and self.config.system_addresses:
            first = self.config.system_addresses[0]
            found = (first.address, first.name)
        return found

    def _queue_id(self, ticket: TicketSummary) -> int:
        return self._queue_ids.get(ticket.queue, 1)

    async def _store(self, conn: AsyncConnection, outgoing: list[_Outgoing],
                     ctx: ApplyContext) -> None:  # fmt: skip
        """Auto-responses become system articles; every mail becomes an outbox row; each gets
        its history entry."""
        new = [o for o in outgoing if o.new_article]
        if new:
            result = await conn.execute(
                insert(article).returning(article.c.id, sort_by_parameter_order=True),
                [
                    {
                        "ticket_id": o.ticket.id, "article_sender_type_id": znuny.SENDER_SYSTEM,
                        "communication_channel_id": znuny.CHANNEL_EMAIL,
                        "is_visible_for_customer": 1, "search_index_needs_rebuild": 1,
                        "insert_fingerprint": f"outbox-{o.composed.message_id}"[:64],
                        **audit(ctx.now),
                    }
                    for o in new
                ],
            )  # fmt: skip
            for o, article_id in zip(new, result.scalars(), strict=True):
                o.article_id = int(article_id)
            await conn.execute(
                insert(article_data_mime),
                storable.rows(
                    article_data_mime,
                    [sent_mime_row(o.composed, o.article_id, ctx.now) for o in new],
                ),
            )
            await conn.execute(
                insert(article_data_mime_plain),
                [{"article_id": o.article_id, "body": o.composed.raw, **audit(ctx.now)}
                 for o in new],
            )  # fmt: skip
        await outbox_repo.enqueue_many(
            conn,
            [outbox_repo.Queued(o.composed, o.ticket.id, o.article_id, o.kind) for o in outgoing],
            now=ctx.now,
        )
        history = []
        for o in outgoing:
            history.append(
                history_row(f"%%{', '.join(o.composed.recipients)}", o.history, o.ticket.id,
                            o.article_id, o.queue_id, ctx.now)
            )  # fmt: skip
        if history:
            await conn.execute(insert(ticket_history), storable.rows(ticket_history, history))


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


def response_type(plan: Planned) -> str | None:
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


def _parent(plan: Planned) -> Parent | None:
    mail = plan.mail
    if not mail.message_id:
        return None
    return Parent(mail.message_id, " ".join(mail.references), mail.in_reply_to)


def _tagged(address: str, tag: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+{tag}@{domain}"
