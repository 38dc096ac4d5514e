"""Znuny's tables that pytrs reads or writes beside Znuny but has no model of its own for.

Place in the flow: storage floor, used only when `[database] mode = "znuny"` (the repositories
ask `shape_of(conn)` first). The tables live in a MetaData apart from `Base.metadata`, so that
pytrs's migrations never create or alter them; each describes only the columns pytrs touches.

Facts from Znuny 7.0 (``scripts/database/schema.xml``): ``user_preferences`` has ``user_id``
INTEGER NOT NULL (FK users), ``preferences_key`` VARCHAR(150) NOT NULL, ``preferences_value``
LONGBLOB NULL (TEXT on PostgreSQL) and no unique key; ``salutation`` and ``signature`` have a
SMALLINT serial ``id`` and ``valid_id``, and every queue names one of each (NOT NULL, FK).
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, SmallInteger, String, Table, Text

ZNUNY = MetaData()

user_preferences = Table(
    "user_preferences",
    ZNUNY,
    Column("user_id", Integer, nullable=False),
    Column("preferences_key", String(150), nullable=False),
    Column("preferences_value", Text),
)

salutation = Table(
    "salutation",
    ZNUNY,
    Column("id", Integer, primary_key=True),
    Column("valid_id", SmallInteger, nullable=False),
)

signature = Table(
    "signature",
    ZNUNY,
    Column("id", Integer, primary_key=True),
    Column("valid_id", SmallInteger, nullable=False),
)

# Roles (Znuny 7.0): ``roles`` (id, name, valid_id, …), ``role_user`` (user_id, role_id),
# ``group_role`` (role_id, group_id, permission_key, permission_value SMALLINT); no unique keys.
roles = Table(
    "roles",
    ZNUNY,
    Column("id", Integer, primary_key=True),
    Column("valid_id", SmallInteger, nullable=False),
)
role_user = Table(
    "role_user",
    ZNUNY,
    Column("user_id", Integer, nullable=False),
    Column("role_id", Integer, nullable=False),
)
group_role = Table(
    "group_role",
    ZNUNY,
    Column("role_id", Integer, nullable=False),
    Column("group_id", Integer, nullable=False),
    Column("permission_key", String(20), nullable=False),
    Column("permission_value", SmallInteger, nullable=False),
)
