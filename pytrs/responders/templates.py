"""Auto-response templates: Jinja2 in a sandbox, with a fixed and documented set of variables.

Place in the flow: a template is compiled before it is saved (``responders.responses.check_spec``
checks ``[[auto_responses]]`` and ``pytrs responses import`` files before
``schema.response_repo`` stores them), so that a broken one is refused there, naming the
template and the line, and never first at mail time; ``responders.stored_responses`` compiles
the stored ones with ``compile_response`` for the postmaster. The postmaster later renders the
chosen response with ``template_variables(...)`` and turns the ``Rendered`` result into a
``message.Draft``. A render that fails raises ``TemplateRenderError``: the caller sends
nothing and records why.

Templates run in ``responders.sandbox`` (Jinja2's immutable sandbox plus bounds on steps,
work, size and time; see there). Undefined variables are errors (``StrictUndefined``): a
misspelt name is refused when the template is saved, rather than leaving a gap in a mail to a
customer; use ``{{ x|default("…") }}`` for what may be empty. Plain-text templates are not
escaped; HTML templates escape every variable (``{{ article.subject }}`` with ``<script>`` in it
is written as ``&lt;script&gt;``) unless marked ``|safe``. Subjects are always plain text, on
one line. Block tags alone on a line leave no blank line (``trim_blocks``, ``lstrip_blocks``).

Variables (all text is ``str``; "" when unknown):

* ``ticket``: ``tn``, ``title``, ``queue``, ``state``, ``priority``, ``hook`` (e.g. "Ticket#"),
  ``customer_user``, ``customer_id``, ``url`` (the ticket in the web view, "" if none).
* ``article`` (the mail being answered): ``subject``, ``from``, ``to``, ``cc``, ``body`` (the
  first ``VARIABLE_CHARS`` characters), ``message_id``, ``created`` ("YYYY-MM-DD HH:MM:SS", UTC).
* ``customer``: ``login``, ``email``, ``first_name``, ``last_name``, ``full_name``, ``known``
  (false when the sender is no customer user: then ``login`` is the ticket's customer user,
  ``email`` the sender address and ``full_name`` the sender's display name or address).
* ``queue``: ``name``. ``system`` (the address the answer is sent from): ``address``, ``name``.
* ``quoted``: the body's first ``QUOTE_LINES`` lines, each prefixed "> " (Znuny's
  ``<OTRS_CUSTOMER_EMAIL[6]>``).

Filters beyond Jinja's own: ``quote(n)`` quotes the first n lines (all when n is 0);
``truncate(n)`` is Jinja's, with no leeway: at most n characters, cut at a word, ending in
"..." (Znuny's ``<OTRS_CUSTOMER_SUBJECT[n]>``). The templates translated from Znuny's tags
(``responders.znuny_tags``) use three more, which render exactly as Znuny does:
``znuny_body(html)``, ``znuny_quote(n, html)`` and ``znuny_subject(tn, hook, n)``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses
from typing import Any

from jinja2 import Template

from pytrs.parsers.htmltext import html_to_text
from pytrs.responders.sandbox import (
    MailEnvironment,
    TemplateCompileError,
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSecurityError,
    compile_source,
    render_compiled,
)
from pytrs.responders.template_limits import DEFAULT_LIMITS, Limits
from pytrs.responders.znuny_tags import FILTERS as ZNUNY_FILTERS
from pytrs.vocabulary.auto_responses import CONTENT_TYPES, TEXT_HTML, TEXT_PLAIN

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_LIMITS",
    "QUOTE_LINES",
    "TEXT_HTML",
    "TEXT_PLAIN",
    "VARIABLES",
    "ArticleVars",
    "CustomerVars",
    "Limits",
    "MailTemplate",
    "Rendered",
    "ResponseTemplate",
    "SystemVars",
    "TemplateCompileError",
    "TemplateError",
    "TemplateLimitError",
    "TemplateRenderError",
    "TemplateSecurityError",
    "TicketVars",
    "compile_response",
    "compile_template",
    "quote",
    "sample_variables",
    "template_variables",
]

QUOTE_LINES = 6  # as Znuny's default templates (<OTRS_CUSTOMER_EMAIL[6]>)
VARIABLE_CHARS = 100_000  # longer text (a huge body) is cut before a template sees it

# The stable names templates may use, with what they hold; names outside this table (and the
# sandbox's globals: range, dict, cycler, joiner, namespace) are refused at compile time.
VARIABLES: Mapping[str, str] = {
    "ticket": "tn, title, queue, state, priority, hook, customer_user, customer_id, url",
    "article": "subject, from, to, cc, body, message_id, created",
    "customer": "login, email, first_name, last_name, full_name, known",
    "queue": "name",
    "system": "address, name",
    "quoted": f"the body's first {QUOTE_LINES} lines, quoted with '> '",
}


# --- variables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketVars:
    tn: str
    title: str = ""
    queue: str = ""
    state: str = ""
    priority: str = ""
    hook: str = "Ticket#"
    customer_user: str = ""
    customer_id: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ArticleVars:
    """The mail being answered, as stored on its article (header values decoded)."""

    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    body: str = ""
    message_id: str = ""
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class CustomerVars:
    """The ticket's customer user record, when there is one."""

    login: str = ""
    email: str = ""
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True, slots=True)
class SystemVars:
    """The system address the answer is sent from (``system_address.value0``/``value1``)."""

    address: str
    name: str = ""


