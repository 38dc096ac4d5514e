"""`/api/v1/outbox`: outbound mail — list, show, retry failed mail; the suppressed addresses
and lifting a suppression (admin).

Place in the flow: the outbox sender (`outbound/sender.py`) marks a row failed when it gives
up and puts hard-bounced addresses on the suppression list. Here, as on the admin outbox page
and with `pytrs outbox retry|suppressed|unsuppress`, an admin sends failed mail again
(`outbox_repo.requeue_failed`: only failed rows that kept their bytes, and only to the
recipients not yet answered for good) and lifts suppressions; after a retry the sender is
woken so it does not wait for its next poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pytrs.parsers.headers import head_fields
from pytrs.schema import outbox_admin, outbox_repo
from pytrs.schema.outbox_repo import Requeue
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.paging import Page, PageQuery
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources.admin_support import page_of, read_cursor

api = Operations(
    tag="outbox", description="Outbound mail and suppressed addresses (administrators only)."
)

State = Literal["pending", "sending", "sent", "failed"]


class OutboxQuery(PageQuery):
    state: State | Literal["all"] = Field("all", description="Only rows in this state.")


class OutboxRow(BaseModel):
    """One outbound mail."""

    id: int = Field(description="The outbox row's id.")
    state: State = Field(description="pending → sending → sent | failed.")
    kind: str = Field(description="What the mail is: reply, auto-response, notification, …")
    ticket_id: int | None = Field(description="The ticket it belongs to.")
    recipients: list[str] = Field(description="The envelope recipients.")
    attempts: int = Field(description="Delivery attempts so far.")
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending).")
    created_at: datetime = Field(description="When it was queued (UTC).")
    error: str | None = Field(description="The first line of the last delivery error.")
    tn: str | None = Field(description="The ticket's number.")
    subject: str | None = Field(description="The Subject, while the row keeps the message.")


class RecipientResult(BaseModel):
    address: str = Field(description="A recipient.")
    status: str = Field(
        description="The relay's last answer: sent, deferred, refused, or `not tried`."
    )
    reply: str = Field(description="The relay's reply line.")
    suppressed_until: datetime | None = Field(
        description="The address is suppressed (hard bounce) until then: not sent to."
    )


class OutboxDetail(OutboxRow):
    """One outbound mail in full, with each recipient's last relay answer."""

    article_id: int | None = Field(description="The article it was sent for.")
    message_id: str = Field(description="Its Message-ID.")
    envelope_from: str = Field(description="The envelope sender.")
    size: int = Field(description="The message's size in bytes.")
    raw_kept: bool = Field(description="The row keeps the bytes (dropped once sent).")
    sent_at: datetime | None = Field(description="When it was sent (UTC).")
    last_error: str | None = Field(description="The last delivery error in full.")
    results: list[RecipientResult]


class RetryAll(BaseModel):
    requeued: list[int] = Field(description="The failed rows queued again.")
    suppressed: list[str] = Field(
        description="Their recipients on the suppression list, refused again unless lifted."
    )


class Suppressed(BaseModel):
    address: str = Field(description="The address not sent to.")
    until: datetime = Field(description="Until when (UTC).")
    reason: str = Field(description="The bounce that put it there.")
    ticket_id: int | None = Field(description="The ticket whose mail bounced.")


@api.get(
    "/outbox",
    access="admin",
    query=OutboxQuery,
    response=Page[OutboxRow],
    summary="Outbound mail, newest first",
)
async def list_outbox(ctx: Context, query: OutboxQuery) -> Page[OutboxRow]:
    before = read_cursor(query.cursor, int)
    async with ctx.transaction() as conn:
        rows = await outbox_admin.listing(
            conn, query.state, query.limit + 1, with_head=True, before=before
        )
    page, cursor = page_of(rows, query.limit, lambda row: int(row["id"]))
    return Page[OutboxRow](items=[OutboxRow(**_listed(r)) for r in page], next_cursor=cursor)


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    names = ("id", "state", "kind", "ticket_id", "tn", "recipients", "attempts", "created_at")
    due = row["next_attempt_at"] if row["state"] == outbox_repo.PENDING else None
    lines = str(row["last_error"] or "").strip().splitlines()
    error = lines[0] if lines else None
    head = row["head"]
    subject = head_fields(bytes(head), ("subject",)).get("subject") if head else None
    return {
        **{n: row[n] for n in names},
        "next_attempt_at": due,
        "error": error,
        "subject": subject,
    }


