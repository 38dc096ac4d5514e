"""Where an auto-response's language is kept: `auto_response.language`, or pytrs's side table.

Place in the flow: ``response_repo`` (provisioning of `[[auto_responses]]`, `pytrs responses
import`/`export`, the responders' reads) asks here instead of naming the column. Znuny 7.0's
``auto_response`` has no language (``scripts/database/schema.xml``): beside Znuny
(`[database] mode = "znuny"`) pytrs keeps it in ``auto_response_language`` (one row per
response id, in pytrs's own schema: ``attach.py``), and a response without a row there — one
made in Znuny's admin interface — counts as English, the column's default in pytrs's own
database. The choice is made from the connection's shape.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema.attach import auto_response_language
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import auto_response

DEFAULT = "en"

_side = auto_response_language.c


def kept_aside(conn: AsyncConnection) -> bool:
    """Whether this database keeps languages in the side table (beside Znuny)."""
    return shape_of(conn).lacks(auto_response.name, "language")


def language(conn: AsyncConnection) -> ColumnElement[Any]:
    """A response's language as an expression over ``auto_response``, labelled "language"."""
    if not kept_aside(conn):
        return auto_response.c.language.label("language")
    kept = (
        select(_side.language).where(_side.auto_response_id == auto_response.c.id).scalar_subquery()
    )
    return func.coalesce(kept, DEFAULT).label("language")


def row_values(conn: AsyncConnection, value: str) -> dict[str, str]:
    """What an ``auto_response`` INSERT or UPDATE sets of the language: the column, or nothing
    beside Znuny (`store` writes the side row)."""
    return {} if kept_aside(conn) else {"language": value}


async def store(conn: AsyncConnection, response_id: int, value: str) -> None:
    """Beside Znuny, keep `value` as the language of response `response_id`; nothing in
    pytrs's own database (`row_values` put it in the row)."""
    if not kept_aside(conn):
        return
    await conn.execute(delete(auto_response_language).where(_side.auto_response_id == response_id))
    await conn.execute(
        auto_response_language.insert().values(auto_response_id=response_id, language=value)
    )
