"""The JSON shapes of the ticket operations: what a ticket looks like in a list and alone, and
what a client sends to create, change, merge or link one.

Place in the flow: pure pydantic models shared by `tickets_read.py` and `tickets_write.py`
(the articles' shapes are in `article_models.py`); their JSON Schema, with every field's
description, is the OpenAPI document's. Times are ISO 8601 in UTC. Names (queue, state,
priority, owner login …) are what clients send and read; ids are looked up by the ticket
service, never trusted from outside.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Literal, get_args, overload

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pytrs.tickets.api_reads import Link
from pytrs.tickets.listing import SORTS, VIEWS
from pytrs.web.api.paging import PageQuery

NAME = 200  # characters of a name (queue, state, login …) a client may send
# RFC 4648 base64 as `base64.b64decode(validate=True)` takes it: the schema says what is valid.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
Sort = Literal["age", "changed", "priority", "number", "title"]
View = Literal["open", "pending", "closed", "all"]
assert set(get_args(Sort)) == set(SORTS) and set(get_args(View)) == set(VIEWS)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware one, so it is written with its zone."""
    return value.replace(tzinfo=UTC) if value is not None else None


def epoch(value: int) -> datetime | None:
    """An escalation time (epoch seconds; 0 for none) as a time."""
    return datetime.fromtimestamp(value, UTC) if value else None


def utc_epoch(value: int) -> datetime:
    """Epoch seconds as a time (UTC)."""
    return datetime.fromtimestamp(value, UTC)


class Strict(BaseModel):
    """A request body: unknown fields are errors naming the field, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --- reading ---


class TicketListQuery(PageQuery):
    """The queue view's filters; the caller's readable queues always apply."""

    queue: str | None = Field(None, max_length=NAME, description="Only this queue (by name).")
    view: View = Field(
        "open",
        description="Which states: open (still wants work), pending, "
        "closed or all; ignored when `state` is given.",
    )
    state: str | None = Field(None, max_length=NAME, description="Only this state (by name).")
    owner: str | None = Field(
        None,
        max_length=NAME,
        description="Only tickets of this owner (an agent's login, or `me` for the caller).",
    )
    unassigned: bool = Field(
        False,
        description="Only unlocked tickets or tickets owned by "
        "the system user (Znuny's available tickets).",
    )
    sort: Sort = Field(
        "age", description="The sort key: age (created), changed, priority, number or title."
    )
    order: Literal["asc", "desc"] | None = Field(
        None,
        description="The order; default: the key's own (oldest first for age, newest "
        "first for changed, highest first for priority, …).",
    )
    escalating: bool = Field(
        False,
        description="Only tickets escalated or escalating within the hour (their earliest "
        "escalation is due by then).",
    )


class TicketSearchQuery(PageQuery):
    """The search text; the caller's readable queues always apply."""

    q: str = Field(
        ...,
        min_length=1,
        max_length=500,
        description="A ticket number, words of subjects and bodies, or addresses of From/To/Cc.",
    )


class TicketRow(BaseModel):
    """A ticket as a list shows it."""

    tn: str = Field(description="The ticket number, the ticket's key in every path.")
    id: int = Field(description="The ticket's id (internal; use the number in paths).")
    title: str = Field(description="The ticket's title.")
    queue: str = Field(description="The queue's name.")
    state: str = Field(description="The state's name.")
    state_type: str = Field(
        description="The state's type: new, open, pending reminder, "
        "pending auto, closed, merged or removed."
    )
    priority: str = Field(description="The priority's name, e.g. `3 normal`.")
    owner: str = Field(description="The owner's login.")
    locked: bool = Field(description="Whether the ticket is locked to its owner.")
    customer_user: str = Field(description="The customer user (login or address); may be empty.")
    created: datetime = Field(description="When the ticket was created (UTC).")
    changed: datetime = Field(description="When the ticket last changed (UTC).")
    escalation: datetime | None = Field(description="The earliest escalation, or null.")


class SearchRow(TicketRow):
    """A ticket found by a search, with why and where."""

    match: Literal["number", "subject", "text"] = Field(
        description="What matched: the ticket number, every word in a subject, or the words "
        "anywhere.",
    )
    article_id: int | None = Field(description="The best matching article (null for a number).")
    subject: str = Field(description="That article's subject.")
    sender: str = Field(description="That article's From.")
    snippet: str = Field(description="A line of that article's text around the first word.")


