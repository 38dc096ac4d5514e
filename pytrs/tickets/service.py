"""The ticket service: the one place that knows what a ticket change means.

Every writer calls it in its own transaction: the web view, the JSON API, the scheduler, the
command line, and the postmaster (whose batches use the same plans, row builders and writes:
`tickets.changes`, `tickets.rows`, `tickets.writes`). Each change writes Znuny's
`ticket_history` entry (`tickets.history`), bumps `change_time`/`change_by`, and returns what
changed so that the caller can tell people. Permission checks are the caller's; the service
enforces the ticket's invariants and raises `TicketError`s with a message fit for a user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from email.utils import formataddr

from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config
from pytrs.parsers.addresses import base_address
from pytrs.responders.answer_mail import (
    NoAnswerPossible,
    answer_cc,
    answer_draft,
    customer_address,
    quoted,
    system_sender,
)
from pytrs.responders.message import Attachment, ComposeError, Composer
from pytrs.routing.ticket_number import TicketNumberGenerator, make_generator
from pytrs.schema import ticket_repo
from pytrs.schema.database import utcnow
from pytrs.schema.tables import article
from pytrs.tickets import changes as semantics
from pytrs.tickets import history, links, reads, rows
from pytrs.tickets.errors import InvalidChange, TicketNotFound, UnknownName
from pytrs.tickets.model import (
    Actor,
    ArticleAttachment,
    ArticleInput,
    Changes,
    HistoryEntry,
    Names,
    NewTicket,
    Reply,
    TicketRecord,
    TicketUpdate,
)
from pytrs.tickets.numbers import counter_for, new_numbers
from pytrs.tickets.outgoing import Outgoing, store_outgoing
from pytrs.tickets.writes import Writes, insert_articles, insert_tickets

MERGE_NOTE = "Merged Ticket {source} to {target}."


class TicketService:
    """Built once per process from the configuration; every method works in the caller's
    transaction (`conn`) and commits nothing."""

    def __init__(self, config: Config, composer: Composer, numbers: TicketNumberGenerator) -> None:
        self.config = config
        self.composer = composer
        self.numbers = numbers

    @classmethod
    def from_config(cls, config: Config) -> TicketService:
        """Raises ConfigError when mail cannot be composed (no loop-marker key): `config`
        must carry the runtime secrets (`schema.system_data.with_runtime_secrets`)."""
        tc = config.ticket
        numbers = make_generator(
            tc.number_generator, tc.system_id, tc.hook, tc.check_system_id, tc.min_counter_size
        )
        return cls(config, Composer.from_config(config), numbers)

    # --- reading ----------------------------------------------------------------------------

    async def find(self, conn: AsyncConnection, tn: str) -> TicketRecord:
        """The ticket with number `tn`. Raises TicketNotFound."""
        found = await reads.find_number(conn, tn)
        if found is None:
            raise TicketNotFound(f"no ticket with number {tn.strip()!r}")
        return found

    async def get(
        self, conn: AsyncConnection, ticket_id: int, *, lock: bool = True
    ) -> TicketRecord:
        """The ticket with id `ticket_id`, its row locked for the transaction by default.
        Raises TicketNotFound."""
        found = (await reads.load_tickets(conn, [ticket_id], lock=lock)).get(ticket_id)
        if found is None:
            raise TicketNotFound(f"no ticket with id {ticket_id}")
        return found

    async def agent(self, conn: AsyncConnection, login: str) -> Actor:
        """The valid agent with `login`. Raises UnknownName."""
        found = await reads.find_agent(conn, login)
        if found is None:
            raise UnknownName("agent", login)
        return found

    async def names(self, conn: AsyncConnection) -> Names:
        return await reads.load_names(conn)

    # --- changing ---------------------------------------------------------------------------

    async def update(
        self, conn: AsyncConnection, ticket_id: int, update: TicketUpdate, *, actor: Actor
    ) -> Changes:
        """Apply `update`; returns what changed (empty when nothing did).

        Raises TicketNotFound, TicketMerged, UnknownName or InvalidChange; nothing is written
        then.
        """
        ticket = await self.get(conn, ticket_id)
        found = semantics.plan_update(ticket, update, await self.names(conn))
        if found:
            writes = Writes(utcnow(), actor.user_id)
            writes.changes(found)
            await writes.flush(conn)
        return found

    async def add_article(
        self, conn: AsyncConnection, ticket_id: int, content: ArticleInput, *, actor: Actor
    ) -> int:
        """Add an article (with its raw mail and attachments); returns its id.

        Its history entry is `content.history_kind` (default `FollowUp` `%%<tn>`). Raises
        TicketNotFound or TicketMerged.
        """
        ticket = await self.get(conn, ticket_id)
        semantics.refuse_merged(ticket)
        writes = Writes(utcnow(), actor.user_id)
        article_id = await add_article(conn, ticket, content, writes)
        await writes.flush(conn)
        return article_id

    async def note(
        self, conn: AsyncConnection, ticket_id: int, *, actor: Actor, body: str,
        subject: str | None = None,
    ) -> int:  # fmt: skip
        """An internal note by `actor` (not visible to the customer); returns the article id."""
        if not body.strip():
            raise InvalidChange("a note needs a text")
        kind, name = history.add_note()
        content = ArticleInput(
            sender="agent", visible=False, channel="internal", from_=_agent_from(actor),
            subject=subject or "Note", body=body, history_kind=kind, history_name=name,
        )  # fmt: skip
        return await self.add_article(conn, ticket_id, content, actor=actor)

    async def reply(
        self, conn: AsyncConnection, ticket_id: int, *, actor: Actor, body: str,
        cc: Sequence[str] = (), state: str | None = None, subject: str | None = None,
        attachments: Sequence[ArticleAttachment] = (), quote: bool = True,
        pending_until: int | None = None,
    ) -> Reply:  # fmt: skip
        """Answer the ticket's customer as `actor`: an agent article, the raw mail, an outbox
        row and `SendAnswer`; then `state` (a pending state with `pending_until`, epoch
        seconds), when given. The queue's signature ends the text;
        the customer's last mail is quoted below it unless `quote` is false (a body the
        agent edited with the quote in it); `attachments` go with the mail and the article.

        Raises TicketNotFound, TicketMerged, UnknownName (state) or InvalidChange (no single
        customer address, no system address for the queue, an unusable Cc, an empty text).
        """
        ticket = await self.get(conn, ticket_id)
        semantics.refuse_merged(ticket)
        if not body.strip():
            raise InvalidChange("an answer needs a text")
        after = None
        if state is not None:  # checked before anything is written
            wanted = TicketUpdate(state=state, pending_until=pending_until)
            after = semantics.plan_update(ticket, wanted, await self.names(conn))
        summary = (await ticket_repo.ticket_summaries(conn, [ticket_id]))[ticket_id]
        sender = system_sender(self.config, ticket.queue)
        if sender is None:
            raise InvalidChange(f"queue {ticket.queue} has no system address to answer from")
        last_subject, last_body = await reads.last_customer_text(conn, ticket_id)
        own = await reads.system_addresses(conn)
        own.update(a.address for a in self.config.system_addresses)
        try:
            address = customer_address(summary)
            draft = answer_draft(
                summary, sender=sender, subject=subject or last_subject or ticket.title,
                text=body + self._signature(ticket.queue),
                quote=quoted(last_body) if quote else "",
                cc=answer_cc(cc, leave_out=[address], is_own=lambda a: base_address(a) in own),
            )  # fmt: skip
            files = [Attachment(a.filename, a.content_type, a.content) for a in attachments]
            composed = self.composer.compose(replace(draft, attachments=files))
        except (NoAnswerPossible, ComposeError) as exc:
            raise InvalidChange(f"ticket {ticket.tn} cannot be answered: {exc}") from exc
        writes = Writes(utcnow(), actor.user_id)
        sent = Outgoing(summary, composed, "answer", "SendAnswer", article_sender="agent",
                        attachments=attachments)  # fmt: skip
        await store_outgoing(conn, [sent], writes)
        writes.touch(ticket_id)
        if after:
            writes.changes(after)
        await writes.flush(conn)
        assert sent.article_id is not None
        return Reply(sent.article_id, composed.message_id, composed.recipients)

    def _signature(self, queue_name: str) -> str:
        """The queue's signature as it ends an answer ("" when it has none)."""
        for queue_config in self.config.queues:
            if queue_config.name == queue_name and queue_config.signature.strip():
                return "\n\n-- \n" + queue_config.signature.strip("\n")
        return ""

    async def merge(
        self, conn: AsyncConnection, ticket_id: int, *, into: int, actor: Actor
    ) -> Changes:
        """Merge ticket `ticket_id` into `into` (Znuny's TicketMerge): its articles move to
        the target, it gets a note saying so, `Merged` history on both, state `merged`,
        unlocked, and the target becomes its parent. Returns the source's changes.

        Raises TicketNotFound, TicketMerged or InvalidChange.
        """
        found = await reads.load_tickets(conn, {ticket_id, into}, lock=True)
        for wanted in (ticket_id, into):
            if wanted not in found:
                raise TicketNotFound(f"no ticket with id {wanted}")
        source, target = found[ticket_id], found[into]
        source_changes = semantics.plan_merge(source, target, await self.names(conn))
        now = utcnow()
        writes = Writes(now, actor.user_id)
        await conn.execute(
            sql_update(article)
            .where(article.c.ticket_id == source.id)
            .values(ticket_id=target.id, change_time=now, change_by=actor.user_id)
        )
        text = MERGE_NOTE.format(source=source.tn, target=target.tn)
        note = ArticleInput(
            sender="agent", visible=True, channel="internal", from_=_agent_from(actor),
            subject="Ticket Merged", body=text, history_kind="AddNote", history_name=f"%%{text}",
        )  # fmt: skip
        await add_article(conn, source, note, writes)
        name = history.merged(source.tn, source.id, target.tn, target.id)
        writes.history([history.entry(*name, source), history.entry(*name, target)])
        await links.insert_links(conn, [links.link_row(target.id, source.id, "ParentChild", now,
                                                       actor.user_id)])  # fmt: skip
        writes.history(links.link_entries(target, source, "ParentChild"))
        writes.changes(source_changes)
        writes.touch(target.id)
        await writes.flush(conn)
        return source_changes

    async def link(
        self, conn: AsyncConnection, ticket_id: int, other_id: int, *, actor: Actor,
        kind: str = "Normal",
    ) -> bool:  # fmt: skip
        """Link two tickets; False when they were linked so already. Raises TicketNotFound,
        UnknownName (kind) or InvalidChange."""
        found = await reads.load_tickets(conn, {ticket_id, other_id})
        for wanted in (ticket_id, other_id):
            if wanted not in found:
                raise TicketNotFound(f"no ticket with id {wanted}")
        now = utcnow()
        row = links.link_row(ticket_id, other_id, kind, now, actor.user_id)
        if kind == "Normal" and await links.linked(conn, ticket_id, other_id, kind):
            return False
        if not await links.insert_links(conn, [row]):
            return False
        writes = Writes(now, actor.user_id)
        writes.history(links.link_entries(found[ticket_id], found[other_id], kind))
        await writes.flush(conn)
        return True

    async def create(
        self, conn: AsyncConnection, new: NewTicket, *, actor: Actor
    ) -> tuple[int, str]:
        """Create a ticket (and its first article); returns (id, ticket number).

        Raises UnknownName or InvalidChange.
        """
        names = await self.names(conn)
        values = new_ticket_values(new, names, actor)
        allocate = counter_for(self.config.database.mode, conn, self.numbers)
        [tn] = await new_numbers(conn, self.numbers, 1, allocate)
        now = utcnow()
        [ticket_id] = await insert_tickets(
            conn, [rows.ticket_row({"tn": tn, **values}, now, actor.user_id)]
        )
        record = await self.get(conn, ticket_id, lock=False)
        writes = Writes(now, actor.user_id)
        writes.new_tickets([ticket_id])
        writes.history([history.entry(*new_ticket_name(record), record)])
        if new.article is not None:
            content = new.article
            if content.history_name is None and content.history_kind == "FollowUp":
                kind, name = history.email(content.sender == "customer")
                content = replace(content, history_kind=kind, history_name=name)
            await add_article(conn, record, content, writes)
        await writes.flush(conn)
        return ticket_id, tn


