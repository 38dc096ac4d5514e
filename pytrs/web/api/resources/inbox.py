"""`/api/v1/inbox`: the durable inbox and its quarantine — list, show, download, retry,
discard (admin).

Place in the flow: the API's door to what `pytrs inbox list|show|retry|discard` and the admin
quarantine pages read and change (`postmaster/inbox_view.py`, `schema/inbox_admin.py`). A
mail whose processing failed `max_attempts` times waits here as `quarantined`; a retry puts it
back in the queue with a fresh attempt budget (the next poll of any worker takes it), a
discard sets it aside for good with a reason, kept in the row with who and when. Both refuse
any row that is not quarantined, as the command line does.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from pytrs.postmaster import inbox_view
from pytrs.schema import inbox_admin
from pytrs.schema.inbox_repo import QUARANTINED
from pytrs.web.api.operations import Binary, Context, Operations
from pytrs.web.api.paging import Page, PageQuery
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources.admin_support import field_problem, page_of, read_cursor

api = Operations(tag="inbox", description="Received mail and the quarantine (administrators only).")

State = Literal["pending", "done", "ignored", "duplicate", "quarantined", "discarded"]


class InboxQuery(PageQuery):
    state: State | Literal["all"] = Field("all", description="Only rows in this state.")


class InboxRow(BaseModel):
    """One received mail (for one recipient) as the inbox holds it."""

    id: int = Field(description="The inbox row's id.")
    state: State = Field(description="Where the mail is in its processing.")
    source: str = Field(description="How it arrived: smtp, lmtp, pipe, or a mail account.")
    recipient: str = Field(description="The envelope recipient.")
    message_id: str = Field(description="The mail's Message-ID.")
    attempts: int = Field(description="Processing attempts so far.")
    received_at: datetime = Field(description="When it was accepted (UTC).")
    ticket_id: int | None = Field(description="The ticket it went to, once processed.")
    tn: str | None = Field(description="That ticket's number.")
    sender: str | None = Field(description="The From header.")
    subject: str | None = Field(description="The Subject header.")
    error: str | None = Field(description="The first line of the last processing error.")
    discard_reason: str | None = Field(description="Why it was discarded.")
    discarded_at: datetime | None = Field(description="When it was discarded (UTC).")
    discarded_by: str | None = Field(description="The login of who discarded it.")


class InboxDetail(BaseModel):
    """One inbox row in full; the raw mail is a separate download (`/inbox/{id}/raw`)."""

    id: int
    state: State
    source: str
    recipient: str
    envelope_from: str = Field(description="The envelope sender.")
    peer: str = Field(description="The client that delivered it.")
    trusted: bool = Field(description="Its own X-PyTRS-* headers were honoured.")
    queue_name: str = Field(description="A fixed queue its source gave it, if any.")
    message_id: str
    size: int = Field(description="The raw mail's size in bytes.")
    raw_kept: bool = Field(
        description="The row still holds the raw mail; once processed the article keeps it."
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is due (pending rows).")
    received_at: datetime
    processed_at: datetime | None = Field(description="When processing ended.")
    ticket_id: int | None
    tn: str | None
    article_id: int | None = Field(description="The article it became.")
    error: str | None = Field(description="The last processing error, traceback included.")
    trace: Any = Field(description="The routing trace (JSON): rules fired and why.")
    discard_reason: str | None
    discarded_at: datetime | None
    discarded_by: str | None


class DiscardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description=f"Why it is set aside (required, at most {inbox_view.REASON_CHARS} "
        "characters, runs of whitespace made one space); kept in the row with who and when.",
        json_schema_extra={"pattern": r"\S", "maxLength": inbox_view.REASON_CHARS},
    )


@api.get(
    "/inbox",
    access="admin",
    query=InboxQuery,
    response=Page[InboxRow],
    summary="Received mail, newest first",
)
async def list_inbox(ctx: Context, query: InboxQuery) -> Page[InboxRow]:
    before = read_cursor(query.cursor, int)
    async with ctx.transaction() as conn:
        rows = await inbox_view.listing(conn, query.state, query.limit + 1, before=before)
    page, cursor = page_of(rows, query.limit, lambda row: int(row["id"]))
    return Page[InboxRow](items=[_listed(r) for r in page], next_cursor=cursor)


def _listed(row: dict[str, Any]) -> InboxRow:
    return InboxRow(
        id=row["id"],
        state=row["state"],
        source=row["source"],
        recipient=row["recipient"],
        message_id=row["message_id"],
        attempts=row["attempts"],
        received_at=row["received_at"],
        ticket_id=row["ticket_id"],
        tn=row["tn"],
        sender=row["from"],
        subject=row["subject"],
        error=_first_line(row["last_error"]),
        discard_reason=row["discard_reason"],
        discarded_at=row["discarded_at"],
        discarded_by=row["discarded_by_login"],
    )


@api.get("/inbox/{inbox_id:int}", access="admin", response=InboxDetail, summary="One received mail")
async def get_inbox(ctx: Context, inbox_id: int) -> InboxDetail:
    async with ctx.transaction() as conn:
        row = await _row(conn, inbox_id)
        tn = await inbox_admin.ticket_number(conn, row["ticket_id"])
    return _detail(row, tn)


def _detail(row: dict[str, Any], tn: str | None) -> InboxDetail:
    trace = json.loads(str(row["trace"])) if row["trace"] else None
    return InboxDetail(
        id=row["id"],
        state=row["state"],
        source=row["source"],
        recipient=row["recipient"],
        envelope_from=row["envelope_from"],
        peer=row["peer"],
        trusted=bool(row["trusted"]),
        queue_name=row["queue_name"],
        message_id=row["message_id"],
        size=row["size"],
        raw_kept=row["raw"] is not None,
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        received_at=row["received_at"],
        processed_at=row["processed_at"],
        ticket_id=row["ticket_id"],
        tn=tn,
        article_id=row["article_id"],
        error=row["last_error"],
        trace=trace,
        discard_reason=row["discard_reason"],
        discarded_at=row["discarded_at"],
        discarded_by=row["discarded_by_login"],
    )


@api.get(
    "/inbox/{inbox_id:int}/raw",
    access="admin",
    response=Binary,
    summary="The raw mail, as received",
)
async def get_inbox_raw(ctx: Context, inbox_id: int) -> Response:
    """The mail's bytes as received (`message/rfc822`, as a download): from the row while it
    keeps them, else the copy its article keeps."""
    async with ctx.transaction() as conn:
        row = await _row(conn, inbox_id)
        raw = row["raw"]
        if raw is None and row["article_id"]:
            raw = await inbox_admin.article_raw(conn, row["article_id"])
    if raw is None:
        raise Problem(404, "not-found", f"Inbox row {inbox_id} has no raw copy left.")
    headers = {
        "Content-Disposition": f'attachment; filename="inbox-{inbox_id}.eml"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(bytes(raw), media_type="message/rfc822", headers=headers)


@api.post(
    "/inbox/{inbox_id:int}/retry",
    access="admin",
    response=InboxDetail,
    problems=("not-quarantined",),
    summary="Queue a quarantined mail again",
)
async def retry_inbox(ctx: Context, inbox_id: int) -> InboxDetail:
    """Put a quarantined mail back in the queue with a fresh attempt budget, due at once: the
    next poll of any worker processes it (`pytrs inbox retry`)."""
    before = await inbox_admin.requeue(ctx.db, [inbox_id])
    _require_quarantined(inbox_id, before.get(inbox_id), "nothing to retry")
    return await get_inbox(ctx, inbox_id)


@api.post(
    "/inbox/{inbox_id:int}/discard",
    access="admin",
    body=DiscardBody,
    response=InboxDetail,
    problems=("not-quarantined",),
    summary="Set a quarantined mail aside for good",
)
async def discard_inbox(ctx: Context, inbox_id: int, body: DiscardBody) -> InboxDetail:
    """Set a quarantined mail aside (state `discarded`), keeping the reason, who and when in
    the row; its raw copy stays, so a re-delivery is still recognised (`pytrs inbox discard`)."""
    reason, problem = inbox_view.discard_reason(body.reason)
    if problem:
        raise field_problem("reason", problem.removeprefix("discard: "))
    before = await inbox_admin.discard(ctx.db, [inbox_id], reason, ctx.user.id)
    _require_quarantined(inbox_id, before.get(inbox_id), "nothing to discard")
    return await get_inbox(ctx, inbox_id)


def _require_quarantined(inbox_id: int, state: str | None, nothing: str) -> None:
    if state is None:
        raise _missing(inbox_id)
    if state != QUARANTINED:
        raise Problem(
            409, "not-quarantined", f"Inbox row {inbox_id} is {state}, not quarantined: {nothing}."
        )


async def _row(conn: Any, inbox_id: int) -> dict[str, Any]:
    row = await inbox_admin.row(conn, inbox_id)
    if row is None:
        raise _missing(inbox_id)
    return row


def _missing(inbox_id: int) -> Problem:
    return Problem(404, "not-found", f"There is no inbox row {inbox_id}.")


def _first_line(text: str | None) -> str | None:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else None