@api.get(
    "/outbox/{outbox_id:int}", access="admin", response=OutboxDetail, summary="One outbound mail"
)
async def get_outbox(ctx: Context, outbox_id: int) -> OutboxDetail:
    async with ctx.transaction() as conn:
        row = await outbox_admin.row(conn, outbox_id)
        if row is None:
            raise _missing(outbox_id)
        blocked = await outbox_repo.suppressed(conn, row["recipients"])
    results = [
        RecipientResult(
            address=address,
            status=row["results"].get(address, {}).get("status", "not tried"),
            reply=row["results"].get(address, {}).get("reply", ""),
            suppressed_until=blocked[address.lower()].until if address.lower() in blocked else None,
        )
        for address in row["recipients"]
    ]
    return OutboxDetail(
        **_listed(row),
        article_id=row["article_id"],
        message_id=row["message_id"],
        envelope_from=row["envelope_from"],
        size=row["size"],
        raw_kept=row["size_kept"] is not None,
        sent_at=row["sent_at"],
        last_error=row["last_error"],
        results=results,
    )


@api.post(
    "/outbox/{outbox_id:int}/retry",
    access="admin",
    response=OutboxDetail,
    problems=("not-failed",),
    summary="Send a failed mail again",
)
async def retry_outbox(ctx: Context, outbox_id: int) -> OutboxDetail:
    """Queue a failed mail again, due now, for the recipients not yet answered for good, and
    wake the sender (`pytrs outbox retry`). A recipient still suppressed is refused again:
    see `results[].suppressed_until`, and lift it with DELETE /outbox/suppressed/{address}."""
    found = await outbox_repo.requeue_failed(ctx.db, [outbox_id])
    if not found:
        raise _missing(outbox_id)
    if not found[0].requeued:
        reason = outbox_admin.refusal(found[0])
        raise Problem(409, "not-failed", f"Outbox row {outbox_id} {reason}.")
    ctx.wake_sender()
    return await get_outbox(ctx, outbox_id)


@api.post(
    "/outbox/retry", access="admin", response=RetryAll, summary="Send every failed mail again"
)
async def retry_all_outbox(ctx: Context) -> RetryAll:
    """Queue every failed mail that kept its bytes again (`pytrs outbox retry --all-failed`,
    the page's "retry all")."""
    requeued: list[Requeue] = [i for i in await outbox_repo.requeue_failed(ctx.db) if i.requeued]
    if requeued:
        ctx.wake_sender()
    addresses = {address for item in requeued for address in item.recipients}
    async with ctx.transaction() as conn:
        blocked = await outbox_repo.suppressed(conn, addresses)
    return RetryAll(requeued=sorted(i.id for i in requeued), suppressed=sorted(blocked))


@api.get(
    "/outbox/suppressed",
    access="admin",
    query=PageQuery,
    response=Page[Suppressed],
    summary="Addresses not sent to (hard bounces)",
)
async def list_suppressed(ctx: Context, query: PageQuery) -> Page[Suppressed]:
    """The suppressions still in force, by address."""
    after = read_cursor(query.cursor, str)
    async with ctx.transaction() as conn:
        held = await outbox_repo.active_suppressions(conn, after=after, limit=query.limit + 1)
    page, cursor = page_of(held, query.limit, lambda entry: entry.address)
    items = [
        Suppressed(address=s.address, until=s.until, reason=s.reason, ticket_id=s.ticket_id)
        for s in page
    ]
    return Page[Suppressed](items=items, next_cursor=cursor)


@api.delete(
    "/outbox/suppressed/{address}",
    access="admin",
    response=None,
    status=204,
    summary="Send to an address again",
)
async def lift_suppression(ctx: Context, address: str) -> None:
    """Lift the suppression of an address (`pytrs outbox unsuppress`); 404 when none."""
    async with ctx.transaction() as conn:
        lifted = await outbox_repo.lift_suppression(conn, address.strip())
    if not lifted:
        raise Problem(404, "not-found", f"{address!r} is not suppressed.")


def _missing(outbox_id: int) -> Problem:
    return Problem(404, "not-found", f"There is no outbox row {outbox_id}.")
