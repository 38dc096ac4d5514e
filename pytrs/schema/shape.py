"""How the tables pytrs shares with Znuny are shaped in the database it runs on (storage floor).

Place in the flow: read once when a daemon or command opens the database (`migrate.require_head`
calls `load` beside an existing Znuny, `[database] mode = "znuny"`), then asked by the
repositories that write or read a shared table whose shape differs from pytrs's own models:

* columns pytrs has and Znuny lacks (``ADAPTED``): agents' addresses in ``user_preferences``
  (``UserEmail``) instead of ``users.email``, response languages in a table of pytrs's own
  instead of ``auto_response.language``, ``postmaster_filter`` and ``ticket_loop_protection``
  rows without an ``id``;
* binary columns that Znuny keeps as base64 TEXT on PostgreSQL (``article_data_mime_plain.body``
  and attachment ``content``: Znuny's DirectBlob is off there), bytes elsewhere;
* text columns shorter in Znuny than in pytrs (``a_subject`` 3800, ``f_value`` 200 …): values are
  cut to fit, the whole value staying in the raw mail.

In pytrs's own database (`mode = "pytrs"`) the shape is ``NATIVE``: nothing is adapted.
`compare` is also what `pytrs db check` prints beside Znuny: every difference between the
columns pytrs uses and what the database has, the ones it cannot work with first.
"""

from __future__ import annotations

import base64
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, Text, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database
from pytrs.schema.tables import Base

# pytrs's own tables: beside Znuny they live in `[database] own_schema` (`pytrs db attach`),
# never among Znuny's. `mail_account` is pytrs's mirror of its [[mail_accounts]]: in Znuny's
# table of that name, Znuny's own daemon would fetch them too.
OWN_TABLES = frozenset({
    "inbox_message", "mail_account", "mailbox_cursor", "mailbox_state", "pop3_seen",
    "mailbox_oauth2_token", "outbox_message", "address_suppression", "provisioned_row",
    "change_generation", "web_session_end", "api_token", "api_idempotency", "business_calendar",
    "ticket_escalation",
})  # fmt: skip

# Columns of shared tables that Znuny does not have, and what pytrs does instead.
ADAPTED: Mapping[tuple[str, str], str] = {
    ("users", "email"): "agents' addresses are read from user_preferences (UserEmail)",
    ("auto_response", "language"): "response languages are kept in pytrs's own table",
    ("postmaster_filter", "id"): "a filter's rows are told apart by f_name and their order",
    ("ticket_loop_protection", "id"): "sent mail is counted by sent_to and sent_date",
    ("communication_channel", "displayable"): "not read (pytrs's seeds only)",
    ("customer_preferences", "id"): "preferences are found by user and key",
    ("queue_standard_template", "id"): "links are found by queue and template",
}

# Shared tables pytrs only reads beside Znuny (Znuny's seeds): columns Znuny requires on insert
# do not concern it. `permission_groups` gets rows only through `pytrs users`/provisioning,
# which write Znuny's audit columns themselves.
READ_ONLY = frozenset({
    "valid", "ticket_state_type", "ticket_state", "ticket_priority", "ticket_lock_type",
    "ticket_type", "follow_up_possible", "article_sender_type", "communication_channel",
    "ticket_history_type", "link_type", "link_state", "permission_groups",
})  # fmt: skip