def template_variables(
    ticket: TicketVars,
    article: ArticleVars,
    system: SystemVars,
    customer: CustomerVars | None = None,
    *,
    quote_lines: int = QUOTE_LINES,
) -> dict[str, Any]:
    """The variables of a render, as plain dicts of strings (see the module documentation)."""
    body = _cut(article.body)
    created = article.created
    if created is not None and created.tzinfo is not None:
        created = created.astimezone(UTC).replace(tzinfo=None)
    return {
        "ticket": {
            "tn": ticket.tn, "title": _cut(ticket.title), "queue": ticket.queue,
            "state": ticket.state, "priority": ticket.priority, "hook": ticket.hook,
            "customer_user": ticket.customer_user, "customer_id": ticket.customer_id,
            "url": ticket.url,
        },
        "article": {
            "subject": _cut(article.subject), "from": _cut(article.from_), "to": _cut(article.to),
            "cc": _cut(article.cc), "body": body, "message_id": article.message_id,
            "created": created.strftime("%Y-%m-%d %H:%M:%S") if created else "",
        },
        "customer": _customer(customer, ticket, article),
        "queue": {"name": ticket.queue},
        "system": {"address": system.address, "name": system.name},
        "quoted": quote(body, quote_lines),
    }  # fmt: skip


def _customer(
    customer: CustomerVars | None, ticket: TicketVars, article: ArticleVars
) -> dict[str, Any]:
    if customer is not None:
        full = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        return {
            "login": customer.login, "email": customer.email,
            "first_name": customer.first_name, "last_name": customer.last_name,
            "full_name": full or customer.email or customer.login, "known": True,
        }  # fmt: skip
    found = getaddresses([article.from_])
    display, address = found[0] if found else ("", "")
    return {
        "login": ticket.customer_user, "email": address, "first_name": "", "last_name": "",
        "full_name": _cut(display or address), "known": False,
    }  # fmt: skip


def _cut(text: str) -> str:
    return text[:VARIABLE_CHARS]


def quote(text: str, lines: int = 0) -> str:
    """The first `lines` lines of `text` (all when `lines` ≤ 0), each prefixed with "> "."""
    rows = str(text).splitlines()
    if lines > 0:
        rows = rows[:lines]
    return "\n".join(f"> {row}".rstrip() for row in rows)


def sample_variables() -> dict[str, Any]:
    """Variables with every field filled, for the trial render of a template being saved."""
    return template_variables(
        TicketVars(
            tn="2026010110000017", title="Printer on fire", queue="Support", state="new",
            priority="3 normal", customer_user="alice", customer_id="ACME",
            url="https://pytrs.example/ticket/1",
        ),
        ArticleVars(
            subject="Printer on fire", from_="Alice Doe <alice@customer.example>",
            to="support@example.com", cc="bob@customer.example",
            body="Hello,\n\nthe printer is on fire.\n\nAlice", message_id="<1@customer.example>",
            created=datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
        ),
        SystemVars("support@example.com", "Example Support"),
        CustomerVars("alice", "alice@customer.example", "Alice", "Doe"),
    )  # fmt: skip


# --- compiling and rendering -----------------------------------------------------------------


@functools.cache
def _environment(html: bool) -> MailEnvironment:
    env = MailEnvironment(html=html)
    env.add_filter("quote", quote)
    for name, func in ZNUNY_FILTERS.items():
        env.add_filter(name, func)
    return env


@dataclass(frozen=True, slots=True, eq=False)
class MailTemplate:
    """A compiled template; render it as often as needed, from any thread."""

    name: str
    html: bool
    limits: Limits
    compiled: Template

    def render(self, variables: Mapping[str, Any]) -> str:
        """The text for `variables`. Raises TemplateRenderError (or a subclass)."""
        return render_compiled(self.compiled, self.name, variables, self.limits)


@functools.lru_cache(maxsize=1024)
def compile_template(
    name: str, source: str, *, html: bool = False, limits: Limits = DEFAULT_LIMITS
) -> MailTemplate:
    """`source` compiled, then rendered once with ``sample_variables()`` to prove it works.

    Cached by its arguments, so compiling the stored templates again for each batch costs a
    lookup. Raises TemplateCompileError naming `name` and the line.
    """
    template = MailTemplate(
        name, html, limits, compile_source(_environment(html), name, source, VARIABLES, limits)
    )
    try:
        template.render(sample_variables())
    except TemplateRenderError as exc:
        raise TemplateCompileError(
            name, f"fails with sample data: {exc.reason}", exc.line
        ) from None
    return template


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered auto-response: ``html`` is set for HTML templates, and ``text`` is then its
    plain-text rendering (the text/plain part)."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseTemplate:
    """The compiled subject and body of one auto-response."""

    name: str
    subject: MailTemplate
    body: MailTemplate
    content_type: str = TEXT_PLAIN

    def render(self, variables: Mapping[str, Any]) -> Rendered:
        """Subject (one line) and body for `variables`. Raises TemplateRenderError."""
        subject = " ".join(self.subject.render(variables).split())
        body = self.body.render(variables)
        if self.content_type == TEXT_HTML:
            return Rendered(subject, html_to_text(body), body)
        return Rendered(subject, body)


def compile_response(
    name: str,
    subject: str,
    body: str,
    content_type: str = TEXT_PLAIN,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> ResponseTemplate:
    """Compile both parts, named "<name>:subject" and "<name>:body" in errors.

    Raises TemplateCompileError (the subject's first) or ValueError for an unknown content type.
    """
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"content type must be {' or '.join(CONTENT_TYPES)}, not {content_type!r}")
    return ResponseTemplate(
        name,
        compile_template(f"{name}:subject", subject, limits=limits),
        compile_template(f"{name}:body", body, html=content_type == TEXT_HTML, limits=limits),
        content_type,
    )
