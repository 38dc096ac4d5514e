"""Znuny's ``<OTRS_*>`` template tags turned into pytrs's own template vocabulary.

Place in the flow: Znuny's auto responses (``auto_response.text0``/``text1``) and templates are
written with Znuny's tags (``<OTRS_CUSTOMER_SUBJECT[24]>``, ``<OTRS_TICKET_TicketNumber>`` …).
When pytrs runs beside Znuny (``[database] mode = "znuny"``) ``responders.stored_responses``
translates the stored texts here before compiling them; the Znuny importer
(``pytrs.importers``) translates them here before storing them as pytrs templates. This module
is pure: text in, template source out.

What each tag means follows Znuny 7.0 ``Kernel/System/TemplateGenerator.pm`` (``AutoResponse``
and ``_Replace``), for an auto response to a customer's mail:

* ``<OTRS_CUSTOMER_*>`` name a header of the mail being answered, with From and To swapped as
  Znuny swaps them (``<OTRS_CUSTOMER_From>`` is the address the mail was sent to), then a field
  of the ticket's customer user (``UserFirstname`` …, also as ``<OTRS_CUSTOMER_DATA_*>``);
  ``EMAIL``/``NOTE``/``BODY`` are the body, and with ``[n]`` its first n lines quoted with "> "
  (in HTML: in a ``<blockquote type="cite">``), n = 0 meaning 2500; ``SUBJECT[n]`` is the
  subject cleaned of ticket number and Re:/Fwd: and cut to n characters plus " [...]";
  ``REALNAME`` is the customer's name. An empty subject or body reads "No Subject"/"No Body",
  and a body longer than 86 characters is re-wrapped at 86 first, as Znuny does.
* ``<OTRS_TICKET_*>`` (TicketNumber, Title, State, Queue, Priority, CustomerID, CustomerUserID;
  ``<OTRS_TICKET_NUMBER>``, ``<OTRS_QUEUE>``), ``<OTRS_CONFIG_Ticket::Hook>``.
* Names are matched case-insensitively, as Znuny does.

A tag of a family Znuny replaces but whose value pytrs does not have (owner, responsible,
current agent, ``<OTRS_NOTIFICATION_RECIPIENT_*>``, other config options, dynamic fields,
agent articles, ``<OTRS_EMAIL_DATE>`` …) becomes "-", which is what Znuny writes for a tag it
has no value for, and is named in ``Translated.unknown``. A ``<OTRS_…>`` outside every family
stays as written, as in Znuny, and is named there too. Everything outside the tags is escaped
so that ``{{``, ``{%`` or ``{#`` in Znuny's text stay literal. In HTML texts the tags are
written HTML-escaped (``&lt;OTRS_…&gt;``, as Znuny's editor stores them); both forms are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from pytrs.routing.subject import clean_subject
from pytrs.vocabulary.auto_responses import TEXT_HTML, TEXT_PLAIN

# Znuny quotes 2500 lines when the count is 0 or missing (`$2 || 2500`).
ALL_LINES = 2500
# A count in a tag is capped: the body a template sees is cut long before this anyway.
MAX_COUNT = 100_000
# Znuny re-wraps a body longer than this at this width before quoting it.
WRAP_WIDTH = 86


@dataclass(frozen=True, slots=True)
class Translated:
    """A template in pytrs's vocabulary (``responders.templates``) and the tags it could not
    translate (each rendered as "-", as Znuny renders a tag it does not know), in order of first
    appearance, without repeats."""

    template: str
    unknown: tuple[str, ...] = ()


_NAME = r"[A-Za-z0-9_:.\-]+"
_ARG = r"(?:\[(?P<arg>[^<>\[\]\n]*)\])?"
_PLAIN_TAG = re.compile(rf"<OTRS_(?P<name>{_NAME}){_ARG}>", re.IGNORECASE)
_HTML_TAG = re.compile(
    rf"(?:&lt;|<)OTRS_(?P<name>{_NAME})(?:\[(?P<arg>[^<>\[\]\n&]*)\])?(?:&gt;|>)", re.IGNORECASE
)

# Families Znuny replaces and cleans up (an unknown member becomes "-").
_FAMILIES = (
    "CUSTOMER_", "TICKET_", "CONFIG_", "OWNER_", "RESPONSIBLE_", "CURRENT_", "AGENT_",
    "NOTIFICATION_RECIPIENT_",
)  # fmt: skip
_KNOWN_SINGLES = {"FIRST_NAME", "LAST_NAME", "EMAIL_DATE", "COMMENT", "QUEUE"}

_CUSTOMER_USER = 'customer.{field} if customer.known else "-"'
# Upper-cased name after "OTRS_" → the expression it renders.
_SIMPLE: dict[str, str] = {
    # The mail being answered (Znuny passes its headers with From and To swapped).
    "CUSTOMER_FROM": "article.to",
    "CUSTOMER_TO": "article.from",
    "CUSTOMER_CC": "article.cc",
    "CUSTOMER_SUBJECT": 'article.subject or "No Subject"',
    "CUSTOMER_MESSAGE-ID": "article.message_id",
    "CUSTOMER_REALNAME": "customer.full_name",
    # The ticket.
    "TICKET_TICKETNUMBER": "ticket.tn",
    "TICKET_NUMBER": "ticket.tn",
    "TICKET_TITLE": "ticket.title",
    "TICKET_STATE": "ticket.state",
    "TICKET_QUEUE": "ticket.queue",
    "QUEUE": "ticket.queue",
    "TICKET_PRIORITY": "ticket.priority",
    "TICKET_CUSTOMERID": "ticket.customer_id",
    "TICKET_CUSTOMERUSERID": "ticket.customer_user",
    "CONFIG_TICKET::HOOK": "ticket.hook",
}
# The ticket's customer user (CustomerUserDataGet), as <OTRS_CUSTOMER_X> or _DATA_X.
for _key, _field in {
    "USERFIRSTNAME": "first_name", "USERLASTNAME": "last_name", "USEREMAIL": "email",
    "USERLOGIN": "login", "USERFULLNAME": "full_name",
}.items():  # fmt: skip
    for _prefix in ("CUSTOMER_", "CUSTOMER_DATA_"):
        _SIMPLE[_prefix + _key] = _CUSTOMER_USER.format(field=_field)
_SIMPLE["CUSTOMER_USERCUSTOMERID"] = _SIMPLE["CUSTOMER_DATA_USERCUSTOMERID"] = (
    'ticket.customer_id if customer.known else "-"'
)
_BODY_NAMES = {"CUSTOMER_EMAIL", "CUSTOMER_NOTE", "CUSTOMER_BODY"}


def translate(text: str, content_type: str = TEXT_PLAIN) -> Translated:
    """`text`, a Znuny template (subject or body), as pytrs template source.

    `content_type` is the Znuny response's (``text/plain`` or ``text/html``); in HTML the tags
    may also be written HTML-escaped (``&lt;OTRS_…&gt;``), as Znuny's rich-text editor stores
    them. Compile the result with ``templates.compile_response`` (``html=`` for HTML bodies).
    """
    html = content_type == TEXT_HTML
    pattern = _HTML_TAG if html else _PLAIN_TAG
    out: list[str] = []
    unknown: dict[str, None] = {}
    position = 0
    for match in pattern.finditer(text):
        out.append(_literal(text[position : match.start()]))
        position = match.end()
        expression = _expression(match.group("name"), match.group("arg"), html)
        if expression is None or expression == "-":
            written = f"<OTRS_{match.group('name')}" + (
                f"[{match.group('arg')}]>" if match.group("arg") is not None else ">"
            )
            unknown[written] = None
            out.append("-" if expression == "-" else _literal(match.group(0)))
        else:
            out.append("{{ " + expression + " }}")
    out.append(_literal(text[position:]))
    return Translated("".join(out), tuple(unknown))


def _literal(text: str) -> str:
    """`text` as template source that renders as itself: only "{" can open a Jinja tag."""
    return text.replace("{", '{{ "{" }}')


def _expression(name: str, arg: str | None, html: bool) -> str | None:
    """The Jinja expression for one tag; "-" for a known family without a value here; None
    for a tag Znuny leaves as it is."""
    key = name.upper()
    if arg is not None:
        return _counted(key, arg, html)
    if key in _BODY_NAMES or key == "COMMENT":
        # Without a count: the whole body (COMMENT: quoted, as Znuny's loop quotes it).
        if key == "COMMENT":
            return f"article.body|znuny_quote({ALL_LINES}, {_bool(html)})"
        return f"article.body|znuny_body({_bool(html)})"
    if key in _SIMPLE:
        return _SIMPLE[key]
    if key in _KNOWN_SINGLES or key.startswith(_FAMILIES):
        return "-"
    return None


def _counted(key: str, arg: str, html: bool) -> str | None:
    """A tag with ``[n]``: quoted body lines, a cut subject, or (other families) "-"."""
    if key in _BODY_NAMES or key == "COMMENT":
        lines = _count(arg)
        if lines is None:  # Znuny: a count that is no number quotes nothing
            return '""'
        return f"article.body|znuny_quote({lines or ALL_LINES}, {_bool(html)})"
    if key == "CUSTOMER_SUBJECT":
        chars = _count(arg)
        cut = "None" if chars is None else str(chars)
        return f'(article.subject or "No Subject")|znuny_subject(ticket.tn, ticket.hook, {cut})'
    if key in _KNOWN_SINGLES or key.startswith(_FAMILIES):
        return "-"
    return None


def _count(arg: str) -> int | None:
    """The number in ``[n]`` (leading digits, capped), None when there is none."""
    digits = re.match(r"\s*(\d+)", arg)
    if digits is None:
        return None
    value = digits.group(1).lstrip("0") or "0"
    return MAX_COUNT if len(value) > len(str(MAX_COUNT)) else min(int(value), MAX_COUNT)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- the filters the translated templates use (registered in responders.templates) ----------


def znuny_wrap(body: str) -> str:
    """Znuny's re-wrap of a mail body longer than 86 characters before it is quoted: each
    line is broken after runs of 4–86 characters at white space; quoted lines stay whole."""
    if len(body) <= WRAP_WIDTH:
        return body
    pieces = []
    for line in _lines(body):
        wrapped, count = _WRAP.subn(r"\1\n", line)
        pieces.append(wrapped if count else line + "\n")
    return "".join(pieces)


_WRAP = re.compile(r"(^>.+|.{4,86})(?:\s|\Z)", re.MULTILINE)


def znuny_body(body: str, html: bool = False) -> str:
    """The body as ``<OTRS_CUSTOMER_EMAIL>`` renders it ("No Body" when empty)."""
    text = znuny_wrap(str(body) or "No Body").removesuffix("\n")
    if not html:
        return text
    return Markup("<br/>\n").join(escape(line) for line in _lines(text))


def znuny_quote(body: str, lines: int = ALL_LINES, html: bool = False) -> str:
    """The first `lines` lines of the body, as ``<OTRS_CUSTOMER_EMAIL[n]>`` renders them:
    each prefixed "> " in plain text, inside ``<blockquote type="cite">`` in HTML."""
    rows = _lines(znuny_wrap(str(body) or "No Body"))[: max(int(lines), 0)]
    if not html:
        return "\n".join(f"> {row}" for row in rows)
    if not rows:
        return Markup("")
    inner = Markup("<br/>\n").join(escape(row) for row in rows)
    return Markup('<blockquote type="cite">') + inner + Markup("</blockquote>")


def znuny_subject(subject: str, tn: str, hook: str, chars: int | None = None) -> str:
    """``<OTRS_CUSTOMER_SUBJECT[n]>``: the subject cleaned of the ticket number and Re:/Fwd:
    (Znuny's default prefixes), then, when at least `chars` long, cut to `chars` characters
    plus " [...]" (Znuny appends it even when nothing was cut off)."""
    cleaned = clean_subject(str(subject), str(tn) or None, str(hook) or "Ticket#")
    if chars is None or len(cleaned) < chars:
        return cleaned
    return cleaned[:chars] + " [...]"


def _lines(text: str) -> list[str]:
    """Perl's ``split /\\n/``: trailing empty fields are dropped."""
    rows = text.split("\n")
    while rows and rows[-1] == "":
        rows.pop()
    return rows


FILTERS: dict[str, Callable[..., str]] = {
    "znuny_body": znuny_body,
    "znuny_quote": znuny_quote,
    "znuny_subject": znuny_subject,
}
