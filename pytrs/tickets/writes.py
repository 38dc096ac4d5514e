"""Writing ticket rows: collected per table, flushed with one executemany each.

The postmaster fills one `Writes` per batch and the service one per call, from the same row
builders (`tickets.rows`) and the same change plans (`tickets.changes`), so a change writes the
same rows by either path. Rows whose ids later rows need (tickets, articles) are inserted at
once with `insert_tickets` / `insert_articles`, which return their ids in order; everything
that only refers to them waits for `flush`.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, Update, bindparam, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import fulltext, storable
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    article_data_mime_send_error,
    dynamic_field_value,
    ticket,
    ticket_history,
)
from pytrs.tickets import escalation_index, rows, search_index
from pytrs.tickets.model import ArticleInput, Changes, HistoryEntry
from pytrs.vocabulary import znuny

# Dependent tables in the order they are written (all refer to tickets and articles only).
_TABLES = (
    article_data_mime, article_data_mime_plain, article_data_mime_attachment, ticket_history,
    dynamic_field_value, article_data_mime_send_error,
)  # fmt: skip


async def insert_tickets(conn: AsyncConnection, new: list[dict[str, Any]]) -> list[int]:
    """Insert `ticket` rows (built by `rows.ticket_row`); their ids, in order."""
    return await _insert_returning_ids(conn, ticket, _storable(conn, ticket, new), "tn")


async def insert_articles(conn: AsyncConnection, new: list[dict[str, Any]]) -> list[int]:
    """Insert `article` rows (built by `rows.article_row`); their ids, in order."""
    return await _insert_returning_ids(conn, article, new, "insert_fingerprint")


def _storable(
    conn: AsyncConnection, table: Table, new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`new` cleaned and cut to `table`'s columns, and beside Znuny fitted to Znuny's (shorter
    text columns, bytes as base64 TEXT on PostgreSQL: `schema/shape.py`)."""
    return shape_of(conn).fit_rows(table.name, storable.rows(table, new))


async def _insert_returning_ids(
    conn: AsyncConnection, table: Table, new: list[dict[str, Any]], key: str
) -> list[int]:
    """Insert `new` into `table` and return the new ids in the order of `new`.

    Each row's id is found by the value of its `key` column, returned beside the id, when
    those values are distinct within `new` (a ticket number always is; the postmaster's
    article fingerprints name their inbox row). Asking the driver to keep the order instead
    (`sort_by_parameter_order`) makes SQLAlchemy insert one row per statement on SQLite,
    which cannot tie new ids to the order of a multi-row insert. Rows without such a key
    fall back to that ordered insert.
    """
    if not new:
        return []
    keys = [row.get(key) for row in new]
    if len(new) > 1 and None not in keys and len(set(keys)) == len(keys):
        result = await conn.execute(_insert_keyed(table, key), new)
        id_by_key = {found_key: int(found_id) for found_id, found_key in result}
        return [id_by_key[k] for k in keys]
    result = await conn.execute(_insert_ordered(table), new)
    return [int(i) for i in result.scalars()]


# The statements of every batch are built once per table (or set of columns), so that
# SQLAlchemy derives each one's cache key once instead of on every execution.


@functools.cache
def _insert_keyed(table: Table, key: str) -> Insert:
    return insert(table).returning(table.c.id, table.c[key])


@functools.cache
def _insert_ordered(table: Table) -> Insert:
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)


@functools.lru_cache(maxsize=64)  # the sets of columns a change writes are few
def _update_ticket(columns: tuple[str, ...]) -> Update:
    return (
        update(ticket)
        .where(ticket.c.id == bindparam("t_id"))
        .values({c: bindparam(f"t_{c}") for c in columns})
    )


