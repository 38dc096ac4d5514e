"""Typed errors of the ticket service, each with one line a user can act on.

Raised by `tickets.changes` (pure invariant checks) and `tickets.service` (names and tickets
that do not exist). The web view, the JSON API and the command line show `str(error)` as it
is; the subclasses let them pick a status code or exit code without parsing the text.
"""

from __future__ import annotations


class TicketError(Exception):
    """A ticket change that cannot be made; `str()` is one line fit for a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message.partition("\n")[0])
        self.message = message.partition("\n")[0]

    def __str__(self) -> str:
        return self.message


class TicketNotFound(TicketError):
    """No ticket with that number or id."""


class UnknownName(TicketError):
    """A state, priority, queue, type or agent that does not exist or is not valid."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None) -> None:
        hint = ""
        if known:
            shown = ", ".join(repr(k) for k in sorted(known)[:12])
            hint = f" (known: {shown}{', …' if len(known) > 12 else ''})"
        super().__init__(f"no valid {kind} {name!r}{hint}")
        self.kind = kind
        self.name = name


class TicketMerged(TicketError):
    """The ticket was merged into another one: it takes no changes and no articles."""


class InvalidChange(TicketError):
    """A change the ticket's current state does not allow (locking a closed ticket, an empty
    title, setting `merged` by hand, a reply with no one to send it to …)."""
