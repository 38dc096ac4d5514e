"""The values the ticket service takes and returns: who acts, what to change, what changed.

Plain frozen dataclasses with no behaviour beyond small conveniences, so that `changes`
(pure semantics), `service` (the facade) and the postmaster's batch path share one vocabulary.
Names (state, priority, queue, type, agent login) are what callers pass; ids are looked up by
the service (`Names`), never trusted from outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: an agent (`users` row), or `Actor.SYSTEM` for the mail path and
    the scheduler. Permission checks are the caller's; the service records `user_id` as
    `change_by`/`create_by`."""

    user_id: int
    login: str
    email: str = ""
    name: str = ""

    SYSTEM: ClassVar[Actor]


Actor.SYSTEM = Actor(1, "root@localhost", "", "Admin pytrs")


@dataclass(frozen=True, slots=True)
class TicketUpdate:
    """Requested changes by name; None leaves a field as it is."""

    state: str | None = None
    priority: str | None = None
    queue: str | None = None
    owner: str | None = None  # an agent's login
    responsible: str | None = None
    lock: str | None = None  # "lock", "unlock" or "tmp_lock"
    title: str | None = None
    type: str | None = None
    customer_user: str | None = None
    customer_id: str | None = None
    sla: str | None = None  # an SLA's name; "" clears it
    pending_until: int | None = None  # epoch seconds; for a pending state


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A ticket as the service reads it (names and ids side by side)."""

    id: int
    tn: str
    title: str
    queue: str
    queue_id: int
    state: str
    state_id: int
    state_type: str
    priority: str
    priority_id: int
    lock: str
    lock_id: int
    owner: str
    owner_id: int
    responsible: str
    responsible_id: int
    type: str
    type_id: int
    customer_user: str
    customer_id: str
    create_time: datetime | None = None
    change_time: datetime | None = None
    sla: str = ""
    sla_id: int | None = None
    until_time: int = 0  # the pending time, epoch seconds (0 = none)

    @property
    def pending(self) -> bool:
        """In a state that waits for its pending time (a reminder or an auto-close)."""
        return self.state_type in ("pending reminder", "pending auto")

    @property
    def merged(self) -> bool:
        return self.state_type == "merged"

    @property
    def closed(self) -> bool:
        """Closed, removed or merged: a ticket nobody works on."""
        return self.state_type in ("closed", "removed", "merged")


@dataclass(frozen=True, slots=True)
class Names:
    """Valid names and their ids, as the database (or the seed, for the mail path) has them."""

    states: Mapping[str, tuple[int, str]]  # name → (id, state type name)
    priorities: Mapping[str, int]
    queues: Mapping[str, int]
    types: Mapping[str, int]
    users: Mapping[str, int]  # valid agents: login → id
    locks: Mapping[str, int]
    slas: Mapping[str, int] = field(default_factory=dict)
    # Id → name per kind, made when first asked for.
    _reverse: dict[str, dict[int, str]] = field(default_factory=dict, compare=False, repr=False)

    def name_of(self, kind: str, wanted: int) -> str:
        """The name of id `wanted` among `kind` ("states", "users" …); the id as text when
        there is none."""
        return self._by_id(kind).get(wanted, str(wanted))

    def _by_id(self, kind: str) -> dict[int, str]:
        found = self._reverse.get(kind)
        if found is None:
            table = getattr(self, kind)
            if kind == "states":
                found = {i: name for name, (i, _kind) in table.items()}
            else:
                found = {i: name for name, i in table.items()}
            self._reverse[kind] = found
        return found


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One `ticket_history` row before it is written: Znuny's type and name, the article it
    belongs to, and the ticket's queue, state, owner, priority and type at that step."""

    kind: str
    name: str
    ticket_id: int
    queue_id: int
    state_id: int
    owner_id: int
    priority_id: int
    type_id: int = 1
    article_id: int | None = None


@dataclass(frozen=True, slots=True)
class Changed:
    """One field an update changed, by name (for notifications and the user's feedback)."""

    field: str
    old: str
    new: str


@dataclass(slots=True)
class Changes:
    """What a change did: the fields (empty when nothing changed), the columns to write, the
    history entries, and the ticket as it is afterwards."""

    ticket: TicketRecord
    fields: list[Changed] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    # Steps the lenient mail path skipped, with why (for the routing trace).
    skipped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def changed(self, name: str) -> bool:
        return any(c.field == name for c in self.fields)


@dataclass(frozen=True, slots=True)
class ArticleAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""
    disposition: str = "attachment"
    alternative: bool = False


@dataclass(frozen=True, slots=True)
class ArticleInput:
    """An article to add: who wrote it (customer, agent or system), whether the customer sees
    it, its header fields, text body, raw mail and attachments. `history` overrides the entry
    written with it (default: `FollowUp` `%%<tn>` as for mail to an existing ticket)."""

    sender: str = "customer"  # customer | agent | system
    visible: bool = True
    from_: str = ""
    to: str = ""
    cc: str = ""
    subject: str = ""
    body: str = ""
    raw: bytes = b""
    attachments: Sequence[ArticleAttachment] = ()
    reply_to: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    content_type: str = "text/plain; charset=utf-8"
    html: str | None = None  # sanitised HTML body, kept as attachment file-2 (REFERENCE §12)
    channel: str = "email"  # email | phone | internal
    history_kind: str = "FollowUp"
    history_name: str | None = None  # None: "%%<tn>"
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class NewTicket:
    """A ticket to create, optionally with its first article."""

    title: str
    queue: str
    customer_user: str = ""
    customer_id: str = ""
    state: str = "new"
    priority: str = "3 normal"
    lock: str = "unlock"
    owner: str | None = None  # None: the acting agent (the system user for mail)
    responsible: str | None = None
    type: str | None = None
    article: ArticleInput | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An agent's answer as stored and queued."""

    article_id: int
    message_id: str
    recipients: tuple[str, ...]