class EscalationClock(BaseModel):
    """One escalation deadline and the working time left before it."""

    deadline: datetime = Field(description="When it is due (UTC).")
    seconds_left: int = Field(
        description="Working seconds left before the deadline, on the calendar of the "
        "ticket's SLA or queue; negative (working seconds since) once escalated."
    )
    escalated: bool = Field(description="Whether the deadline has passed.")


class Escalation(BaseModel):
    """The escalation clocks the ticket has (each null when not set)."""

    first: datetime | None = Field(description="The earliest of the escalation times.")
    escalated: bool = Field(description="Whether any deadline has passed.")
    response: EscalationClock | None = Field(description="The first response's clock.")
    update: EscalationClock | None = Field(description="The next update's clock.")
    solution: EscalationClock | None = Field(description="The solution's clock.")


class LinkOut(BaseModel):
    """A ticket linked to this one."""

    tn: str = Field(description="The linked ticket's number.")
    kind: Literal["Normal", "ParentChild"] = Field(description="The link's type.")
    role: Literal["normal", "parent", "child"] = Field(
        description="What the linked ticket is to this one."
    )


def links_out(found: Iterable[Link]) -> list[LinkOut]:
    return [LinkOut.model_validate(asdict(k)) for k in found]


class TicketOut(BaseModel):
    """One ticket with every field."""

    tn: str = Field(description="The ticket number, the ticket's key in every path.")
    id: int = Field(description="The ticket's id (internal; use the number in paths).")
    title: str = Field(description="The ticket's title.")
    queue: str = Field(description="The queue's name.")
    queue_id: int = Field(description="The queue's id (`/queues/{id}`, its answer templates).")
    state: str = Field(description="The state's name.")
    state_type: str = Field(description="The state's type (new, open, closed, merged …).")
    priority: str = Field(description="The priority's name.")
    lock: str = Field(description="The lock: lock, unlock or tmp_lock.")
    owner: str = Field(description="The owner's login.")
    responsible: str = Field(description="The responsible agent's login.")
    type: str = Field(description="The ticket type's name.")
    customer_user: str = Field(description="The customer user (login or address); may be empty.")
    customer_id: str = Field(description="The customer (company) id; may be empty.")
    created: datetime | None = Field(description="When the ticket was created (UTC).")
    changed: datetime | None = Field(description="When the ticket last changed (UTC).")
    escalation: Escalation | None = Field(description="Its escalation clocks, or null if none.")
    sla: str | None = Field(description="The SLA's name, or null (the queue's targets apply).")
    pending_until: datetime | None = Field(
        description="The pending time of a pending state (UTC), or null."
    )
    links: list[LinkOut] = Field(description="Linked tickets.")
    articles: int = Field(description="How many articles the ticket has.")
    merged_into: str | None = Field(description="For a merged ticket, the number it went into.")


class HistoryItem(BaseModel):
    """One entry of a ticket's audit trail (Znuny's `ticket_history`)."""

    time: datetime = Field(description="When (UTC).")
    type: str = Field(description="The history type: NewTicket, StateUpdate, SendAnswer, …")
    name: str = Field(description="Znuny's `%%`-separated parameters, as stored.")
    parameters: list[str] = Field(description="The parameters of `name`, separated.")
    who: str = Field(description="The login of the user who made the change.")
    article_id: int | None = Field(description="The article the entry belongs to, if any.")


class HistoryOut(BaseModel):
    """A ticket's audit trail."""

    tn: str = Field(description="The ticket number.")
    entries: list[HistoryItem] = Field(description="The entries, oldest first.")


# --- changing ---


class AttachmentIn(Strict):
    """A file sent in JSON."""

    filename: str = Field(..., min_length=1, max_length=255, description="The file's name.")
    content_type: str = Field(
        "application/octet-stream", max_length=255, description="Its MIME type."
    )
    content: str = Field(
        ...,
        pattern=BASE64,
        description="Its bytes, base64-encoded (RFC 4648, with padding, no line breaks).",
        json_schema_extra={"contentEncoding": "base64"},
    )


