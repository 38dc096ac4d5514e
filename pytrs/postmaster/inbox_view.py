"""The inbox as an operator reads it: each row with the From and Subject of its mail.

Place in the flow: read beside the worker, for `pytrs inbox list` and the admin quarantine page.
A processed row has given its raw copy to its article, so its From and Subject come from the
article; a row still holding its mail (pending, quarantined, discarded) has them read from the
start of the raw message. A discarded row keeps why, by whom and when in columns of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.parsers.headers import head_fields
from pytrs.schema import inbox_admin

REASON_CHARS = 500  # why a mail was discarded: a line, not a letter


async def listing(
    conn: AsyncConnection, state: str, limit: int, *, before: int | None = None
) -> list[dict[str, Any]]:
    """Newest rows first (`state` or "all"; ids below `before` when given), each with `from`
    and `subject`."""
    rows = await inbox_admin.listing(conn, state, limit, before=before)
    return [described(row) for row in rows]


def described(row: dict[str, Any]) -> dict[str, Any]:
    """A listing row with `from` and `subject`: the article's once processed, else the raw
    message's own header."""
    row = dict(row)
    head = row.pop("head")
    sender, subject = row.pop("a_from"), row.pop("a_subject")
    if head is not None and (sender is None or subject is None):
        header = head_fields(bytes(head))
        sender = sender if sender is not None else header.get("from")
        subject = subject if subject is not None else header.get("subject")
    return {**row, "from": sender, "subject": subject}


def discard_reason(text: str) -> tuple[str, str | None]:
    """A discard reason as kept (whitespace runs made one space) and the problem with it, if
    any (one line): the reason is required, and at most `REASON_CHARS` long."""
    reason = " ".join(text.split())
    if not reason:
        return reason, "discard: give a reason"
    if len(reason) > REASON_CHARS:
        return reason, f"discard: the reason is longer than {REASON_CHARS} characters"
    return reason, None
