"""What storage knows about existing tickets, in the shape routing reads it.

The ground floor between `schema.known_repo`, which loads these records for a whole batch, and
`routing.decision`, which decides with them: neither floor imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# The user a ticket belongs to when nobody took it (Znuny's PostmasterUserID): follow-up lock
# would lock the ticket to nobody in particular.
SYSTEM_USER_ID = 1


@dataclass(frozen=True, slots=True)
class TicketRef:
    """What routing needs to know about an existing ticket."""

    id: int
    tn: str
    queue: str
    state: str
    state_type: str
    follow_up: str  # the ticket's current queue's option: possible | reject | new_ticket
    follow_up_lock: bool = False
    owner_id: int = SYSTEM_USER_ID
    merged_from: tuple[str, ...] = ()  # numbers of merged tickets followed to reach this one

    @property
    def is_closed(self) -> bool:
        return self.state_type.startswith(("close", "removed"))


@dataclass(frozen=True, slots=True)
class SameMail:
    """An earlier copy of this very mail (same Message-ID and body) and where it went."""

    ticket: TicketRef
    inbox_id: int
    article_id: int | None = None  # None while the copy is in the same batch


@dataclass(slots=True)
class Known:
    """What the database (and the batch so far) knows that routing may need."""

    by_tn: dict[str, TicketRef] = field(default_factory=dict)
    by_message_id: dict[str, TicketRef] = field(default_factory=dict)
    by_external: dict[tuple[str, str], TicketRef] = field(default_factory=dict)  # (field, value)
    # Ticket id → lower-cased addresses of its customer and of customer-visible correspondence
    # (which includes our own addresses: `is_participant` never counts those).
    participants: dict[int, frozenset[str]] = field(default_factory=dict)
    # By (inbox dedup key, fingerprint): see `fingerprint`.
    same_mail: dict[tuple[str, str], SameMail] = field(default_factory=dict)


def fingerprint(from_: str, to: str, cc: str, subject: str) -> str:
    """What, besides Message-ID and body, makes two inbox rows copies of one mail.

    Copies of a mail sent to several system addresses differ only in trace headers (Received,
    Delivered-To …); a message re-sent with another subject or other recipients is a new mail,
    even when a sloppy client reuses the Message-ID.
    """
    parts = (" ".join(value.split()) for value in (from_, to, cc, subject))
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:32]