class TicketCreate(Strict):
    """A new ticket with its first article (Znuny GenericInterface TicketCreate: the ticket's
    fields by name, then the article's)."""

    title: str = Field(..., min_length=1, max_length=255, description="The ticket's title.")
    queue: str = Field(
        ..., min_length=1, max_length=NAME, description="The queue (by name); you need rw on it."
    )
    state: str = Field("new", max_length=NAME, description="The state (by name).")
    priority: str = Field("3 normal", max_length=NAME, description="The priority (by name).")
    lock: Literal["lock", "unlock"] = Field("unlock", description="Whether it starts locked.")
    owner: str | None = Field(
        None,
        max_length=NAME,
        description="The owner's login (default: you); must have rw on the queue.",
    )
    responsible: str | None = Field(
        None, max_length=NAME, description="The responsible agent's login (default: the owner)."
    )
    type: str | None = Field(None, max_length=NAME, description="The ticket type (by name).")
    customer_user: str = Field("", max_length=NAME, description="The customer user.")
    customer_id: str = Field("", max_length=NAME, description="The customer (company) id.")
    sender: Literal["customer", "agent"] = Field(
        "customer",
        description="Who wrote the first article: the customer (a phone call "
        "taken, a mail forwarded) or you.",
    )
    channel: Literal["email", "phone", "internal"] = Field(
        "phone", description="How the first article came: email, phone or internal."
    )
    visible: bool = Field(True, description="Whether the customer may see the first article.")
    from_: str = Field(
        "",
        alias="from",
        max_length=1000,
        description="The article's From (default: the customer user, or you for an agent article).",
    )
    to: str = Field("", max_length=1000, description="The article's To.")
    cc: str = Field("", max_length=1000, description="The article's Cc.")
    subject: str = Field("", max_length=998, description="The subject (default: the title).")
    body: str = Field(..., min_length=1, max_length=2_000_000, description="The text.")
    content_type: Literal["text/plain"] = Field("text/plain", description="The body's type.")
    attachments: list[AttachmentIn] = Field(
        [],
        max_length=20,
        description="Files in JSON (a multipart request sends file parts instead).",
    )

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


class TicketCreated(BaseModel):
    """The ticket made (its path is the `Location` header)."""

    tn: str = Field(description="The new ticket's number.")
    id: int = Field(description="The new ticket's id.")
    article_id: int = Field(description="The first article's id.")


class TicketPatch(Strict):
    """Fields to change, by name; absent or null fields stay as they are."""

    state: str | None = Field(None, max_length=NAME, description="A state (not `merged`).")
    priority: str | None = Field(None, max_length=NAME, description="A priority.")
    queue: str | None = Field(
        None, max_length=NAME, description="A queue to move to; you need rw on it."
    )
    owner: str | None = Field(
        None,
        max_length=NAME,
        description="The new owner's login; they need rw on the ticket's (new) queue.",
    )
    responsible: str | None = Field(None, max_length=NAME, description="A responsible agent.")
    lock: Literal["lock", "unlock"] | None = Field(None, description="Lock or unlock.")
    title: str | None = Field(None, max_length=255, description="A new title.")
    type: str | None = Field(None, max_length=NAME, description="A ticket type.")
    customer_user: str | None = Field(None, max_length=NAME, description="The customer user.")
    customer_id: str | None = Field(None, max_length=NAME, description="The customer id.")
    sla: str | None = Field(
        None, max_length=NAME, description='An SLA (by name); "" removes the ticket\'s SLA.'
    )
    pending_until: AwareDatetime | None = Field(
        None,
        description="The pending time (RFC 3339 with a zone, in the future), for a pending "
        "state; required with one unless the ticket has a pending time already.",
    )


class ChangedField(BaseModel):
    """One field a change changed."""

    field: str = Field(description="The field's name.")
    old: str = Field(description="Its value before.")
    new: str = Field(description="Its value after.")


class TicketPatched(BaseModel):
    """The ticket after a change, and what changed."""

    ticket: TicketOut = Field(description="The ticket after the change.")
    changed: list[ChangedField] = Field(description="What changed (empty when nothing did).")


class MergeIn(Strict):
    """The ticket to merge into."""

    into: str = Field(
        ..., min_length=1, max_length=NAME, description="The number of the ticket to merge into."
    )


class MergeOut(BaseModel):
    """The merged ticket and where it went."""

    ticket: TicketOut = Field(description="The merged ticket, after the merge.")
    into: str = Field(description="The number of the ticket it was merged into.")


class LinkIn(Strict):
    """The ticket to link to, and how."""

    other: str = Field(
        ..., min_length=1, max_length=NAME, description="The number of the ticket to link to."
    )
    kind: Literal["Normal", "ParentChild"] = Field(
        "Normal", description="Normal, or ParentChild (this ticket is the parent)."
    )


class LinkCreated(BaseModel):
    """Whether a link was made, and the ticket's links after."""

    created: bool = Field(description="False when the tickets were linked so already.")
    links: list[LinkOut] = Field(description="This ticket's links after the change.")
