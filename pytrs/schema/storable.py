"""Making values storable: what every writer passes its text through before an insert.

Mail is hostile input, and header values, envelope addresses and file names end up in text
columns. PostgreSQL refuses a NUL character in text and a value longer than a ``varchar(n)``;
neither engine's driver encodes a lone surrogate (the form Python gives bytes that were not
valid UTF-8). Any of these would fail the whole transaction that carries the value — and with it
every other message in a group commit or a postmaster batch. So values are cleaned here, by the
column they go to (its length read from the table metadata), and the raw message bytes, which
are kept untouched in binary columns, remain the record of what was really received.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, String, Table, UniqueConstraint

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Cut values of key columns end in a digest of the whole value, so two long values that share
# their beginning stay two keys: "~" and 16 hex digits.
_DIGEST_LENGTH = 17


def clean(value: str) -> str:
    """`value` without NUL characters and with each lone surrogate replaced by U+FFFD."""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def cut(value: str, limit: int | None) -> str:
    """`value` cut to `limit` characters (None: no limit)."""
    return value if limit is None or len(value) <= limit else value[:limit]


def cut_unique(value: str, limit: int | None) -> str:
    """`value` cut to `limit` characters so that distinct values stay distinct.

    Meant for columns in a unique key: a value that is too long keeps its beginning and ends in
    a digest of the whole, so it is stable (the same input always gives the same key) and two
    long values sharing a prefix do not collide.
    """
    if limit is None or len(value) <= limit or limit <= _DIGEST_LENGTH:
        return cut(value, limit)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[: limit - _DIGEST_LENGTH]}~{digest}"


def column_limit(column: Column[Any]) -> int | None:
    """The length of a ``String(n)`` column, None for unbounded text or other types."""
    return column.type.length if isinstance(column.type, String) else None


def value(column: Column[Any], text: str) -> str:
    """`text` as `column` can store it: cleaned, and cut to the column's length.

    Columns of a primary key or a unique constraint are cut with `cut_unique`.
    """
    return _storable(text, *_shape(column))


def _storable(text: str, limit: int | None, key: bool) -> str:
    text = clean(text)
    return cut_unique(text, limit) if key else cut(text, limit)


def problem(column: Column[Any], text: str) -> str | None:
    """Why `text` cannot be stored in `column` as it is, or None when it can."""
    limit = column_limit(column)
    if limit is not None and len(text) > limit:
        return f"longer than {limit} characters"
    if _UNSTORABLE.search(text):
        return "contains a NUL character or bytes that are not UTF-8"
    return None


def row(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `values` (column name → value) with every string made storable in `table`.

    Keys that are not columns of `table` (bind parameter names) are copied unchanged.
    """
    shapes = _shapes(table)
    found = dict(values)
    for key, v in values.items():
        if isinstance(v, str) and (shape := shapes.get(key)) is not None:
            found[key] = _storable(v, *shape)
    return found


def rows(table: Table, values: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`row` for each of `values`."""
    return [row(table, v) for v in values]


@functools.cache
def _shapes(table: Table) -> dict[str, tuple[int | None, bool]]:
    """`_shape` of every column of `table` by key: a batch passes thousands of values through
    `row`, and each column lookup in the metadata costs more than the cleaning itself."""
    return {column.key: _shape(column) for column in table.c}


@functools.cache
def _shape(column: Column[Any]) -> tuple[int | None, bool]:
    """(length, part of a key) of `column`, read once from the metadata."""
    table = column.table
    key = (
        column.primary_key
        or bool(column.unique)
        or any(
            isinstance(constraint, UniqueConstraint) and column.name in constraint.columns
            for constraint in getattr(table, "constraints", ())
        )
    )
    return column_limit(column), key
