"""`/admin/quarantine`: mail the postmaster gave up on — see it, retry it, or discard it.

Place in the flow: a mail whose processing failed `max_attempts` times stays in the inbox as
`quarantined`, with its raw bytes and the error. Here an admin reads it (parsed by the same
parser the worker uses, and raw), puts it back in the queue — `pytrs inbox retry`'s
`inbox_admin.requeue`, due at once, so the next poll of any worker takes it — or sets it aside
for good with a reason, kept in the row with who and when (`inbox_admin.discard`, as
`pytrs inbox discard` does).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.parsers.mail import parse_mail
from pytrs.postmaster import inbox_view
from pytrs.schema import inbox_admin
from pytrs.schema.inbox_repo import DISCARDED, QUARANTINED
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import form_fields, row_id, when
from pytrs.web.pages import flash, redirect, render

SHOWN = 200  # rows listed, newest first
RAW_SHOWN = 64 * 1024  # bytes of the raw mail shown on the page (the download has all)


@admin_page
async def quarantine_list(request: Request, user: WebUser) -> Response:
    async with request.app.state.db.connect() as conn:
        held = await inbox_view.listing(conn, QUARANTINED, SHOWN)
        gone = await inbox_view.listing(conn, DISCARDED, SHOWN)
    return render(request, "admin/quarantine.html", {"rows": held, "discarded": gone, "when": when})


@admin_page
async def quarantine_show(request: Request, user: WebUser) -> Response:
    row = await _held(request)
    raw = bytes(row["raw"])
    # Parsing a large mail takes longer than the event loop may be held.
    mail = await asyncio.to_thread(parse_mail, raw)
    context = {
        "row": row,
        "when": when,
        "mail": mail,
        "raw_text": raw[:RAW_SHOWN].decode("utf-8", "replace"),
        "raw_cut": len(raw) > RAW_SHOWN,
        "error_line": (str(row["last_error"] or "").strip().splitlines() or [""])[0],
    }
    return render(request, "admin/quarantine_show.html", context)


@admin_page
async def quarantine_raw(request: Request, user: WebUser) -> Response:
    row = await _held(request)
    disposition = f'attachment; filename="inbox-{row["id"]}.eml"'
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    return Response(bytes(row["raw"]), media_type="message/rfc822", headers=headers)


@admin_page
async def quarantine_retry(request: Request, user: WebUser) -> Response:
    row = await _held(request)
    before = await inbox_admin.requeue(request.app.state.db, [row["id"]])
    if before.get(row["id"]) != QUARANTINED:
        flash(request, f"inbox {row['id']}: is {before.get(row['id'])}, not quarantined", "error")
        return redirect("/admin/quarantine")
    flash(request, f"inbox {row['id']}: queued again; a worker processes it next.")
    return redirect("/admin/quarantine")


@admin_page
async def quarantine_discard(request: Request, user: WebUser) -> Response:
    row = await _held(request)
    reason, problem = inbox_view.discard_reason((await form_fields(request)).get("reason", ""))
    if problem:
        flash(request, problem, "error")
        return redirect(f"/admin/quarantine/{row['id']}")
    states = await inbox_admin.discard(request.app.state.db, [row["id"]], reason, user.id)
    before = states.get(row["id"])
    if before != QUARANTINED:
        flash(request, f"inbox {row['id']}: is {before}, not quarantined", "error")
    else:
        flash(request, f"inbox {row['id']}: discarded.")
    return redirect("/admin/quarantine")


async def _held(request: Request) -> dict[str, Any]:
    """The quarantined or discarded inbox row of the path (404 for any other)."""
    wanted = row_id(request.path_params["inbox_id"])
    async with request.app.state.db.connect() as conn:
        row = await inbox_admin.row(conn, wanted) if wanted else None
    if row is None or row["state"] not in (QUARANTINED, DISCARDED) or row["raw"] is None:
        raise HTTPException(404, "There is no such mail in the quarantine.")
    return row


routes: list[BaseRoute] = [
    Route("/admin/quarantine", quarantine_list, methods=["GET"]),
    Route("/admin/quarantine/{inbox_id}", quarantine_show, methods=["GET"]),
    Route("/admin/quarantine/{inbox_id}/raw", quarantine_raw, methods=["GET"]),
    Route("/admin/quarantine/{inbox_id}/retry", quarantine_retry, methods=["POST"]),
    Route("/admin/quarantine/{inbox_id}/discard", quarantine_discard, methods=["POST"]),
]
