"""`/admin/outbox`: mail that could not be sent, and the addresses not sent to.

Place in the flow: the outbox sender (`outbound/sender.py`) marks a row failed when it gives
up, and puts hard-bounced addresses on the suppression list. Here an admin sends failed mail
again and lifts suppressions, through the same calls as `pytrs outbox retry` and
`pytrs outbox unsuppress` (`schema/outbox_repo.py`, `schema/outbox_admin.py`); after a retry
the sender is woken so it does not wait for its next poll.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.parsers.headers import head_fields
from pytrs.schema import outbox_admin, outbox_repo
from pytrs.schema.outbox_repo import FAILED
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import form_fields, row_id, when
from pytrs.web.pages import flash, redirect, render

SHOWN = 200  # failed rows on the page, newest first


@admin_page
async def outbox_page(request: Request, user: WebUser) -> Response:
    async with request.app.state.db.connect() as conn:
        failed = await outbox_admin.listing(conn, FAILED, SHOWN, with_head=True)
        held = await outbox_repo.active_suppressions(conn)
    rows = [_with_subject(row) for row in failed]
    context = {"rows": rows, "suppressions": held, "when": when}
    return render(request, "admin/outbox.html", context)


def _with_subject(row: dict[str, Any]) -> dict[str, Any]:
    head = row.pop("head")
    subject = head_fields(bytes(head), ("subject",)).get("subject") if head else None
    error = (str(row["last_error"] or "").strip().splitlines() or [""])[0]
    return {**row, "subject": subject, "error": error}


@admin_page
async def outbox_retry(request: Request, user: WebUser) -> Response:
    form = await form_fields(request)
    ids = None if form.get("all") == "1" else [row_id(form.get("id", ""))]
    if ids == [None]:
        flash(request, "retry: choose a failed mail", "error")
        return redirect("/admin/outbox")
    db = request.app.state.db
    found = await outbox_repo.requeue_failed(db, None if ids is None else [i for i in ids if i])
    for item in found:
        if not item.requeued:
            flash(request, f"outbox {item.id}: {outbox_admin.refusal(item)}", "error")
    requeued = [item for item in found if item.requeued]
    if ids and not found:
        flash(request, f"outbox {ids[0]}: no such row", "error")
    if requeued and request.app.state.wake_sender is not None:
        request.app.state.wake_sender()
    await _note_suppressed(request, requeued)
    flash(request, f"{len(requeued)} message(s) queued again.")
    return redirect("/admin/outbox")


async def _note_suppressed(request: Request, requeued: list[outbox_repo.Requeue]) -> None:
    # The sender refuses suppressed addresses again at once; say so now, not after the fact.
    addresses = {address for item in requeued for address in item.recipients}
    async with request.app.state.db.connect() as conn:
        blocked = await outbox_repo.suppressed(conn, addresses)
    for address in sorted(blocked):
        flash(request, f"{address} is suppressed and will be refused again: lift it below")


@admin_page
async def outbox_unsuppress(request: Request, user: WebUser) -> Response:
    address = (await form_fields(request)).get("address", "").strip()
    async with request.app.state.db.transaction() as conn:
        lifted = await outbox_repo.lift_suppression(conn, address)
    if lifted:
        flash(request, f"{address}: suppression lifted.")
    else:
        flash(request, f"{address or 'the address'}: not suppressed", "error")
    return redirect("/admin/outbox")


routes: list[BaseRoute] = [
    Route("/admin/outbox", outbox_page, methods=["GET"]),
    Route("/admin/outbox/retry", outbox_retry, methods=["POST"]),
    Route("/admin/outbox/unsuppress", outbox_unsuppress, methods=["POST"]),
]
