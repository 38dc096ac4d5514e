"""Reading a Znuny (>= 7.0) database: plain rows out, blobs decoded.

Place in the flow: the first step of `pytrs import znuny`; nothing here writes. The tables are
described by our own SQLAlchemy Core definitions, with only the columns the importer copies
(column names follow Znuny 7.0's `scripts/database/schema.xml`), so one reader serves every
engine SQLAlchemy has a driver for.

Znuny's blob columns (`article_data_mime_plain.body`, `article_data_mime_attachment.content`)
are LONGBLOB in its schema: raw bytes where the engine has a binary type for them (MySQL,
MariaDB), base64 in a TEXT column where it keeps them as text (PostgreSQL; Znuny's
"DirectBlob" is off there). Which one a database holds is read from the column's reflected
type, never guessed from the engine's name.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import znuny_tables

Row = dict[str, Any]

_meta = MetaData()


def _table(name: str, *columns: Column[Any], audit: bool = True) -> Table:
    extra = (
        [Column(c, DateTime if c.endswith("time") else Integer) for c in _AUDIT] if audit else []
    )
    return Table(name, _meta, *columns, *extra)


_AUDIT = ("create_time", "create_by", "change_time", "change_by")


def _id() -> Column[Any]:
    return Column("id", BigInteger, primary_key=True)


def _named(name: str, *more: Column[Any]) -> Table:
    """A lookup table: id and name (states, priorities, history types …)."""
    return Table(name, _meta, _id(), Column("name", String), *more)


# Lookup tables pytrs seeds with Znuny's ids; mapped by name.
# In this order: a state's type is mapped before the state.
LOOKUPS: dict[str, Table] = {
    "ticket_state_type": _named("ticket_state_type"),
    "ticket_state": _named("ticket_state", Column("type_id", Integer)),
    "ticket_priority": _named("ticket_priority"),
    "ticket_lock_type": _named("ticket_lock_type"),
    "ticket_type": _named("ticket_type"),
    "article_sender_type": _named("article_sender_type"),
    "communication_channel": _named("communication_channel"),
    "ticket_history_type": _named("ticket_history_type"),
    "follow_up_possible": _named("follow_up_possible"),
    "permission_groups": _named("permission_groups"),
    "auto_response_type": _named("auto_response_type"),
    "link_object": _named("link_object"),
    "link_type": _named("link_type"),
    "link_state": _named("link_state"),
}

queue = _table(
    "queue", _id(), Column("name", String), Column("group_id", Integer),
    Column("unlock_timeout", Integer), Column("first_response_time", Integer),
    Column("first_response_notify", SmallInteger), Column("update_time", Integer),
    Column("update_notify", SmallInteger), Column("solution_time", Integer),
    Column("solution_notify", SmallInteger), Column("system_address_id", Integer),
    Column("calendar_name", String), Column("default_sign_key", String),
    Column("salutation_id", Integer), Column("signature_id", Integer),
    Column("follow_up_id", Integer), Column("follow_up_lock", SmallInteger),
    Column("comments", String), Column("valid_id", SmallInteger),
)  # fmt: skip
system_address = _table(
    "system_address", _id(), Column("value0", String), Column("value1", String),
    Column("value2", String), Column("value3", String), Column("queue_id", Integer),
    Column("comments", String), Column("valid_id", SmallInteger),
)  # fmt: skip
users = _table(
    "users", _id(), Column("login", String), Column("pw", String), Column("title", String),
    Column("first_name", String), Column("last_name", String), Column("valid_id", SmallInteger),
)  # fmt: skip
# `preferences_value` is a LONGBLOB too, but Znuny stores preferences unencoded: text on
# PostgreSQL, bytes on MySQL. The same table pytrs reads beside Znuny.
user_preferences = znuny_tables.user_preferences
group_user = _table(
    "group_user",
    Column("user_id", Integer),
    Column("group_id", Integer),
    Column("permission_key", String),
)
customer_user = _table(
    "customer_user", _id(), Column("login", String), Column("email", String),
    Column("customer_id", String), Column("title", String), Column("first_name", String),
    Column("last_name", String), Column("phone", String), Column("fax", String),
    Column("mobile", String), Column("street", String), Column("zip", String),
    Column("city", String), Column("country", String), Column("comments", String),
    Column("valid_id", SmallInteger),
)  # fmt: skip
ticket = _table(
    "ticket", _id(), Column("tn", String), Column("title", String), Column("queue_id", Integer),
    Column("ticket_lock_id", Integer), Column("type_id", Integer),
    Column("service_id", Integer), Column("sla_id", Integer), Column("user_id", Integer),
    Column("responsible_user_id", Integer), Column("ticket_priority_id", Integer),
    Column("ticket_state_id", Integer), Column("customer_id", String),
    Column("customer_user_id", String), Column("timeout", Integer),
    Column("until_time", BigInteger), Column("escalation_time", BigInteger),
    Column("escalation_update_time", BigInteger), Column("escalation_response_time", BigInteger),
    Column("escalation_solution_time", BigInteger), Column("archive_flag", SmallInteger),
)  # fmt: skip
article = _table(
    "article", _id(), Column("ticket_id", BigInteger),
    Column("article_sender_type_id", Integer), Column("communication_channel_id", Integer),
    Column("is_visible_for_customer", SmallInteger),
    Column("search_index_needs_rebuild", SmallInteger), Column("insert_fingerprint", String),
)  # fmt: skip
article_data_mime = _table(
    "article_data_mime", _id(), Column("article_id", BigInteger),
    *(Column(name, Text) for name in (
        "a_from", "a_reply_to", "a_to", "a_cc", "a_bcc", "a_subject", "a_message_id",
        "a_in_reply_to", "a_references", "a_body")),
    Column("a_message_id_md5", String), Column("a_content_type", String),
    Column("incoming_time", Integer), Column("content_path", String),
)  # fmt: skip
ticket_history = _table(
    "ticket_history", _id(), Column("name", String), Column("history_type_id", Integer),
    Column("ticket_id", BigInteger), Column("article_id", BigInteger),
    Column("type_id", Integer), Column("queue_id", Integer), Column("owner_id", Integer),
    Column("priority_id", Integer), Column("state_id", Integer),
)  # fmt: skip
postmaster_filter = Table(
    "postmaster_filter", _meta, Column("f_name", String), Column("f_stop", SmallInteger),
    Column("f_type", String), Column("f_key", String), Column("f_value", String),
    Column("f_not", SmallInteger),
)  # fmt: skip
auto_response = _table(
    "auto_response", _id(), Column("name", String), Column("text0", Text),
    Column("text1", Text), Column("type_id", Integer), Column("system_address_id", Integer),
    Column("content_type", String), Column("comments", String), Column("valid_id", SmallInteger),
)  # fmt: skip
queue_auto_response = _table(
    "queue_auto_response", _id(), Column("queue_id", Integer), Column("auto_response_id", Integer)
)
dynamic_field = _table(
    "dynamic_field", _id(), Column("internal_field", SmallInteger), Column("name", String),
    Column("label", String), Column("field_order", Integer), Column("field_type", String),
    Column("object_type", String), Column("config", Text), Column("valid_id", SmallInteger),
)  # fmt: skip
dynamic_field_value = Table(
    "dynamic_field_value", _meta, _id(), Column("field_id", Integer),
    Column("object_id", BigInteger), Column("value_text", Text),
    Column("value_date", DateTime), Column("value_int", BigInteger),
)  # fmt: skip
link_relation = Table(
    "link_relation", _meta, Column("source_object_id", Integer), Column("source_key", String),
    Column("target_object_id", Integer), Column("target_key", String),
    Column("type_id", Integer), Column("state_id", Integer), Column("create_time", DateTime),
    Column("create_by", Integer),
)  # fmt: skip
ticket_number_counter = Table(
    "ticket_number_counter", _meta, _id(), Column("counter", BigInteger),
    Column("counter_uid", String), Column("create_time", DateTime),
)  # fmt: skip

_BLOB_TABLES = ("article_data_mime_plain", "article_data_mime_attachment")


_LOOKS_LIKE_MAIL = re.compile(r"[!-9;-~]+:")


class UnreadableBlob(ValueError):
    """A base64 blob column holding something that is not base64."""


@dataclass(frozen=True, slots=True)
class BlobTables:
    """The two blob tables, typed as this database keeps their blobs."""

    plain: Table
    attachment: Table
    base64_text: bool

    def decode(self, value: str | bytes | None) -> bytes | None:
        """A blob's bytes: base64 decoded where the column is text, as stored otherwise."""
        if value is None:
            return None
        if isinstance(value, bytes):
            return value
        # Strict: base64 decoding that skips unknown characters would turn text into noise.
        packed = "".join(value.split())
        try:
            return base64.b64decode(packed.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            if _LOOKS_LIKE_MAIL.match(value):
                # Znuny's own seed article ("Welcome to Znuny!") is stored unencoded, even where
                # every other raw mail is base64: a header line is never base64.
                return value.encode("utf-8")
            raise UnreadableBlob(str(exc)) from exc


def blob_tables(base64_text: bool) -> BlobTables:
    kind: Any = Text if base64_text else LargeBinary
    meta = MetaData()
    audit = [Column(c, DateTime if c.endswith("time") else Integer) for c in _AUDIT]
    plain = Table(
        "article_data_mime_plain", meta, _id(), Column("article_id", BigInteger),
        Column("body", kind), *audit,
    )  # fmt: skip
    attachment = Table(
        "article_data_mime_attachment", meta, _id(), Column("article_id", BigInteger),
        Column("filename", String), Column("content_size", String),
        Column("content_type", String), Column("content_id", String),
        Column("content_alternative", String), Column("disposition", String),
        Column("content", kind),
        *(Column(c, DateTime if c.endswith("time") else Integer) for c in _AUDIT),
    )  # fmt: skip
    return BlobTables(plain, attachment, base64_text)


def _blobs_are_text(sync_conn: Connection) -> bool:
    columns = inspect(sync_conn).get_columns("article_data_mime_plain")
    body = next(c for c in columns if c["name"] == "body")
    return isinstance(body["type"], String)  # TEXT is a String; BYTEA/LONGBLOB are not


async def detect_blobs(conn: AsyncConnection) -> BlobTables:
    """The blob tables as `conn`'s database types them (reflected once)."""
    return blob_tables(await conn.run_sync(_blobs_are_text))


async def missing_tables(conn: AsyncConnection, needed: Sequence[str]) -> list[str]:
    """Which of `needed` the database lacks: a URL that names no Znuny is one clear line."""

    def names(sync_conn: Connection) -> set[str]:
        return set(inspect(sync_conn).get_table_names())

    present = await conn.run_sync(names)
    return [name for name in needed if name not in present]


# Znuny's tables the copy cannot do without; `user_preferences` and `salutation` also tell a
# Znuny database from pytrs's own, which has the others too.
REQUIRED = (
    "user_preferences", "salutation", "ticket", "article", "article_data_mime",
    "article_data_mime_plain", "article_data_mime_attachment", "ticket_history", "queue",
    "users", "system_address",
)  # fmt: skip


# Tables an installation may lack (or a test source leave out): their rows are simply none.
OPTIONAL: tuple[str, ...] = (
    "link_relation",
    "dynamic_field",
    "dynamic_field_value",
    "postmaster_filter",
)
OPTIONAL += ("auto_response", "queue_auto_response", "group_user")
OPTIONAL += ("customer_user", "ticket_number_counter")


async def rows(conn: AsyncConnection, table: Table, *order: str) -> list[Row]:
    """Every row of a (small) table, as plain dicts."""
    query = select(table).order_by(*(table.c[name] for name in order or ("id",)))
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def rows_where_in(
    conn: AsyncConnection, table: Table, column: str, keys: Sequence[Any], order: str = "id"
) -> list[Row]:
    """Rows of `table` whose `column` is one of `keys`, in `order`."""
    if not keys:
        return []
    found: list[Row] = []
    for start in range(0, len(keys), 500):  # bound the bind parameters of one statement
        chunk = list(keys[start : start + 500])
        query = select(table).where(table.c[column].in_(chunk)).order_by(table.c[order])
        found += [dict(r) for r in (await conn.execute(query)).mappings()]
    return found


async def ticket_pages(conn: AsyncConnection, batch: int) -> AsyncIterator[list[Row]]:
    """Tickets in id order, `batch` at a time (keyset paging: a page costs its own size)."""
    after = 0
    while True:
        query = select(ticket).where(ticket.c.id > after).order_by(ticket.c.id).limit(batch)
        page = [dict(r) for r in (await conn.execute(query)).mappings()]
        if not page:
            return
        yield page
        after = page[-1]["id"]


async def count(conn: AsyncConnection, table: Table) -> int:
    return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


def text_value(value: str | bytes | None) -> str | None:
    """A preference value (LONGBLOB holding text) as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
