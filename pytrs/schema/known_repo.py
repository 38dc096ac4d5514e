"""What routing needs to know about existing tickets, loaded for a whole batch at once.

The worker collects from a parsed batch every ticket number, referenced or bounced Message-ID,
external number and dedup key, and this module turns them into one `routing.Known`: tickets by
number and by Message-ID (merged tickets followed to their target, REFERENCE §4), tickets by
external number, the participants of tickets found by number (sender-bound follow-ups), and
earlier copies of the same mail. A handful of queries per batch, whatever its size.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from email.utils import getaddresses
from typing import Any, TypeVar, cast

from sqlalchemy import Row, Select, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import outbox_repo, storable
from pytrs.schema.inbox_repo import DONE
from pytrs.schema.tables import (
    TicketState,
    TicketStateType,
    article,
    article_data_mime,
    customer_user,
    dynamic_field,
    dynamic_field_value,
    inbox,
    queue,
    ticket,
    ticket_history,
)
from pytrs.schema.ticket_repo import FOLLOW_UP_NAMES
from pytrs.vocabulary import znuny
from pytrs.vocabulary.known import Known, SameMail, TicketRef, fingerprint
from pytrs.vocabulary.message_ids import message_id_md5

_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)

K = TypeVar("K")

# Znuny follows at most this many merges from a ticket number; deeper chains count as unknown.
MAX_MERGE_DEPTH = 10


@dataclass(frozen=True, slots=True)
class Wanted:
    """The keys a batch needs looked up."""

    tns: Collection[str] = ()
    message_ids: Collection[str] = ()
    externals: Collection[tuple[str, str]] = ()  # (dynamic field, value)
    dedup_keys: Collection[str] = ()
    batch_ids: Collection[int] = ()  # inbox ids of the batch (not earlier copies of themselves)


@dataclass(slots=True)
class Lookup:
    """`Known` for routing, plus the article ids of referenced Message-IDs (bounces record a
    send error on the bounced article)."""

    known: Known
    article_by_message_id: dict[str, int]


def _ticket_ref_query() -> Select[Any]:
    return (
        select(
            ticket.c.id, ticket.c.tn, queue.c.name.label("queue"), _state.c.name.label("state"),
            _state_type.c.name.label("state_type"), queue.c.follow_up_id,
            queue.c.follow_up_lock, ticket.c.user_id,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_state_type, _state_type.c.id == _state.c.type_id)
    )  # fmt: skip


def _ref(row: Row[Any]) -> TicketRef:
    return TicketRef(
        row.id, row.tn, row.queue, row.state, row.state_type,
        FOLLOW_UP_NAMES.get(row.follow_up_id, "possible"), bool(row.follow_up_lock),
        int(row.user_id),
    )  # fmt: skip


def _in(name: str) -> Any:
    """A list parameter of a statement built once: `IN (…)` expanded at execution."""
    return bindparam(name, expanding=True)


# The batch's lookups are built once, their keys bound at execution: SQLAlchemy then finds
# each compiled statement by a cache key it computes once, instead of rebuilding the joins and
# deriving the key again for every batch (which cost more than running the statement).
_BY_TN = _ticket_ref_query().where(ticket.c.tn.in_(_in("tns")))
_BY_ID = _ticket_ref_query().where(ticket.c.id.in_(_in("ids")))


def _by_message_id_query() -> Select[Any]:
    # Znuny gives up when a Message-ID is stored on several tickets; pytrs takes the oldest
    # article, which is where the conversation started.
    first_article = (
        select(
            article_data_mime.c.a_message_id_md5.label("md5"),
            func.min(article.c.id).label("article_id"),
        )
        .join(article, article.c.id == article_data_mime.c.article_id)
        .where(article_data_mime.c.a_message_id_md5.in_(_in("md5s")))
        .group_by(article_data_mime.c.a_message_id_md5)
        .subquery()
    )
    return (
        _ticket_ref_query()
        .add_columns(first_article.c.md5, first_article.c.article_id)
        .join(article, article.c.ticket_id == ticket.c.id)
        .join(first_article, first_article.c.article_id == article.c.id)
    )


def _same_mail_query() -> Select[Any]:
    return (
        _ticket_ref_query()
        .add_columns(
            inbox.c.dedup_key, inbox.c.id.label("inbox_id"), inbox.c.article_id,
            article_data_mime.c.a_from, article_data_mime.c.a_to, article_data_mime.c.a_cc,
            article_data_mime.c.a_subject,
        )
        .join(inbox, inbox.c.ticket_id == ticket.c.id)
        .join(article_data_mime, article_data_mime.c.article_id == inbox.c.article_id)
        .where(
            inbox.c.dedup_key.in_(_in("keys")), inbox.c.state == DONE,
            inbox.c.id.not_in(_in("batch_ids")),
        )
        .order_by(inbox.c.id)
    )  # fmt: skip


_BY_MESSAGE_ID = _by_message_id_query()
_SAME_MAIL = _same_mail_query()


async def load_known(conn: AsyncConnection, wanted: Wanted) -> Lookup:
    """Everything routing may need for a batch (see the module docstring)."""
    known = Known()
    articles: dict[str, int] = {}
    if wanted.tns:
        rows = await conn.execute(_BY_TN, {"tns": list(wanted.tns)})
        known.by_tn = {r.tn: _ref(r) for r in rows}
    if wanted.message_ids:
        articles = await _by_message_id(conn, wanted.message_ids, known)
    if wanted.externals:
        await _by_external(conn, wanted.externals, known)
    if wanted.dedup_keys:
        await _same_mail(conn, wanted.dedup_keys, wanted.batch_ids, known)
    await _follow_merges(conn, known)
    await _load_participants(conn, {t.id for t in known.by_tn.values()}, known)
    return Lookup(known, articles)


async def _by_message_id(
    conn: AsyncConnection, message_ids: Collection[str], known: Known
) -> dict[str, int]:
    md5s = {message_id_md5(m): m for m in message_ids}
    articles: dict[str, int] = {}
    for row in await conn.execute(_BY_MESSAGE_ID, {"md5s": list(md5s)}):
        known.by_message_id[md5s[row.md5]] = _ref(row)
        articles[md5s[row.md5]] = int(row.article_id)
    await _by_sent_message_id(conn, [m for m in message_ids if m not in articles], known, articles)
    return articles


async def _by_sent_message_id(
    conn: AsyncConnection, message_ids: list[str], known: Known, articles: dict[str, int]
) -> None:
    """Mail pytrs sent (auto-responses, relayed agent answers) threads replies and bounces
    back to its ticket by the Message-ID it went out with (SPEC S7)."""
    sent = await outbox_repo.find_by_message_ids(conn, message_ids)
    ticket_ids = {t for t, _ in sent.values() if t is not None}
    if not ticket_ids:
        return
    rows = await conn.execute(_BY_ID, {"ids": list(ticket_ids)})
    refs = {r.id: _ref(r) for r in rows}
    for message_id, (ticket_id, article_id) in sent.items():
        if ticket_id in refs:
            known.by_message_id[message_id] = refs[ticket_id]
            if article_id is not None:
                articles[message_id] = article_id


async def _by_external(
    conn: AsyncConnection, externals: Collection[tuple[str, str]], known: Known
) -> None:
    # Stored values were made storable; look the same form up (a NUL would fail the query).
    wanted = {(f, storable.clean(v)): (f, v) for f, v in externals}
    query = (
        _ticket_ref_query()
        .add_columns(dynamic_field.c.name.label("field"), dynamic_field_value.c.value_text)
        .join(dynamic_field_value, dynamic_field_value.c.object_id == ticket.c.id)
        .join(dynamic_field, dynamic_field.c.id == dynamic_field_value.c.field_id)
        .where(
            dynamic_field.c.name.in_({f for f, _ in wanted}),
            dynamic_field_value.c.value_text.in_({v for _, v in wanted}),
        )
        .order_by(ticket.c.id)  # the oldest ticket storing a number wins
    )
    for row in await conn.execute(query):
        key = (row.field, row.value_text)
        if key in wanted:
            known.by_external.setdefault(wanted[key], _ref(row))


async def _same_mail(
    conn: AsyncConnection, keys: Collection[str], batch_ids: Collection[int], known: Known
) -> None:
    params = {"keys": list(keys), "batch_ids": list(batch_ids)}
    for row in await conn.execute(_SAME_MAIL, params):
        print_ = fingerprint(row.a_from or "", row.a_to or "", row.a_cc or "", row.a_subject or "")
        known.same_mail.setdefault(
            (row.dedup_key, print_), SameMail(_ref(row), int(row.inbox_id), int(row.article_id))
        )


async def _follow_merges(conn: AsyncConnection, known: Known) -> None:
    """Replace merged tickets by the ticket they were merged into (Znuny's TicketCheckNumber:
    the newest `Merged` history entry names the target id last; at most 10 levels)."""
    targets: dict[int, TicketRef | None] = {}
    pending = {r.id: r for r in _all_refs(known) if r.state_type == "merged"}
    chain: dict[int, tuple[str, ...]] = {i: (r.tn,) for i, r in pending.items()}
    for _ in range(MAX_MERGE_DEPTH):
        if not pending:
            break
        into = await _merge_targets(conn, pending)
        rows = await conn.execute(_BY_ID, {"ids": list(set(into.values()))})
        loaded = {r.id: _ref(r) for r in rows}
        following: dict[int, TicketRef] = {}
        for start, ref in pending.items():
            target = loaded.get(into.get(ref.id, -1))
            if target is None:
                targets[start] = None
            elif target.state_type == "merged":
                chain[start] += (target.tn,)
                following[start] = target
            else:
                targets[start] = replace(target, merged_from=chain[start])
        pending = following
    for start in pending:  # still merged after MAX_MERGE_DEPTH hops
        targets[start] = None
    if targets:
        _redirect(known, targets)


async def _merge_targets(conn: AsyncConnection, refs: dict[int, TicketRef]) -> dict[int, int]:
    """Ticket id → the id its newest `Merged` history entry names as the target."""
    rows = await conn.execute(
        select(ticket_history.c.ticket_id, ticket_history.c.name)
        .where(
            ticket_history.c.ticket_id.in_([r.id for r in refs.values()]),
            ticket_history.c.history_type_id == znuny.history_type_id("Merged"),
        )
        .order_by(ticket_history.c.id.desc())
    )
    into: dict[int, int] = {}
    for ticket_id, name in rows:
        last = name.rsplit("%%", 1)[-1].strip()
        if ticket_id not in into and last.isdigit() and int(last) != ticket_id:
            into[ticket_id] = int(last)
    return into


def _all_refs(known: Known) -> Iterable[TicketRef]:
    yield from known.by_tn.values()
    yield from known.by_message_id.values()
    yield from known.by_external.values()
    yield from (copy.ticket for copy in known.same_mail.values())


def _redirect(known: Known, targets: dict[int, TicketRef | None]) -> None:
    _redirect_map(known.by_tn, targets)
    _redirect_map(known.by_message_id, targets)
    _redirect_map(known.by_external, targets)
    for key, copy in list(known.same_mail.items()):
        if copy.ticket.id in targets:
            target = targets[copy.ticket.id]
            if target is None:
                del known.same_mail[key]
            else:
                known.same_mail[key] = replace(copy, ticket=target)


def _redirect_map(mapping: dict[K, TicketRef], targets: dict[int, TicketRef | None]) -> None:
    """Point entries at merge targets; drop those whose chain ends nowhere."""
    for key, ref in list(mapping.items()):
        if ref.id in targets:
            target = targets[ref.id]
            if target is None:
                del mapping[key]
            else:
                mapping[key] = target


async def _load_participants(conn: AsyncConnection, ticket_ids: set[int], known: Known) -> None:
    """The ticket's customer and everybody on its customer-visible correspondence."""
    if not ticket_ids:
        return
    found: dict[int, set[str]] = {i: set() for i in ticket_ids}
    customers = await conn.execute(
        select(ticket.c.id, ticket.c.customer_user_id, customer_user.c.email)
        .outerjoin(customer_user, customer_user.c.login == ticket.c.customer_user_id)
        .where(ticket.c.id.in_(ticket_ids))
    )
    for ticket_id, login, email in customers:
        found[ticket_id].update(a.lower() for a in (login, email) if a and "@" in a)
    correspondence = await conn.execute(
        select(
            article.c.ticket_id, article_data_mime.c.a_from, article_data_mime.c.a_reply_to,
            article_data_mime.c.a_to, article_data_mime.c.a_cc,
        )
        .join(article_data_mime, article_data_mime.c.article_id == article.c.id)
        .where(article.c.ticket_id.in_(ticket_ids), article.c.is_visible_for_customer == 1)
    )  # fmt: skip
    for ticket_id, *fields in correspondence:
        found[ticket_id].update(
            address.lower() for _, address in getaddresses([f for f in fields if f]) if address
        )
    known.participants.update({i: frozenset(a) for i, a in found.items()})