SEVERE, NOTE = "error", "note"


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the database differs from what pytrs uses; `severity` SEVERE stops pytrs."""

    table: str
    column: str
    severity: str
    text: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.text}"


@dataclass(frozen=True, slots=True)
class Shape:
    """The shared tables as found: what to adapt when reading and writing them."""

    znuny: bool = False
    lacking: frozenset[tuple[str, str]] = frozenset()
    base64: frozenset[tuple[str, str]] = frozenset()
    lengths: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # The shared tables whose columns differ, as this database has them (see `table`).
    tables: Mapping[str, Table] = field(default_factory=dict)

    def table(self, model: Table) -> Table:
        """`model` as this database has it: without the columns it lacks, and with TEXT where
        it keeps bytes as base64. Statements that insert or select whole rows of a shared
        table are built on this (PostgreSQL checks a bound value's type against the column)."""
        return self.tables.get(model.name, model)

    def lacks(self, table: str, column: str) -> bool:
        """Whether the database has no `table.column` that pytrs's models have."""
        return (table, column) in self.lacking

    def fit(self, table: str, column: str, value: str | None) -> str | None:
        """`value` cut to the column's length where Znuny's column is shorter than pytrs's."""
        limit = self.lengths.get((table, column))
        if value is None or limit is None or len(value) <= limit:
            return value
        return value[:limit]

    def fit_row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with its text values cut to fit and its binary ones encoded as stored."""
        if not self.znuny:
            return row
        fitted = dict(row)
        for name, value in row.items():
            if isinstance(value, str):
                fitted[name] = self.fit(table, name, value)
            elif isinstance(value, bytes | bytearray) and (table, name) in self.base64:
                # Lines of 76 characters, as Znuny's encode_base64 writes them.
                fitted[name] = base64.encodebytes(value).decode("ascii")
        return fitted

    def fit_rows(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`fit_row` for each of `rows` (the same list when nothing needs fitting)."""
        if not self.znuny:
            return rows
        return [self.fit_row(table, row) for row in rows]

    def head_chars(self, table: str, column: str, head_bytes: int) -> int:
        """How many stored characters hold the first `head_bytes` of a binary column."""
        if (table, column) in self.base64:
            chars = -(-head_bytes // 3) * 4
            return chars + chars // 76 + 1  # and the newline ending each line of 76
        return head_bytes

    def stored_bytes(self, table: str, column: str, value: Any) -> bytes | None:
        """A binary column's value as read back: base64 TEXT decoded where Znuny keeps it so."""
        if value is None:
            return None
        if isinstance(value, str):
            if (table, column) in self.base64:
                # Znuny's lines end in newlines; a head read with `head_chars` may end
                # inside a group of four, which is dropped.
                digits = "".join(value.split())
                return base64.b64decode(digits[: len(digits) - len(digits) % 4])
            return value.encode("utf-8", "surrogateescape")
        return bytes(value)


NATIVE = Shape()

_shapes: weakref.WeakKeyDictionary[Engine, Shape] = weakref.WeakKeyDictionary()


def shape_of(conn: AsyncConnection) -> Shape:
    """The shape of the database `conn` belongs to (NATIVE unless `load` found Znuny's)."""
    return _shapes.get(conn.sync_engine, NATIVE)


def shared_tables() -> list[str]:
    """Znuny's tables among pytrs's models (everything but pytrs's own and its search index)."""
    return [name for name in Base.metadata.tables if name not in OWN_TABLES]


async def load(db: Database) -> tuple[Shape, list[Difference]]:
    """Read the shared tables' columns; remember the shape for `db`'s connections.

    Returns the shape and every difference found (SEVERE ones first).
    """

    def read(conn: Connection) -> tuple[Shape, list[Difference]]:
        return compare(conn)

    async with db.engine.connect() as conn:
        shape, differences = await conn.run_sync(read)
    _shapes[db.engine.sync_engine] = shape
    return shape, differences


def compare(conn: Connection) -> tuple[Shape, list[Difference]]:
    """The shape of the shared tables `conn` sees, and how they differ from pytrs's models."""
    inspector = inspect(conn)
    # has_table, not get_table_names: beside Znuny the first schema of the search path is
    # pytrs's own, and the shared tables are found in the next one.
    found_tables = {name for name in shared_tables() if inspector.has_table(name)}
    differences: list[Difference] = []
    lacking: set[tuple[str, str]] = set()
    encoded: set[tuple[str, str]] = set()
    lengths: dict[tuple[str, str], int] = {}
    for name in shared_tables():
        model = Base.metadata.tables[name]
        if name not in found_tables:
            differences.append(Difference(name, "", SEVERE, "table missing"))
            continue
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        for column in model.columns:
            found = columns.get(column.name)
            if found is None:
                if (name, column.name) in ADAPTED:
                    lacking.add((name, column.name))
                    differences.append(
                        Difference(
                            name, column.name, NOTE, f"missing: {ADAPTED[name, column.name]}"
                        )
                    )
                else:
                    differences.append(Difference(name, column.name, SEVERE, "column missing"))
                continue
            differences.extend(_compare_column(name, column, found, encoded, lengths))
        if name not in READ_ONLY:
            differences.extend(_unfilled(name, model.columns, columns))
    differences.sort(key=lambda d: (d.severity != SEVERE, d.table, d.column))
    shape = Shape(
        znuny=True, lacking=frozenset(lacking), base64=frozenset(encoded), lengths=lengths,
        tables=_adapted_tables(lacking, encoded),
    )  # fmt: skip
    return shape, differences


def _adapted_tables(
    lacking: set[tuple[str, str]], encoded: set[tuple[str, str]]
) -> dict[str, Table]:
    """Copies of the models of shared tables that differ, in a MetaData of their own."""
    changed = {name for name, _ in lacking | encoded}
    metadata = MetaData()
    tables = {}
    for name in sorted(changed):
        model = Base.metadata.tables[name]
        columns = [
            Column(
                c.name,
                Text() if (name, c.name) in encoded else c.type,
                key=c.key,
                primary_key=c.primary_key,
                nullable=c.nullable,
                autoincrement=c.autoincrement,
            )
            for c in model.columns
            if (name, c.name) not in lacking
        ]
        tables[name] = Table(name, metadata, *columns)
    return tables


def _compare_column(
    table: str,
    column: Column[Any],
    found: Mapping[str, Any],
    encoded: set[tuple[str, str]],
    lengths: dict[tuple[str, str], int],
) -> list[Difference]:
    wanted, have = _kind(column.type), _kind(found["type"])
    if wanted == "bytes" and have == "text":
        encoded.add((table, column.name))
        return [Difference(table, column.name, NOTE, "TEXT holding base64 (Znuny's form here)")]
    if wanted != have:
        return [
            Difference(table, column.name, SEVERE, f"is {found['type']}, pytrs needs {column.type}")
        ]
    if wanted != "text":
        return []
    limit = getattr(found["type"], "length", None)
    own = getattr(column.type, "length", None)
    if limit is not None and (own is None or own > limit):
        lengths[table, column.name] = limit
        return [Difference(table, column.name, NOTE, f"longer values are cut to {limit}")]
    return []


def _unfilled(
    table: str, model_columns: Any, columns: Mapping[str, Mapping[str, Any]]
) -> list[Difference]:
    """Znuny's NOT NULL columns without a default that pytrs never writes: its inserts into
    `table` would fail."""
    known = {c.name for c in model_columns}
    return [
        Difference(table, name, SEVERE, "NOT NULL without a default, and pytrs does not write it")
        for name, found in columns.items()
        if name not in known
        and not found.get("nullable", True)
        and found.get("default") is None
        and not found.get("autoincrement")
    ]


def _kind(type_: Any) -> str:
    """The family of a column type that matters for what pytrs stores in it."""
    try:
        python = type_.python_type
    except NotImplementedError:
        return type(type_).__name__.lower()
    if python is bool:
        return "int"
    if python in (int, float):
        return "int"
    if python is str:
        return "text"
    if python is bytes:
        return "bytes"
    if python is datetime:
        return "datetime"
    return python.__name__