class Writes:
    """Rows collected for one transaction and written per table by `flush`."""

    def __init__(self, now: datetime, by: int = znuny.USER_ROOT) -> None:
        self.now = now
        self.by = by
        self.by_table: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        self.ticket_values: dict[int, dict[str, Any]] = defaultdict(dict)
        self.replaced_fields: list[dict[str, Any]] = []
        self.search: list[fulltext.Document] = []
        # Tickets inserted in this transaction: their clocks are computed at flush even when
        # nothing else is written to their rows.
        self.created: set[int] = set()

    def new_tickets(self, ticket_ids: Iterable[int]) -> None:
        """Tickets just inserted (`insert_tickets`), whose escalation clocks start at flush."""
        self.created.update(ticket_ids)

    def article(self, content: ArticleInput, article_id: int) -> None:
        """The rows hanging off an inserted article: MIME fields, raw mail, attachments, and
        its search index entry."""
        now, by = self.now, self.by
        self.search.append(search_index.document(content, article_id))
        self.by_table[article_data_mime].append(rows.mime_row(content, article_id, now, by))
        if content.raw:
            self.by_table[article_data_mime_plain].append(
                rows.plain_row(article_id, content.raw, now, by)
            )
        self.by_table[article_data_mime_attachment].extend(
            rows.attachment_rows(content, article_id, now, by)
        )

    def history(self, entries: Iterable[HistoryEntry]) -> None:
        self.by_table[ticket_history].extend(
            rows.history_row(e, self.now, self.by) for e in entries
        )

    def changes(self, changes: Changes) -> None:
        """An update's columns and history; the ticket's change time is bumped."""
        self.history(changes.history)
        self.touch(changes.ticket.id, changes.values)

    def touch(self, ticket_id: int, values: dict[str, Any] | None = None) -> None:
        """Set `values` on the ticket at flush, with `change_time`/`change_by`."""
        found = self.ticket_values[ticket_id]
        found.update(values or {})
        found["change_time"] = self.now
        found["change_by"] = self.by

    def dynamic_field(self, ticket_id: int, field_id: int, value: str, *, replace: bool) -> None:
        if replace:
            self.replaced_fields.append({"d_field": field_id, "d_object": ticket_id})
        self.by_table[dynamic_field_value].append(
            {"field_id": field_id, "object_id": ticket_id, "value_text": value}
        )

    def send_error(self, article_id: int, message_id: str, log_message: str) -> None:
        self.by_table[article_data_mime_send_error].append(
            {"article_id": article_id, "message_id": message_id[:1000],
             "log_message": log_message[:4000], "create_time": self.now}
        )  # fmt: skip

    async def flush(self, conn: AsyncConnection) -> None:
        """Write everything collected; the collections are emptied. The escalation clocks
        of every ticket written to are recomputed first (`tickets.escalation_index`), with
        the columns this flush sets, so that their columns go out with the ticket's update
        and their `…Stop` history with the rest."""
        await self._recompute_escalations(conn)
        if self.replaced_fields:
            await conn.execute(
                delete(dynamic_field_value).where(
                    dynamic_field_value.c.field_id == bindparam("d_field"),
                    dynamic_field_value.c.object_id == bindparam("d_object"),
                ),
                self.replaced_fields,
            )
        for table in _TABLES:
            found = self.by_table.get(table)
            if found:
                # Header values, file names and control headers are hostile input: cleaned
                # and cut to their columns, so one mail cannot fail the batch.
                shape = shape_of(conn)
                await conn.execute(_insert(shape.table(table)), _storable(conn, table, found))
        await fulltext.write(conn, self.search)
        await self._update_tickets(conn)
        self.search = []
        self.by_table.clear()
        self.ticket_values.clear()
        self.replaced_fields = []
        self.created = set()

    async def _recompute_escalations(self, conn: AsyncConnection) -> None:
        touched = self.created.union(self.ticket_values)
        found = await escalation_index.recompute(conn, touched, self.ticket_values)
        for ticket_id, columns in found.columns.items():
            self.ticket_values[ticket_id].update(columns)
        self.history(found.history)

    async def _update_tickets(self, conn: AsyncConnection) -> None:
        # One executemany per set of columns, tickets in id order so that concurrent writers
        # lock them in the same order.
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for ticket_id in sorted(self.ticket_values):
            values = shape_of(conn).fit_row(
                "ticket", storable.row(ticket, self.ticket_values[ticket_id])
            )
            groups[tuple(sorted(values))].append(
                {"t_id": ticket_id, **{f"t_{k}": v for k, v in values.items()}}
            )
        for columns, params in groups.items():
            await conn.execute(_update_ticket(columns), params)
