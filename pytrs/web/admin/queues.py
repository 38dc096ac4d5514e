"""`/admin/queues`: the queues — list, create, edit.

Place in the flow: writes go through `schema/queue_repo.py`, which refuses rows the
configuration file owns and raises the address book's generation, so running daemons route to
the change. Names, follow-up options and comments are checked by the rules of `[[queues]]`.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.config.model import FOLLOW_UP_OPTIONS, QueueConfig
from pytrs.schema import queue_repo
from pytrs.schema.queue_repo import QueueValues, Refused
from pytrs.schema.tables import queue
from pytrs.tickets import queries
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import column_problem, config_problem, form_fields, row_id
from pytrs.web.pages import flash, redirect, render

BLANK = {
    "name": "",
    "group_id": "",
    "follow_up": "possible",
    "system_address_id": "",
    "comments": "",
    "valid": "1",
}


@admin_page
async def queue_list(request: Request, user: WebUser) -> Response:
    return await _list_page(request, BLANK, "")


async def _list_page(request: Request, form: dict[str, str], error: str) -> Response:
    async with request.app.state.db.connect() as conn:
        rows = await queue_repo.queues(conn)
        counts = {q.name: q for q in await queries.queue_overview(conn)}
        choices = await _choices(conn)
    context = {"rows": rows, "counts": counts, "form": form, "error": error, **choices}
    return render(request, "admin/queues.html", context, status_code=400 if error else 200)


async def _choices(conn: Any) -> dict[str, Any]:
    return {
        "groups": await queue_repo.groups(conn),
        "addresses": [(a.id, a.values.address) for a in await queue_repo.addresses(conn)],
        "follow_ups": FOLLOW_UP_OPTIONS,
    }


@admin_page
async def queue_create(request: Request, user: WebUser) -> Response:
    form = {**BLANK, "valid": "", **await form_fields(request)}
    values = _checked(form)
    if isinstance(values, str):
        return await _list_page(request, form, values)
    try:
        await queue_repo.save_queue(request.app.state.db, values, row_id=None, by=user.id)
    except Refused as exc:
        return await _list_page(request, form, str(exc))
    flash(request, f"Queue {values.name} created.")
    return redirect("/admin/queues")


@admin_page
async def queue_edit(request: Request, user: WebUser) -> Response:
    found = await _row(request)
    return await _edit_page(request, found, _form_of(found.values), "")


async def _edit_page(
    request: Request, row: queue_repo.QueueRow, form: dict[str, str], error: str
) -> Response:
    async with request.app.state.db.connect() as conn:
        choices = await _choices(conn)
    context = {"row": row, "form": form, "error": error, **choices}
    return render(request, "admin/queues_edit.html", context, status_code=400 if error else 200)


@admin_page
async def queue_update(request: Request, user: WebUser) -> Response:
    found = await _row(request)
    form = {**BLANK, "valid": "", **await form_fields(request)}
    values = _checked(form)
    if isinstance(values, str):
        return await _edit_page(request, found, form, values)
    try:
        await queue_repo.save_queue(request.app.state.db, values, row_id=found.id, by=user.id)
    except Refused as exc:
        return await _edit_page(request, found, form, str(exc))
    flash(request, f"Queue {values.name} saved.")
    return redirect("/admin/queues")


async def _row(request: Request) -> queue_repo.QueueRow:
    wanted = row_id(request.path_params["queue_id"])
    async with request.app.state.db.connect() as conn:
        rows = await queue_repo.queues(conn)
    found = next((r for r in rows if r.id == wanted), None)
    if found is None:
        raise HTTPException(404, "There is no such queue.")
    return found


def _form_of(values: QueueValues) -> dict[str, str]:
    return {
        "name": values.name,
        "group_id": str(values.group_id),
        "follow_up": values.follow_up,
        "system_address_id": str(values.system_address_id or ""),
        "comments": values.comments,
        "valid": "1" if values.valid else "",
    }


def _checked(form: dict[str, str]) -> QueueValues | str:
    """The queue the form describes, or the first problem with it (one line)."""
    name, comments = form["name"].strip(), form["comments"].strip()
    raw = {"name": name, "follow_up": form["follow_up"], "comments": comments}
    problem = (
        config_problem(QueueConfig, raw, "queue")
        or column_problem("queue.name", queue.c.name, name)
        or column_problem("queue.comments", queue.c.comments, comments)
    )
    if problem:
        return problem
    group = row_id(form["group_id"])
    if group is None:
        return "queue.group: choose a group"
    address = form["system_address_id"]
    if address and row_id(address) is None:
        return "queue.system_address: choose a system address or none"
    return QueueValues(
        name=name,
        group_id=group,
        follow_up=form["follow_up"],
        system_address_id=row_id(address),
        comments=comments,
        valid=form["valid"] == "1",
    )


routes: list[BaseRoute] = [
    Route("/admin/queues", queue_list, methods=["GET"]),
    Route("/admin/queues", queue_create, methods=["POST"]),
    Route("/admin/queues/{queue_id}", queue_edit, methods=["GET"]),
    Route("/admin/queues/{queue_id}", queue_update, methods=["POST"]),
]
