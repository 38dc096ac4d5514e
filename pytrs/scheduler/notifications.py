"""Escalation and pending-reminder notifications to agents, composed for the outbox.

Place in the flow: the due scan (`scheduler.due_scan`) hands each fired event here, inside
its transaction; the mail composed here is stored by `tickets.outgoing.store_outgoing` as an
outbox row of kind "notification" with a `SendAgentNotification` history entry (no article),
and the outbox sender delivers it after the commit.

The templates are `[scheduler]`'s, Jinja2 in the auto-responses' sandbox
(`responders.sandbox`), compiled once when the scheduler is built (a broken one stops the
daemon's start, naming it). Variables:

* ``ticket``: as in auto-responses (``tn``, ``title``, ``queue``, ``state``, ``priority``,
  ``hook``, ``customer_user``, ``customer_id``, ``url``); ``queue``: ``name``;
* ``escalation``: ``kind`` (response | update | solution | pending), ``event``
  (notify_before | escalated | pending), ``deadline`` (local time in the ticket's calendar
  zone, "YYYY-MM-DD HH:MM TZ"), ``left`` (working time left, e.g. "1 h 05 min");
* ``pending``: ``time`` (the pending time, local; "" for escalations).

Recipients: the ticket's owner when it is a real agent, else the agents with `rw` on the
ticket's queue. Each agent's copy carries a reply token, as the new-ticket notifications do,
so that an answer by mail reaches the customer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from email.utils import formataddr
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pytrs.authentication.reply_token import ReplyTokens, notification_message_id, reply_address
from pytrs.config import Config, ConfigError
from pytrs.responders.answer_mail import system_sender
from pytrs.responders.message import AUTO_GENERATED, ComposeError, Composer, Draft
from pytrs.responders.sandbox import MailEnvironment, TemplateError, compile_source
from pytrs.responders.templates import DEFAULT_LIMITS, MailTemplate, TicketVars
from pytrs.schema.escalation_due import Agent
from pytrs.schema.ticket_repo import TicketSummary
from pytrs.tickets.outgoing import Outgoing

log = logging.getLogger(__name__)

VARIABLES: Mapping[str, str] = {
    "ticket": "tn, title, queue, state, priority, hook, customer_user, customer_id, url",
    "queue": "name",
    "escalation": "kind, name, event, deadline, left",
    "pending": "time",
}
EVENTS = ("notify_before", "escalated", "pending")
# The kinds as agents read them (Znuny's screens say "First Response Time", "Update Time" …).
KIND_NAMES = {"response": "first response", "update": "update", "solution": "solution",
              "pending": "pending"}  # fmt: skip
_TEMPLATE_KEYS = {"notify_before": "notify_before", "escalated": "escalated",
                  "pending": "pending_reminder"}  # fmt: skip


class Calendar(Protocol):
    """What a notification needs of the ticket's business calendar."""

    @property
    def timezone(self) -> str: ...

    def working_between(self, start: int, end: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """One event to tell agents about."""

    kind: str  # response | update | solution | pending
    event: str  # notify_before | escalated | pending
    deadline: int  # epoch seconds: the deadline, or the pending time


@dataclass(frozen=True, slots=True)
class _Template:
    subject: MailTemplate
    body: MailTemplate


class NotificationFailed(Exception):
    """A template that does not render for this ticket."""


class Notifier:
    """Built once per scheduler. Raises ConfigError when a `[scheduler]` template does not
    compile."""

    def __init__(self, config: Config, composer: Composer) -> None:
        self.config = config
        self.composer = composer
        self.tokens = ReplyTokens.from_config(config)
        self.templates = compile_templates(config)

    def compose(
        self, ticket: TicketSummary, notice: Notice, *, calendar: Calendar, now: int,
        recipients: Sequence[Agent],
    ) -> tuple[list[Outgoing], list[str]]:  # fmt: skip
        """One notification per recipient, and why a recipient got none (an address no mail
        can go to). Raises NotificationFailed when the template fails: nothing is sent."""
        sender = system_sender(self.config, ticket.queue)
        if sender is None or not recipients:
            return [], []
        template = self.templates[notice.event]
        variables = notice_variables(ticket, notice, calendar, now, self.config.ticket.hook)
        try:
            subject = " ".join(template.subject.render(variables).split())
            text = template.body.render(variables)
        except TemplateError as exc:
            raise NotificationFailed(str(exc)) from None
        out, problems = [], []
        for agent in recipients:
            try:
                composed = self.composer.compose(self._draft(ticket, sender, agent, subject, text))
            except (ComposeError, ValueError) as exc:
                problems.append(f"{agent.login} not notified: {exc}")
                continue
            out.append(Outgoing(ticket, composed, "notification", "SendAgentNotification"))
        return out, problems

    def _draft(
        self, ticket: TicketSummary, sender: tuple[str, str], agent: Agent, subject: str,
        text: str,
    ) -> Draft:  # fmt: skip
        """The agent's copy, with a reply token (as the new-ticket notifications carry) so
        that an answer by mail authenticates and reaches the customer."""
        address, name = sender
        reply_to, message_id = address, ""
        if self.tokens.enabled:
            try:
                token = self.tokens.make(ticket.tn, agent.login)
                reply_to = reply_address(address, token)
                message_id = notification_message_id(token, address.rpartition("@")[2])
            except ValueError:  # a local part too long to carry a token: plain Reply-To
                reply_to, message_id = address, ""
        return Draft(
            sender=formataddr((name, address)), to=[agent.email], reply_to=reply_to,
            subject=subject, text=text, tn=ticket.tn, subject_kind="new",
            automatic=AUTO_GENERATED, message_id=message_id,
        )  # fmt: skip


def compile_templates(config: Config) -> dict[str, _Template]:
    """The `[scheduler]` templates per event, compiled and tried on sample data; raises
    ConfigError naming the template."""
    env = MailEnvironment(html=False)
    sample = _sample_variables()
    out = {}
    errors = []
    for event, key in _TEMPLATE_KEYS.items():
        parts = []
        for part in ("subject", "body"):
            name = f"{key.replace('_', '-')}:{part}"  # e.g. "notify-before:body" in logs
            source = getattr(config.scheduler, f"{key}_{part}")
            try:
                compiled = compile_source(env, name, source, VARIABLES, DEFAULT_LIMITS)
                template = MailTemplate(name, False, DEFAULT_LIMITS, compiled)
                template.render(sample)
            except TemplateError as exc:
                errors.append(f"scheduler.{key}_{part}: {exc}")
                continue
            parts.append(template)
        if len(parts) == 2:
            out[event] = _Template(*parts)
    if errors:
        raise ConfigError(errors)
    return out


def notice_variables(
    ticket: TicketSummary, notice: Notice, calendar: Calendar, now: int, hook: str
) -> dict[str, Any]:
    """The variables a notification about `notice` renders with."""
    zone = calendar.timezone or "UTC"
    deadline = local_time(notice.deadline, zone)
    left = working_time_text(calendar.working_between(now, notice.deadline))
    return {
        "ticket": _flat(TicketVars(
            ticket.tn, ticket.title, ticket.queue, ticket.state, ticket.priority, hook,
            ticket.customer_user, ticket.customer_id,
        )),
        "queue": {"name": ticket.queue},
        "escalation": {"kind": notice.kind, "name": KIND_NAMES.get(notice.kind, notice.kind),
                       "event": notice.event, "deadline": deadline, "left": left},
        "pending": {"time": deadline if notice.kind == "pending" else ""},
    }  # fmt: skip


def _flat(values: TicketVars) -> dict[str, Any]:
    # dataclasses.asdict copies recursively and was a tenth of a notification's cost; the
    # ticket's variables are all plain strings.
    return {f.name: getattr(values, f.name) for f in fields(values)}


def local_time(epoch: int, zone: str) -> str:
    """`epoch` as "YYYY-MM-DD HH:MM TZ" in time zone `zone`."""
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def working_time_text(seconds: int) -> str:
    """Working time as people read it: "2 h 05 min", "30 min", "less than a minute"."""
    minutes = max(0, seconds) // 60
    if minutes == 0:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _sample_variables() -> dict[str, Any]:
    ticket = TicketSummary(
        id=1, tn="2026010110000017", title="Printer on fire", queue="Support", state="open",
        state_type="open", priority="3 normal", customer_user="alice", customer_id="ACME",
        customer_email="alice@customer.example",
    )  # fmt: skip

    class _Always:
        timezone = "UTC"

        def working_between(self, start: int, end: int) -> int:
            return max(0, end - start)

    return notice_variables(ticket, Notice("response", "escalated", 1_767_261_600), _Always(),
                            1_767_258_000, "Ticket#")  # fmt: skip
