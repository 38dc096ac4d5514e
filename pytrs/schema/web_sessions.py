"""Web sessions ended by logout (``web_session_end``): what makes a copied cookie useless.

Place in the flow: sessions live in signed cookies (``web/sessions.py``), so the server keeps
no list of them; logout (``web/login.py``) records the session's random id here, and the
session middleware's re-read of the agent (``agent_access.by_id`` with the session id) finds
no account for an ended id, in the same query. A row is useful only until the session's
absolute expiry, after which the cookie is refused by its age: rows past it are deleted at
each logout, so the table holds at most the sessions ended within `session_max_hours`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from pytrs.schema.database import Database, conflict_insert
from pytrs.schema.tables import web_session_end


async def end(
    db: Database, session_id: str, user_id: int, *, now: datetime, expires_at: datetime
) -> int:
    """Record `session_id` as ended (`now`, naive UTC) until `expires_at`; delete the rows
    past their expiry. Returns how many were deleted."""
    row = {"session_id": session_id, "user_id": user_id, "ended_at": now, "expires_at": expires_at}
    async with db.transaction() as conn:
        insert = conflict_insert(conn, web_session_end).on_conflict_do_nothing(
            index_elements=["session_id"]
        )
        await conn.execute(insert, row)
        pruned = await conn.execute(
            delete(web_session_end).where(web_session_end.c.expires_at < now)
        )
    return int(pruned.rowcount or 0)