def new_ticket_name(record: TicketRecord, instead_of: str = "") -> tuple[str, str]:
    """The `NewTicket` entry of a ticket just created."""
    return history.new_ticket(
        record.tn, record.queue, record.priority, record.state, record.id, instead_of
    )


def new_ticket_values(new: NewTicket, names: Names, actor: Actor) -> dict[str, object]:
    """The columns of a new ticket by the service. Raises UnknownName or InvalidChange."""
    title = " ".join(new.title.split())[: semantics.TITLE_MAX]
    if not title:
        raise InvalidChange("a ticket's title cannot be empty")

    def lookup(kind: str, name: str, table: dict[str, int]) -> int:
        if name not in table:
            raise UnknownName(kind, name, list(table))
        return table[name]

    state = names.states.get(new.state)
    if state is None:
        raise UnknownName("state", new.state, list(names.states))
    if state[1] == "merged":
        raise InvalidChange("a new ticket cannot start merged")
    owner = lookup("agent", new.owner, dict(names.users)) if new.owner else actor.user_id
    lock = lookup("lock", new.lock, dict(names.locks))
    if lock != names.locks["unlock"] and state[1] in ("closed", "removed"):
        raise InvalidChange("a closed ticket cannot be locked")
    return {
        "title": title, "queue_id": lookup("queue", new.queue, dict(names.queues)),
        "ticket_state_id": state[0],
        "ticket_priority_id": lookup("priority", new.priority, dict(names.priorities)),
        "ticket_lock_id": lock, "user_id": owner,
        "responsible_user_id": (
            lookup("agent", new.responsible, dict(names.users)) if new.responsible else owner
        ),
        "type_id": lookup("type", new.type, dict(names.types)) if new.type else 1,
        "customer_user_id": new.customer_user.strip() or None,
        "customer_id": new.customer_id.strip() or None,
    }  # fmt: skip


async def add_article(
    conn: AsyncConnection, ticket: TicketRecord, content: ArticleInput, writes: Writes
) -> int:
    """Insert one article and queue its rows and history in `writes`; returns its id."""
    [article_id] = await insert_articles(
        conn, [rows.article_row(ticket.id, content, "", writes.now, writes.by)]
    )
    writes.article(content, article_id)
    writes.history([article_entry(ticket, content, article_id)])
    writes.touch(ticket.id)
    return article_id


def article_entry(ticket: TicketRecord, content: ArticleInput, article_id: int) -> HistoryEntry:
    """The history entry an article is added with (default: `FollowUp` `%%<tn>`)."""
    name = content.history_name
    if name is None:
        name = history.follow_up(ticket.tn)[1]
    return history.entry(content.history_kind, name, ticket, article_id)


def _agent_from(actor: Actor) -> str:
    return formataddr((actor.name or actor.login, actor.email)) if actor.email else actor.login
