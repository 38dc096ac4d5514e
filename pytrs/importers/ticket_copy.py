"""Copying tickets with their articles, history and dynamic field values; then links and the
ticket-number counter.

Place in the flow: the second half of `importers.znuny`. Tickets are read in id order, a
batch at a time, and each batch is written by `tickets.imports` in one transaction of its
own. Progress is derived from what is already copied, not kept in a table: a ticket is there
exactly when its number is (a batch commits whole), so a second run, or one after an
interrupted run, finds the copied tickets by number and passes over them. A table of progress
would have to agree with the tickets it describes; the tickets themselves cannot disagree.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.importers import mapping, znuny_source
from pytrs.importers.mapping import Ids, Row
from pytrs.importers.report import Progress, Summary
from pytrs.importers.setup_rows import follow_ids
from pytrs.importers.znuny_source import BlobTables, UnreadableBlob
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema import import_repo, tables, ticket_repo
from pytrs.tickets import imports
from pytrs.tickets.imports import ImportedArticle, ImportedTicket

Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@dataclass(frozen=True, slots=True)
class TicketCopy:
    """What the ticket pass needs besides the connections."""

    blobs: BlobTables
    field_kinds: dict[int, str]  # Znuny dynamic field id → object type
    batch: int
    max_attachment_bytes: int
    misc_type_id: int
    email_channels: frozenset[int]  # Znuny's ids of the channel whose articles are mails


async def copy_tickets(
    src: AsyncConnection,
    transaction: Transaction,
    how: TicketCopy,
    ids: Ids,
    summary: Summary,
    progress: Progress,
) -> list[str]:
    """Every Znuny ticket not here yet; returns all Znuny ticket numbers (for the counter).

    Tickets whose id (or an article's) pytrs's own tickets hold are written after all the
    others, with new ids (see `tickets.imports.write_tickets`)."""
    numbers: list[str] = []
    clashing: list[int] = []
    async for page in znuny_source.ticket_pages(src, how.batch):
        numbers += [row["tn"] for row in page]
        written = await _copy_page(src, transaction, page, how, ids, summary, renumber=False)
        clashing += [row["id"] for row in page if row["id"] in written.left_out]
        progress.step(len(page) - len(written.left_out))
    for start in range(0, len(clashing), how.batch):
        chunk = clashing[start : start + how.batch]
        page = await znuny_source.rows_where_in(src, znuny_source.ticket, "id", chunk)
        await _copy_page(src, transaction, page, how, ids, summary, renumber=True)
        progress.step(len(page))
    progress.finish()
    return numbers


@dataclass(frozen=True, slots=True)
class _Written:
    left_out: frozenset[int]  # Znuny ticket ids to be written later, renumbered


async def _copy_page(
    src: AsyncConnection,
    transaction: Transaction,
    page: list[Row],
    how: TicketCopy,
    ids: Ids,
    summary: Summary,
    *,
    renumber: bool,
) -> _Written:
    async with transaction() as conn:
        here = await imports.numbers_present(conn, [row["tn"] for row in page])
        for row in page:
            if row["tn"] not in here:
                continue
            if _same_moment(here[row["tn"]].created, row["create_time"]):
                ids.put("ticket", row["id"], here[row["tn"]].id)
                summary.add_present("tickets")
            else:
                # pytrs numbered a ticket of its own alike (same generator and system id
                # on the same day): Znuny's cannot have that number here.
                summary.skip(
                    "tickets",
                    row["tn"],
                    "another ticket here has this number "
                    f"(created {here[row['tn']].created:%Y-%m-%d %H:%M}): not copied",
                )
        fresh = [row for row in page if row["tn"] not in here]
        notes: dict[int, Summary] = {}  # what each ticket's copy leaves out, told once written
        bundles = await _read_bundles(src, fresh, how, ids, summary, notes)
        written = await imports.write_tickets(
            conn, bundles, misc_type_id=how.misc_type_id, renumber=renumber
        )
        for source_id, target_id in written.items():
            ids.put("ticket", source_id, target_id)
        await imports.settle_clocks(conn, sorted(written.values()), int(time.time()))
        _count([b for b in bundles if b.row["id"] in written], summary)
        for source_id in written:
            if source_id in notes:
                summary.merge_skips(notes[source_id])
        await follow_ids(conn, ids, [tables.ticket, tables.article])
    return _Written(frozenset(b.row["id"] for b in bundles if b.row["id"] not in written))


def _same_moment(here: datetime, there: datetime) -> bool:
    """The same creation time to the second (engines keep fractions differently)."""
    return here.replace(microsecond=0) == there.replace(microsecond=0)


def _count(bundles: list[ImportedTicket], summary: Summary) -> None:
    summary.add_copied("tickets", len(bundles))
    articles = [a for t in bundles for a in t.articles]
    summary.add_copied("articles", len(articles))
    summary.add_copied("attachments", sum(len(a.attachments) for a in articles))
    summary.add_copied("history entries", sum(len(t.history) for t in bundles))
    values = sum(len(t.values) for t in bundles) + sum(len(a.values) for a in articles)
    summary.add_copied("dynamic field values", values)


async def _read_bundles(
    src: AsyncConnection,
    page: list[Row],
    how: TicketCopy,
    ids: Ids,
    summary: Summary,
    notes: dict[int, Summary],
) -> list[ImportedTicket]:
    """The page's tickets with everything they own, read in a few queries per table."""
    ticket_ids = [row["id"] for row in page]
    articles = await znuny_source.rows_where_in(src, znuny_source.article, "ticket_id", ticket_ids)
    article_ids = [a["id"] for a in articles]
    mime = _by(
        await znuny_source.rows_where_in(
            src, znuny_source.article_data_mime, "article_id", article_ids
        ),
        "article_id",
    )
    plain = _by(
        await znuny_source.rows_where_in(src, how.blobs.plain, "article_id", article_ids),
        "article_id",
    )
    files = _group(
        await znuny_source.rows_where_in(src, how.blobs.attachment, "article_id", article_ids),
        "article_id",
    )
    entries = _group(
        await znuny_source.rows_where_in(src, znuny_source.ticket_history, "ticket_id", ticket_ids),
        "ticket_id",
    )
    values = _group(
        await znuny_source.rows_where_in(
            src, znuny_source.dynamic_field_value, "object_id", ticket_ids + article_ids
        ),
        "object_id",
    )
    by_ticket = _group(articles, "ticket_id")
    bundles = []
    for row in page:
        try:
            bundle = ImportedTicket(mapping.ticket_row(row, ids))
            kept: set[int] = set()
            for source in by_ticket.get(row["id"], []):
                note = notes.setdefault(row["id"], Summary())
                part = _article(source, mime, plain, files, how, ids, note, row["tn"])
                bundle.articles.append(part)
                kept.add(source["id"])
                part.values = _values(values.get(source["id"], []), "Article", how, ids)
            bundle.history = [
                _history(entry, row["id"], kept, ids) for entry in entries.get(row["id"], [])
            ]
            bundle.values = _values(values.get(row["id"], []), "Ticket", how, ids)
        except KeyError as exc:
            summary.skip("tickets", row["tn"], f"refers to {exc.args[0]}, which is not here")
            continue
        bundles.append(bundle)
    return bundles


def _article(
    source: Row,
    mime: dict[int, Row],
    plain: dict[int, Row],
    files: dict[int, list[Row]],
    how: TicketCopy,
    ids: Ids,
    summary: Summary,
    tn: str,
) -> ImportedArticle:
    """One article; what of it cannot be copied (its raw mail, an attachment) is reported."""
    what = f"{tn} article {source['id']}"
    raw = plain.get(source["id"])
    body: bytes | None = None
    try:
        body = how.blobs.decode(raw["body"]) if raw is not None else None
    except UnreadableBlob as exc:
        summary.skip("raw mails", what, f"not base64 ({exc}); the article is copied without it")
    if body is None and raw is None and source["communication_channel_id"] in how.email_channels:
        # Notes and phone calls have no raw mail; a mail without one was kept outside the
        # database (Znuny's ArticleStorageFS keeps it under var/article/): its parsed fields
        # and body are copied, the raw mail cannot be.
        summary.skip(
            "raw mails",
            what,
            "not in the database (article_data_mime_plain): the article is copied without it",
        )
    part = ImportedArticle(mapping.article_row(source, ids))
    if raw is not None and body is not None:
        part.plain = mapping.plain_row(raw, body, ids)
    if source["id"] in mime:
        part.mime = mapping.mime_row(mime[source["id"]], ids)
    for file in files.get(source["id"], []):
        name = f"{what} attachment {file['filename']!r}"
        try:
            content = how.blobs.decode(file["content"]) or b""
        except UnreadableBlob as exc:
            summary.skip("attachments", name, f"not base64 ({exc})")
            continue
        if len(content) > how.max_attachment_bytes:
            summary.skip(
                "attachments",
                name,
                f"{len(content)} bytes, over the limit of "
                f"{how.max_attachment_bytes} ([smtp] max_message_size)",
            )
            continue
        part.attachments.append(mapping.attachment_row(file, content, ids))
    return part


def _history(entry: Row, ticket_id: int, kept: set[int], ids: Ids) -> Row:
    row = mapping.history_row(entry, ticket_id, ids)
    if row["article_id"] is not None and row["article_id"] not in kept:
        row["article_id"] = None  # its article was skipped (reported there)
    return row


def _values(rows: list[Row], kind: str, how: TicketCopy, ids: Ids) -> list[Row]:
    return [mapping.value_row(r, ids) for r in rows if how.field_kinds.get(r["field_id"]) == kind]


def _by(rows: list[Row], key: str) -> dict[int, Row]:
    return {row[key]: row for row in rows}


def _group(rows: list[Row], key: str) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


async def copy_links(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> None:
    """Links between tickets (`link_relation`), once both tickets are here."""
    ticket_object = ids.get(
        "link_object",
        _object_id(await znuny_source.rows(src, znuny_source.LOOKUPS["link_object"]), "Ticket"),
    )
    columns: tuple[str, ...] = ("source_object_id", "source_key", "target_object_id", "target_key")
    columns += ("type_id", "state_id")
    have = await imports.links_present(conn, columns)
    new: list[Row] = []
    for row in await znuny_source.rows(src, znuny_source.link_relation, "source_key"):
        what = f"{row['source_key']} → {row['target_key']}"
        first = ids.get("ticket", int(row["source_key"])) if row["source_key"].isdigit() else None
        second = ids.get("ticket", int(row["target_key"])) if row["target_key"].isdigit() else None
        kind, state = ids.get("link_type", row["type_id"]), ids.get("link_state", row["state_id"])
        if (
            ticket_object is None
            or ids.get("link_object", row["source_object_id"]) != ticket_object
            or ids.get("link_object", row["target_object_id"]) != ticket_object
        ):
            summary.skip("links", what, "links only tickets; this one links other objects")
            continue
        if first is None or second is None or kind is None or state is None:
            summary.skip("links", what, "a linked ticket, or the link's type or state, is not here")
            continue
        key = (ticket_object, str(first), ticket_object, str(second), kind, state)
        if key in have:
            summary.add_present("links")
            continue
        have.add(key)
        new.append(
            dict(zip(columns, key, strict=True))
            | {"create_time": row["create_time"], "create_by": ids.user(row["create_by"])}
        )
        summary.add_copied("links")
    await imports.write_links(conn, new)


def _object_id(rows: list[Row], name: str) -> int | None:
    return next((r["id"] for r in rows if r["name"] == name), None)


async def copy_counter(
    src: AsyncConnection,
    conn: AsyncConnection,
    numbers: list[str],
    generator: TicketNumberGenerator,
    today: date,
    summary: Summary,
) -> None:
    """pytrs's counter for today's numbers past every copied one, so that the next ticket
    pytrs opens never gets a number Znuny gave out. A generator that never restarts also
    follows Znuny's own counter (numbers it handed out for tickets since deleted)."""
    scope = generator.counter_scope
    if scope is None:  # Random: no counter; a taken number is drawn again
        return
    highest = mapping.counter_after(numbers, generator, today)
    if not generator.daily():
        counters = await znuny_source.rows(src, znuny_source.ticket_number_counter)
        highest = max([highest, *(int(r["counter"] or 0) for r in counters)])
    key = ticket_repo.counter_scope(scope, generator.daily(), today)
    before = await import_repo.raise_counter(conn, key, 0)
    if highest > before:
        await import_repo.raise_counter(conn, key, highest)
        summary.add_copied("ticket-number counter")
    else:
        summary.add_present("ticket-number counter")
