"""`/admin/addresses`: the system addresses — list, create, edit.

Place in the flow: the gateway accepts mail only for these addresses (RCPT) and the postmaster
routes it to the address's queue. Writes go through `schema/queue_repo.py`, which refuses rows
the configuration file owns and raises the address book's generation, so running daemons
accept the new address at once. Values are checked by the rules of `[[system_addresses]]`.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.config.model import SystemAddressConfig
from pytrs.schema import queue_repo
from pytrs.schema.queue_repo import AddressRow, AddressValues, Refused
from pytrs.schema.tables import system_address
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import column_problem, config_problem, form_fields, row_id
from pytrs.web.pages import flash, redirect, render

BLANK = {"address": "", "name": "", "queue_id": "", "valid": "1"}


@admin_page
async def address_list(request: Request, user: WebUser) -> Response:
    return await _list_page(request, BLANK, "")


async def _list_page(request: Request, form: dict[str, str], error: str) -> Response:
    async with request.app.state.db.connect() as conn:
        rows = await queue_repo.addresses(conn)
        queues = await _queues(conn)
    context = {"rows": rows, "queues": queues, "form": form, "error": error}
    return render(request, "admin/addresses.html", context, status_code=400 if error else 200)


async def _queues(conn: Any) -> list[tuple[int, str]]:
    return [(q.id, q.values.name) for q in await queue_repo.queues(conn)]


@admin_page
async def address_create(request: Request, user: WebUser) -> Response:
    form = {**BLANK, "valid": "", **await form_fields(request)}
    values = await _checked(request, form)
    if isinstance(values, str):
        return await _list_page(request, form, values)
    try:
        await queue_repo.save_address(request.app.state.db, values, row_id=None, by=user.id)
    except Refused as exc:
        return await _list_page(request, form, str(exc))
    flash(request, f"System address {values.address.lower()} created.")
    return redirect("/admin/addresses")


@admin_page
async def address_edit(request: Request, user: WebUser) -> Response:
    found = await _row(request)
    form = {
        "address": found.values.address,
        "name": found.values.name,
        "queue_id": str(found.values.queue_id),
        "valid": "1" if found.values.valid else "",
    }
    return await _edit_page(request, found, form, "")


async def _edit_page(
    request: Request, row: AddressRow, form: dict[str, str], error: str
) -> Response:
    async with request.app.state.db.connect() as conn:
        queues = await _queues(conn)
    context = {"row": row, "queues": queues, "form": form, "error": error}
    return render(request, "admin/addresses_edit.html", context, status_code=400 if error else 200)


@admin_page
async def address_update(request: Request, user: WebUser) -> Response:
    found = await _row(request)
    form = {**BLANK, "valid": "", **await form_fields(request)}
    values = await _checked(request, form)
    if isinstance(values, str):
        return await _edit_page(request, found, form, values)
    try:
        await queue_repo.save_address(request.app.state.db, values, row_id=found.id, by=user.id)
    except Refused as exc:
        return await _edit_page(request, found, form, str(exc))
    flash(request, f"System address {values.address.lower()} saved.")
    return redirect("/admin/addresses")


async def _row(request: Request) -> AddressRow:
    wanted = row_id(request.path_params["address_id"])
    async with request.app.state.db.connect() as conn:
        rows = await queue_repo.addresses(conn)
    found = next((r for r in rows if r.id == wanted), None)
    if found is None:
        raise HTTPException(404, "There is no such system address.")
    return found


async def _checked(request: Request, form: dict[str, str]) -> AddressValues | str:
    """The address the form describes, or the first problem with it (one line)."""
    address, name = form["address"].strip(), form["name"].strip()
    async with request.app.state.db.connect() as conn:
        queues = dict(await _queues(conn))
    queue_id = row_id(form["queue_id"])
    raw = {"address": address, "name": name, "queue": queues.get(queue_id or 0, "")}
    problem = (
        config_problem(SystemAddressConfig, raw, "system_address")
        or column_problem("system_address.address", system_address.c.value0, address)
        or column_problem("system_address.name", system_address.c.value1, name)
    )
    if problem:
        return problem
    assert queue_id is not None  # a known queue's name passed the rule above
    return AddressValues(address, name, queue_id, valid=form["valid"] == "1")


routes: list[BaseRoute] = [
    Route("/admin/addresses", address_list, methods=["GET"]),
    Route("/admin/addresses", address_create, methods=["POST"]),
    Route("/admin/addresses/{address_id}", address_edit, methods=["GET"]),
    Route("/admin/addresses/{address_id}", address_update, methods=["POST"]),
]
