"""Where an agent's e-mail address is kept: `users.email`, or Znuny's `UserEmail` preference.

Place in the flow: every reader of agents' addresses (the postmaster's agent check in
``ticket_repo``, the accounts of ``users_repo`` and ``agent_access``, escalation notices in
``escalation_due``) and every writer (`pytrs users`, the admin pages, `[[agents]]` provisioning
in ``provision``) asks here instead of naming the column. In pytrs's own database the address
is a column of ``users``. Beside Znuny (`[database] mode = "znuny"`) ``users`` has no such
column: Znuny keeps it in ``user_preferences`` as the row whose ``preferences_key`` is
``UserEmail`` — the choice is made from the connection's shape (``shape_of``), never a global.

Znuny 7.0's ``user_preferences`` (``znuny_tables``) has no unique key; Znuny replaces a
preference by deleting its rows and inserting one, and so does `store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema.shape import shape_of
from pytrs.schema.tables import users
from pytrs.schema.znuny_tables import user_preferences

EMAIL_KEY = "UserEmail"

_prefs = user_preferences.c


def in_preferences(conn: AsyncConnection) -> bool:
    """Whether this database keeps agents' addresses as preferences (beside Znuny)."""
    return shape_of(conn).lacks(users.name, "email")


def address(conn: AsyncConnection) -> ColumnElement[Any]:
    """An agent's address as an expression over ``users`` (use in queries selecting from it)."""
    return address_from_preferences() if in_preferences(conn) else users.c.email


def address_from_preferences() -> ColumnElement[Any]:
    """Beside Znuny: the ``UserEmail`` preference of the ``users`` row of the enclosing query,
    a correlated subquery taking one row, as Znuny reads one (its table has no unique key: a
    duplicate must not make the query fail)."""
    return (
        select(_prefs.preferences_value)
        .where(_prefs.user_id == users.c.id, _prefs.preferences_key == EMAIL_KEY)
        .limit(1)
        .scalar_subquery()
    )


def text_of(value: Any) -> str:
    """A read address as text: Znuny's LONGBLOB preference is bytes on MySQL/MariaDB."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def row_values(conn: AsyncConnection, email: str) -> dict[str, str]:
    """What a ``users`` INSERT or UPDATE sets of the address: the column, or nothing beside
    Znuny (`store` writes the preference)."""
    return {} if in_preferences(conn) else {"email": email}


def users_table(conn: AsyncConnection) -> Table:
    """``users`` as this database has it: INSERTs are built on this (no ``email`` beside Znuny,
    where the model's column would otherwise be sent)."""
    return shape_of(conn).table(users)


async def store(conn: AsyncConnection, addresses: Mapping[int, str]) -> None:
    """Keep `addresses` (user id → address) as the agents' ``UserEmail`` preferences beside
    Znuny, replacing the rows of those that differ as Znuny does (delete, insert); nothing in
    pytrs's own database, where `row_values` put them in the ``users`` rows."""
    if not addresses or not in_preferences(conn):
        return
    rows = await conn.execute(
        select(_prefs.user_id, _prefs.preferences_value).where(
            _prefs.user_id.in_(sorted(addresses)), _prefs.preferences_key == EMAIL_KEY
        )
    )
    held: dict[int, list[str]] = {}
    for row in rows:
        held.setdefault(int(row.user_id), []).append(text_of(row.preferences_value))
    changed = sorted(u for u, email in addresses.items() if held.get(u) != [email])
    if not changed:
        return
    await conn.execute(
        delete(user_preferences).where(
            _prefs.user_id.in_(changed), _prefs.preferences_key == EMAIL_KEY
        )
    )
    await conn.execute(
        user_preferences.insert(),
        [
            {"user_id": u, "preferences_key": EMAIL_KEY, "preferences_value": addresses[u]}
            for u in changed
        ],
    )
