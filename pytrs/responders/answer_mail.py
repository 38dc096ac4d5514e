"""Composing an agent's answer to a ticket's customer (pure).

One function for every way an agent answers: the postmaster relaying an answer that came by
mail (`responders.answers`) and the ticket service's reply from the web view, the API or the
command line (`tickets.service`). Both send from the queue's system address to the ticket's
customer, who must be exactly one address, with the agent's Cc minus our own addresses, the
ticket number in the subject and In-Reply-To/References to the customer's newest visible
article; DKIM is added by the outbound sender to every outbox row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from email.utils import formataddr

from pytrs.config import Config
from pytrs.parsers.addresses import single_address
from pytrs.responders.message import Draft, Parent
from pytrs.schema.ticket_repo import TicketSummary

# Lines of the customer's last message quoted below an answer written outside a mail client.
QUOTE_LINES = 40
QUOTE_CHARS = 8000


class NoAnswerPossible(ValueError):
    """The ticket cannot be answered by mail; the message says why, fit for a user."""


def system_sender(config: Config, queue: str) -> tuple[str, str] | None:
    """(address, display name) a queue's mail goes out from: its system address, else the
    first one configured; None when there is none."""
    for entry in config.system_addresses:
        if entry.queue == queue:
            return entry.address, entry.name
    if config.system_addresses:
        first = config.system_addresses[0]
        return first.address, first.name
    return None


def customer_address(ticket: TicketSummary) -> str:
    """The ticket's customer as one address. Raises NoAnswerPossible.

    The customer is free text (a login, or what a filter rule set): it is mailed only when it
    is exactly one address, never a list someone slipped in.
    """
    address = single_address(ticket.customer_email)
    if address:
        return address
    if ticket.customer_email:
        raise NoAnswerPossible(
            f"the ticket's customer {ticket.customer_email[:100]!r} is not one e-mail address"
        )
    raise NoAnswerPossible("the ticket's customer has no address")


def answer_cc(
    wanted: Iterable[str], *, leave_out: Iterable[str], is_own: Callable[[str], bool]
) -> list[str]:
    """The Cc of an answer: whom the agent asked for, never our own addresses (a tokened
    notification address is one), nor the addresses in `leave_out` (the customer, agents)."""
    left_out = {a.lower() for a in leave_out}
    return [a for a in wanted if not is_own(a) and a.lower() not in left_out]


def quoted(text: str, *, lines: int = QUOTE_LINES, chars: int = QUOTE_CHARS) -> str:
    """`text` as "> " lines, bounded; "" for an empty text."""
    kept = text.strip("\n")[:chars].splitlines()[:lines]
    if not kept:
        return ""
    return "\n".join(f"> {line}".rstrip() for line in kept)


def answer_draft(
    ticket: TicketSummary, *, sender: tuple[str, str], subject: str, text: str,
    cc: Sequence[str] = (), quote: str = "",
) -> Draft:  # fmt: skip
    """The draft of an answer to `ticket`'s customer. Raises NoAnswerPossible."""
    address = customer_address(ticket)
    customer = formataddr((f"{ticket.first_name} {ticket.last_name}".strip(), address))
    body = text.rstrip() + "\n"
    if quote:
        body += f"\n{quote}\n"
    parent = None
    if ticket.last_customer_message_id:
        parent = Parent(ticket.last_customer_message_id, ticket.last_customer_references)
    return Draft(
        sender=formataddr((sender[1], sender[0])), to=[customer], cc=list(cc),
        subject=subject or ticket.title, text=body, tn=ticket.tn, subject_kind="reply",
        answering=parent,
    )  # fmt: skip
